"""The benchmarks (each run through its shell wrapper beside it, e.g. scripts/bench/core) and
what they share (`common`). A package so that scripts/load_test.py and the benchmarks import
the shared parts as `bench.common`, `bench.core`, `bench.proxy`."""
