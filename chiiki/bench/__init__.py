"""Benchmarks that print figures for the hot paths (python -m chiiki.bench.<name>)."""
