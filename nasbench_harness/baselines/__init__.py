"""Table-only searches (random search, regularized evolution) scored on the tabular benchmarks; no torch."""
