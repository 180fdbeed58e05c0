"""Benchmarks, run by hand (never by the test suite). See ``bench/RESULTS.md`` for how and what."""
