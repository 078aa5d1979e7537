"""Benchmarks. Each script here runs on its own: see bench/README.md."""
