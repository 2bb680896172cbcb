"""The runner's verbs, nothing else: each parses options and calls one module."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from runner.errors import RunnerError

console = Console(stderr=False)
err_console = Console(stderr=True)


class Context:
    def __init__(self, project_dir: str, target: str | None, master: str | None):
        self.project_dir = project_dir
        self.target = target
        self.master = master
        self._project = None

    @property
    def project(self):
        if self._project is None:
            from runner.project import load_project
            self._project = load_project(self.project_dir, target=self.target, master=self.master)
        return self._project


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--project", "project_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder holding project.yml and sql/.")
@click.option("--target", default=None, envvar="RUNNER_TARGET", help="Target from project.yml (default: its default_target, `local`).")
@click.option("--master", default=None, help="Spark master URL, overriding the target's (e.g. spark://host:7077).")
@click.version_option(package_name="fraud-stream")
@click.pass_context
def cli(ctx, project_dir, target, master):
    """A SQL-first streaming fraud detector.

    Card transactions stream through Kafka, a trained model scores each one inside
    Spark Structured Streaming, alerts go to Kafka and Parquet, and per-minute KPIs
    are computed on event time. The streaming logic is Jinja-templated Spark SQL in sql/.
    """
    ctx.obj = Context(project_dir, target, master)


# --------------------------------------------------------------------------- kafka

@cli.group()
def kafka():
    """A local single-node Kafka broker (KRaft) from the jars in jvm/, for machines without Docker."""


def _broker_dir(ctx: Context, data_dir: str | None) -> Path:
    if data_dir:
        return Path(data_dir)
    try:
        return ctx.project.runtime_dir / "kafka"
    except RunnerError:
        return Path(".runtime") / "kafka"


_data_dir_opt = click.option("--data-dir", default=None, type=click.Path(file_okay=False),
                             help="Broker state folder.  [default: .runtime/kafka]")


@kafka.command("start")
@click.option("--port", default=9092, show_default=True, type=click.IntRange(1, 65535), help="PLAINTEXT port on 127.0.0.1.")
@_data_dir_opt
@click.option("--topics/--no-topics", default=True, show_default=True, help="Create the project's topics once it answers.")
@pass_ctx
def kafka_start(ctx, port, data_dir, topics):
    """Format storage on first use, start the broker in the background, wait until it answers."""
    from runner import kafka_local
    from runner.kafka_clients import ensure_topics

    state = kafka_local.start(_broker_dir(ctx, data_dir), port)
    console.print(f"kafka: running on {state.bootstrap} (pid {state.pid}), data in {state.data_dir}")
    if topics:
        try:
            wanted = ctx.project.topics
        except RunnerError:
            wanted = {}
        created = ensure_topics({"bootstrap.servers": state.bootstrap}, wanted)
        if created:
            console.print(f"kafka: created topics {', '.join(created)}")


@kafka.command("stop")
@_data_dir_opt
@pass_ctx
def kafka_stop(ctx, data_dir):
    """Stop the broker started by `kafka start` (that process only) and wait for it to exit."""
    from runner import kafka_local

    state = kafka_local.stop(_broker_dir(ctx, data_dir))
    console.print(f"kafka: stopped (pid {state.pid})" if state else "kafka: not running")


@kafka.command("status")
@_data_dir_opt
@pass_ctx
def kafka_status(ctx, data_dir):
    """Say whether the broker runs, its port, pid and topics. Exit 1 when it does not run."""
    from runner import kafka_local
    from runner.kafka_clients import list_topics

    state = kafka_local.read_state(_broker_dir(ctx, data_dir))
    if not state:
        console.print("kafka: not running")
        sys.exit(1)
    topics = list_topics({"bootstrap.servers": state.bootstrap})
    console.print(f"kafka: running on {state.bootstrap} (pid {state.pid}), data in {state.data_dir}")
    console.print(f"topics: {', '.join(topics) if topics else '(none)'}")


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="runner")
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except RunnerError as e:
        err_console.print(f"error: {e}", style="red", highlight=False, markup=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
