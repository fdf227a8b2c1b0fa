"""Benchmarks: numbers are measured here, never asserted in timed tests."""
