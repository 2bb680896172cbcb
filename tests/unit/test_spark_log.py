"""runner/stream/spark_log.py without a JVM: the options that load the runner's log4j2
configuration, and the line of a log a failure is reported with."""
from __future__ import annotations

import shlex

from runner.stream import spark_log


def test_java_options_load_the_runners_config_and_quote_a_path_with_a_space(tmp_path):
    log = tmp_path / "my project" / "plan.log"
    words = shlex.split(spark_log.java_options(log, "INFO", verbose=False))
    assert f"-Dlog4j2.configurationFile={spark_log.CONFIG.resolve().as_uri()}" in words
    assert f"-Drunner.log.file={log}" in words                # one word, space and all
    assert "-Drunner.log.level=info" in words and "-Drunner.console.level=off" in words
    assert "-Drunner.console.level=info" in shlex.split(spark_log.java_options(log, "INFO", verbose=True))
    assert spark_log.CONFIG.is_file()


def test_first_error_is_sparks_logged_error_else_the_jvms_own_line(tmp_path):
    log = tmp_path / "apply.log"
    log.write_text("WARNING: Using incubator modules: jdk.incubator.vector\n"
                   "2026-11-29 19:28:58.104 WARN Utils: Your hostname, vm, resolves to a loopback address\n"
                   "2026-11-29 19:29:01.000 ERROR MicroBatchExecution: Query kpis terminated with error\n"
                   "\tat org.apache.spark...\n")
    assert spark_log.first_error(log) == "MicroBatchExecution: Query kpis terminated with error"
    log.write_text("WARNING: Using incubator modules: jdk.incubator.vector\n"
                   "Invalid maximum heap size: -Xmxabc\nError: Could not create the Java Virtual Machine.\n")
    assert spark_log.first_error(log) == "Invalid maximum heap size: -Xmxabc"
    assert spark_log.first_error(tmp_path / "none.log") is None
