"""Search methods: ``engine/`` (the loop, its hook points, run start and resume, method options,
the space adapters), ``components/`` (reusable components by hook kind) and ``zoo/`` (one file
per paper's method, each a composition of an arch step and components)."""
