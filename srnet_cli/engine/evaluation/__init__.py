"""Evaluation: predictions over evaluation sets and the metrics researchers report."""
