"""Benchmarks that need simulators (a broker, simulated devices); ``edge bench`` runs them as programs."""
