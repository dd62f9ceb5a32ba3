"""Reusable pieces of methods: perturbations, regularisers, early stopping, Hessian, samplers."""
