"""Where Spark's and the JVM's own lines go: the verb's log file, not the terminal.

The CLI says once per process where the log goes (`configure`); `session.build_session` then
starts the driver JVM through `launch` before SparkSession.builder would. Two kinds of lines are
caught: what Spark logs through log4j (the hostname and native-hadoop warnings, "Truncated the
string representation of a plan", ...), which the runner's log4j2.properties sends to the file;
and what the JVM and spark-submit print on stderr before log4j starts ("WARNING: Using incubator
modules", "Using Spark's default log4j profile"), caught by pointing the gateway process's stderr
at the same file. Its stdout stays the terminal's: the console sink prints there.

Without `configure` (the tests' shared session, the benchmarks) Spark logs as it always did.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CONFIG = Path(__file__).with_name("log4j2.properties")
DEFAULT_LEVEL = "WARN"


@dataclass
class LogSettings:
    verb: str
    runtime_dir: Callable[[], Path]     # the project's runtime folder, known only once it loads
    level: str = DEFAULT_LEVEL
    verbose: bool = False               # Spark's lines on stderr too (and the JVM's own)
    file: Path | None = None            # set when the JVM starts

    def path(self) -> Path:
        return self.runtime_dir() / "logs" / f"{self.verb}.log"


_settings: LogSettings | None = None


def configure(verb: str, runtime_dir: Callable[[], Path], *, level: str = DEFAULT_LEVEL, verbose: bool = False) -> None:
    global _settings
    _settings = LogSettings(verb, runtime_dir, level.upper(), verbose)


def release() -> None:
    """The verb is done: forget its settings unless it started the JVM (which logs there for the
    rest of the process), so a later session in this process (a test's) starts as it would have."""
    global _settings
    if _settings is not None and _settings.file is None:
        _settings = None


def settings() -> LogSettings | None:
    return _settings


def current_file() -> Path | None:
    """The log file Spark writes to in this process, once a verb started it."""
    return _settings.file if _settings else None


def java_options(log_file: Path, level: str, verbose: bool) -> str:
    """The driver JVM's -D options that load the runner's log4j2 configuration."""
    props = {"log4j2.configurationFile": CONFIG.resolve().as_uri(), "runner.log.file": str(log_file),
             "runner.log.level": level.lower(), "runner.console.level": level.lower() if verbose else "off"}
    # spark-submit splits extraJavaOptions like a shell: a path with a space stays one word quoted
    return " ".join(f'"-D{k}={v}"' if " " in v else f"-D{k}={v}" for k, v in props.items())


def launch(conf: dict[str, str], *, master: str, app_name: str) -> dict[str, str]:
    """Start the driver JVM (pyspark's gateway) with its log in the verb's file; returns the conf
    the SparkSession is then built with. A no-op when no verb configured a log, or a JVM runs."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if _settings is None or SparkContext._gateway is not None:
        return conf
    log_file = _open_log()
    ours = java_options(log_file, _settings.level, _settings.verbose)
    conf = {**conf, "spark.driver.extraJavaOptions": " ".join(
        o for o in (conf.get("spark.driver.extraJavaOptions"), ours) if o)}
    # spark-submit sees what SparkSession.builder would have given it (YARN's set-up needs the master)
    spark_conf = SparkConf(loadDefaults=False).setMaster(master).setAppName(app_name)
    for key, value in conf.items():
        spark_conf.set(key, value)
    if _settings.verbose:
        gateway = launch_gateway(spark_conf)
    else:
        with open(log_file, "ab") as stderr:   # the child keeps its own copy of the descriptor
            gateway = launch_gateway(spark_conf, popen_kwargs={"stderr": stderr})
        _python_loggers_to(log_file)
    SparkContext._ensure_initialized(gateway=gateway, conf=spark_conf)
    return conf


def _open_log() -> Path:
    """The verb's log file, emptied the first time this run writes to it."""
    if _settings.file is None:
        log_file = _settings.path()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text("")   # this run's log only
        _settings.file = log_file
    return _settings.file


def launch_private_gateway():
    """A JVM of the storage layer's own (runner/stream/storage.py reads hdfs:// and s3a:// before
    or without a session), its lines in the verb's log like the session's."""
    from pyspark import SparkConf
    from pyspark.java_gateway import launch_gateway

    if _settings is None:
        return launch_gateway()
    log_file = _open_log()
    conf = SparkConf(loadDefaults=False).set(
        "spark.driver.extraJavaOptions", java_options(log_file, _settings.level, _settings.verbose))
    if _settings.verbose:
        return launch_gateway(conf)
    with open(log_file, "ab") as stderr:
        return launch_gateway(conf, popen_kwargs={"stderr": stderr})


# pyspark's and py4j's Python loggers, which write to stderr: pyspark logs an analysis error's
# query context as a JSON line (errors/exceptions/base.py) before the runner can say it in one.
PYSPARK_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
PY4J_LOGGER = "py4j"


def _python_loggers_to(log_file: Path) -> None:
    import logging

    from pyspark.logger import PySparkLogger

    for name in PYSPARK_LOGGERS:
        logger = PySparkLogger.getLogger(name)   # made now with pyspark's class, so its calls still work
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(logging.FileHandler(log_file))   # in pyspark's JSON, as before
        logger.propagate = False
    py4j = logging.getLogger(PY4J_LOGGER)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    py4j.addHandler(handler)
    py4j.propagate = False


# Spark's error lines in its log ("2026-11-29 19:25:58.123 ERROR MicroBatchExecution: ..."); when
# the JVM could not start, its own first line says why ("The Java thread stack size specified is
# too small..." before "Error: Could not create the Java Virtual Machine.").
_LOGGED_ERROR = re.compile(r"^\S+ \S+ (?:ERROR|FATAL) (\S+: .*)$")
_NOT_AN_ERROR = re.compile(r"^(?:WARNING: |Using Spark's default log4j profile|\S+ \S+ (?:WARN|INFO|DEBUG|TRACE) |\s)")


def first_error(log_file: Path | None) -> str | None:
    """The first error line in a log: Spark's logged ERROR (logger: message), else the first line
    that is not a warning (the JVM's own, when it exited before log4j started)."""
    if not log_file or not log_file.is_file():
        return None
    other = None
    with open(log_file, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = _LOGGED_ERROR.match(line)
            if m:
                return m.group(1)
            if other is None and line.strip() and not _NOT_AN_ERROR.match(line):
                other = line
    return other


def error_line(exc: BaseException) -> str:
    """The one line of a Spark failure a person needs: Spark's message for an error the JVM
    raised, the JVM's own error when it could not start, else the exception's first line."""
    from runner.stream.apply import error_summary

    if getattr(exc, "getCondition", lambda: None)() == "JAVA_GATEWAY_EXITED":
        return first_error(current_file()) or "the JVM exited while starting"
    java = getattr(exc, "java_exception", None)   # py4j's Py4JJavaError: "An error occurred while calling ..."
    if java is not None:
        with contextlib.suppress(Exception):   # the JVM is gone: fall back to the text py4j kept
            return str(java.toString())
    return error_summary(exc)
