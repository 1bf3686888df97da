"""Virtual dispensers that speak protocol v1, for the demo, tests and benchmarks."""
