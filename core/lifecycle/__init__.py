"""Keeping a fine-tune worth it: the promoted version of each task (promotion.py), scheduled
retraining pipelines (schedules.py, pipelines.py), contenders and deployment."""
