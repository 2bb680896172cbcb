"""Collects the dbt-style SQL unit tests in tests/sql/*.yml: one pytest item per case."""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collect_file(parent, file_path):
    if file_path.suffix in (".yml", ".yaml") and file_path.parent.resolve() == HERE:
        return SqlTestFile.from_parent(parent, path=file_path)
    return None


class SqlCaseItem(pytest.Function):
    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name}"


class SqlTestFile(pytest.File):
    def collect(self):
        from runner.tools.sqltest import load_cases

        for case in load_cases(self.path):
            def run(spark, repo, case=case):
                from runner.compile.project import load_project
                from runner.tools.sqltest import check_case

                check_case(spark, load_project(repo), case)

            yield SqlCaseItem.from_parent(self, name=case.name, callobj=run)
