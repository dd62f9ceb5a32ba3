"""Search methods: the loop, its hook points, and methods composed of components."""
