"""Benchmarks behind ``edge bench``; each returns value, baseline, ratio and unit measured in one run."""
