"""Compile time: project.yml + sql/ -> target/manifest.json.

Renders the Jinja, builds the model graph, checks refs/sources/vars and cycles, parses each model
with sqlglot and fingerprints it. Never imports Spark or anything under runner.stream / runner.tools.
"""
