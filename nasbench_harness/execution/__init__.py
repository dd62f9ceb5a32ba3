"""Running many searches: suites (YAML grids) and executors."""
