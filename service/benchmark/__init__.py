"""The `docadapt bench` and `docadapt perf` commands: benchmarks that print figures and ratios."""
