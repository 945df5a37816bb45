"""Prometheus: the one place the operator queries a Prometheus server (client.py), and the
pure queries and reply parsing it uses (queries.py)."""
