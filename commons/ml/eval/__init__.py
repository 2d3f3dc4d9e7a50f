"""Evaluation: tasks (YAML), the log-likelihood engine, metrics and the harness. See README.md."""
