"""Every SQL unit test under sql/ passes, run as `runner test` runs it."""
from __future__ import annotations

from runner.compile.project import load_project
from runner.tools.sqltest import check_case


def test_sql_unit_case(spark, repo, sql_case):
    check_case(spark, load_project(repo), sql_case)
