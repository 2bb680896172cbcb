"""The model card: read it, check it against the source schema, say what is wrong.

`runner train` writes `models/<name>/model_card.json` next to the Spark PipelineModel
(`models/<name>/pipeline/`). This module only reads and validates; it never loads Spark ML.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from udfs.errors import UserError

CARD_FILE = "model_card.json"
PIPELINE_DIR = "pipeline"
KINDS = ("lr", "gbt")
NUMERIC_TYPES = {"DOUBLE", "FLOAT", "INT", "INTEGER", "BIGINT", "LONG", "SMALLINT", "SHORT",
                 "TINYINT", "BYTE", "REAL"}


class LrParams(BaseModel):
    """What fraud_prob's LR expression is built from (udfs/lr_sql.py)."""
    scaler_mean: list[float]
    scaler_std: list[float]
    coefficients: list[float]
    intercept: float


class CardShape(BaseModel):
    """The parts of a card fraud_prob and compile read; the rest (metrics, split, threshold
    table) is for people and the report, so other keys are allowed."""
    model_config = ConfigDict(extra="allow")
    kind: Literal["lr", "gbt"]
    features: list[str]
    lr: LrParams | None = None

    @model_validator(mode="after")
    def _lr_has_its_parameters(self):
        if self.kind == "lr" and self.lr is None:
            raise ValueError("model card of kind lr lacks lr (scaler_mean, scaler_std, coefficients, intercept)")
        return self


def _card_problem(e: ValidationError, card: dict) -> str:
    err = e.errors(include_url=False)[0]
    loc = [str(x) for x in err["loc"]]
    if loc[:1] == ["kind"]:
        return f"model card has unknown kind {card.get('kind')!r}"
    if loc[:1] == ["lr"] and err["type"] == "missing" and len(loc) == 2:
        return f"model card lacks lr.{loc[1]}"
    if err["type"] == "missing":
        return f"model card lacks {'.'.join(loc)}"
    if err["type"] == "value_error":
        return str(err["ctx"]["error"])
    return f"model card: {'.'.join(loc)}: {err['msg']}"


def read_card(model_dir: str | Path) -> dict:
    """The card of the model in `model_dir`, or a UserError saying how to get one."""
    model_dir = Path(model_dir)
    hint = "run `runner train --data data/creditcard.csv` (or `runner train --synthetic 100000`) first"
    if not model_dir.is_dir():
        raise UserError(f"no trained model at {model_dir}", hint=hint)
    file = model_dir / CARD_FILE
    if not file.is_file():
        raise UserError(f"{model_dir} has no {CARD_FILE}: not a model written by `runner train`", hint=hint)
    try:
        card = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"model card is not valid JSON: {e.msg}", where=f"{file}:{e.lineno}", hint=hint) from None
    if not isinstance(card, dict):
        raise UserError("model card is not a JSON object", where=str(file), hint=hint)
    try:
        shape = CardShape.model_validate(card)
    except ValidationError as e:
        unknown_kind = e.errors(include_url=False)[0]["loc"][:1] == ("kind",)
        kinds_hint = f"fraud_prob can be built for kinds {', '.join(KINDS)}"
        raise UserError(_card_problem(e, card), where=str(file),
                          hint=kinds_hint if unknown_kind else hint) from None
    if shape.kind == "gbt" and not (model_dir / PIPELINE_DIR).is_dir():
        raise UserError(f"no Spark pipeline at {model_dir / PIPELINE_DIR}", hint=hint)
    return card


def check_features(card: dict, source_schema: dict[str, str] | None, model_dir: str | Path = "") -> None:
    """Refuse a model whose features are not fraud_prob's, or that the source cannot feed."""
    features = list(card.get("features") or [])
    if not features or len(set(features)) != len(features):
        raise UserError(f"model {model_dir} card lists features {features}: fraud_prob needs at least one, each once",
                          hint="retrain with `runner train`")
    if source_schema is None:
        return
    missing = [f for f in features if f not in source_schema]
    if missing:
        raise UserError(
            f"model {model_dir} needs columns missing from the source schema: {', '.join(missing)}",
            hint="add them to sources.kafka.<name>.schema in project.yml, or train a model on the columns you have")
    wrong = [f"{f} ({source_schema[f]})" for f in features
             if str(source_schema[f]).strip().upper() not in NUMERIC_TYPES
             and not str(source_schema[f]).strip().upper().startswith("DECIMAL")]
    if wrong:
        raise UserError(f"model {model_dir} needs numeric columns, but the source has: {', '.join(wrong)}",
                          hint="declare them DOUBLE in project.yml")
