"""Helpers for bench/realtime_bench.py: lean clients, server control and workloads."""
