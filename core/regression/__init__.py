"""General-capability regression: the probe suite, its scorers, runs over it and the gate."""
