"""nasbench-harness: robust differentiable NAS on NAS-Bench-201 and NAS-Bench-1Shot1."""

__version__ = "0.1.0"
