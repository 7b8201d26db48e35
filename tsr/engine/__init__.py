"""Training loop and the one evaluator."""
