"""What stands around the pipeline: the local broker, the producer (replay), training,
synthetic data, audit, report, dashboard, the demo and the SQL unit tests."""
