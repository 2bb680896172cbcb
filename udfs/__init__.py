"""Python that SQL can call by name: the model-backed fraud_prob."""
