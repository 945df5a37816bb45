"""Drift statistics and decisions: pure functions over counts."""
