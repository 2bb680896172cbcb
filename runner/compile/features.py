"""The model's features: the columns fraud_prob takes, in order, for the SQL to pass to it.

One place for this fact: the model card `runner train` writes (models/<name>/model_card.json,
read and checked by udfs/card.py). Compile reads it, checks it against project.yml's source
schema (the clear error of `check_features` when the schema lacks a feature the model needs)
and gives the names to the SQL as `model_features` (sql/macros/features.sql).

Before the first `runner train` (a fresh clone) there is no card. Compile then takes the source
schema's DOUBLE fields other than Time, in project.yml's order: the features `runner train` fits
on that schema. So `compile`, `lineage`, `docs` and the SQL tests work without a model, while
`runner apply` still refuses to start without one (its preflight reads the card). Training a
model changes the manifest's input hash, so the next run-time verb compiles again from the card.
"""
from __future__ import annotations

from dataclasses import dataclass

from runner.compile.project import KafkaSource, Project
from runner.errors import RunnerError

# Not a feature in the schema fallback: seconds since the first transaction of the data set.
NOT_A_FEATURE = ("Time",)


@dataclass(frozen=True)
class ModelFeatures:
    names: list[str]
    origin: str          # where they were read from, for the manifest and messages


def scored_source(project: Project) -> KafkaSource:
    """The source whose records the model scores: the first under sources.kafka (what
    `udfs.register` checks the card against at run time)."""
    if not project.sources:
        raise RunnerError("project.yml declares no source under sources.kafka", where=str(project.file),
                          hint="the model scores a source's records; see the shipped project.yml")
    return next(iter(project.sources.values()))


def schema_features(project: Project) -> list[str]:
    """The features `runner train` fits in this project: the scored source's DOUBLE fields but
    Time, in project.yml's order."""
    source = scored_source(project)
    return [f for f, t in source.schema.items() if t.upper() == "DOUBLE" and f not in NOT_A_FEATURE]


def model_features(project: Project) -> ModelFeatures:
    from udfs.card import CARD_FILE, check_features, read_card

    source = scored_source(project)
    card_file = project.model_path / CARD_FILE
    if not card_file.is_file():
        names = schema_features(project)
        return ModelFeatures(names, f"{project.file.name} sources.kafka.{source.name}.schema "
                                    f"(DOUBLE fields but {', '.join(NOT_A_FEATURE)}; no model card yet at {card_file})")
    try:
        card = read_card(project.model_path)
        check_features(card, source.schema, project.model_path)
    except RunnerError as e:
        raise RunnerError(e.message, where=e.where or f"{project.file} (model: {project.model_path})",
                          hint=e.hint) from None
    return ModelFeatures(list(card["features"]), str(card_file))
