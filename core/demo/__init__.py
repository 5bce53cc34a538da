"""The offline demo: a small local base model and a demo dataset, built from seeds, cached."""
