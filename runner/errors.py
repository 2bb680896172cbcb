"""The one exception the runner raises for things a user can fix.

The CLI prints it as one line (plus an optional hint) and exits non-zero;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from udfs.errors import UserError

# One class for every error a user can fix, raised by the runner and by udfs alike; it lives in
# udfs/errors.py because udfs imports nothing from the runner.
RunnerError = UserError


def analysis_error(manifest, model, error: Exception) -> RunnerError:
    """Spark refused to analyse `model` (a manifest's CompiledModel): the first line of its error,
    with the vars whose values reach that model. A value of the right type may still mean nothing
    to Spark (a window of 0 seconds fails as an unresolved `window`.`start`), so the error sends
    the analyst to the value as well as to the SQL."""
    text = str(error).strip()
    first = text.splitlines()[0].rstrip("; ") if text else type(error).__name__
    reaching = manifest.vars_reaching(model.name)
    if not reaching:
        return RunnerError(f"Spark can not analyse this model: {first}", where=model.path,
                           hint="check column names against the models it reads (runner compile, then target/compiled/)")
    return RunnerError(f"Spark can not analyse this model: {first}; vars reaching it: {reaching}", where=model.path,
                       hint="check those values first (a --var, or vars: in project.yml), then column names against "
                            "the models it reads (runner compile, then target/compiled/)")
