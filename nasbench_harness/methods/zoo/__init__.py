"""One module per paper's method; :mod:`nasbench_harness.registry` maps method names to them."""
