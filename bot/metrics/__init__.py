"""Metrics: the registry, the query grammar, snapshots and answers."""
