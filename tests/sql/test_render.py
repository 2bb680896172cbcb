"""The Jinja layer's typed literals: what a var may become in SQL."""
from __future__ import annotations

import pytest

from runner.compile.project import load_project
from runner.compile.render import VAR_LITERALS, SqlVar, resolve_vars, sql_string
from runner.errors import RunnerError


@pytest.mark.parametrize("kind, value, literal, raw", [
    ("double", 0.9, "0.9", 0.9), ("double", "0.85", "0.85", 0.85), ("double", "1e-3", "0.001", 0.001),
    ("int", 4096, "4096", 4096), ("int", "-3", "-3", -3),
    ("interval", "2 minutes", "INTERVAL '2 minutes'", "2 minutes"),
    ("interval", "1 second", "INTERVAL '1 second'", "1 second"),
    ("string", "it's", "'it\\'s'", "it's"), ("string", "a\\'; DROP", "'a\\\\\\'; DROP'", "a\\'; DROP"),
    ("boolean", True, "TRUE", True), ("boolean", "false", "FALSE", False),
])
def test_typed_literals(kind, value, literal, raw):
    assert VAR_LITERALS[kind](value) == (literal, raw)


@pytest.mark.parametrize("kind, value", [
    ("double", "0.9; DROP TABLE x"), ("double", "inf"), ("double", True), ("double", "0x10"),
    ("int", "1.5"), ("int", "1 OR 1=1"), ("int", False),
    ("interval", "2 minutes'; DROP"), ("interval", "2 fortnights"), ("interval", "INTERVAL 2 minutes"),
    ("boolean", "yes"), ("string", None),
])
def test_bad_values_are_refused(kind, value):
    with pytest.raises(ValueError):
        VAR_LITERALS[kind](value)


def test_string_literal_round_trips_through_sqlglot():
    import sqlglot

    from runner.compile.dialect import FraudSpark

    for text in ["plain", "it's", "back\\slash", "'; DROP TABLE x; --"]:
        tree = sqlglot.parse_one(f"SELECT {sql_string(text)} AS s", read=FraudSpark)
        assert tree.expressions[0].this.this == text


def test_var_keeps_raw_for_config_and_text_for_window(repo):
    v = resolve_vars(load_project(repo))["watermark"]
    assert isinstance(v, SqlVar) and v == "INTERVAL '2 minutes'" and v.raw == "2 minutes" and v.text == "'2 minutes'"


def test_project_value_of_wrong_type_names_project_file(repo, tmp_path):
    (tmp_path / "project.yml").write_text((repo / "project.yml").read_text().replace(
        "max: 1, value: 0.9}", "max: 1, value: high}"))
    with pytest.raises(RunnerError) as info:
        resolve_vars(load_project(tmp_path))
    assert "project.yml:" in info.value.where and "threshold" in info.value.message
