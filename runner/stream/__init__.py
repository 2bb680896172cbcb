"""Run time: manifest -> SparkSession, Kafka sources, streaming queries, checkpoints, outputs.

Reads what compile time wrote; never renders Jinja.
"""
