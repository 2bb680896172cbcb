"""The SQL unit tests `runner test` runs (sql/**/*.tests.yml), collected once for pytest: a test
that takes the `sql_case` argument runs once per case, with the id <file>::<case>."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pytest_generate_tests(metafunc):
    if "sql_case" in metafunc.fixturenames:
        from runner.compile.project import load_project
        from runner.tools.sqltest import project_cases

        cases = project_cases(load_project(REPO))
        metafunc.parametrize("sql_case", cases, ids=[f"{Path(c.file).name}::{c.name}" for c in cases])
