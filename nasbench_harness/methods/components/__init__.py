"""Reusable components, one module per hook kind: ``arch_steps`` (how alphas move), ``mixing`` and
``samplers`` (how alphas become mixing weights), ``regularizers`` (extra loss terms, the plugin
family), ``perturbation`` (what the weight step trains under), ``training`` (weight decay, drop
path), ``early_stopping`` (stop or roll back), ``schedules``, ``groups`` and ``hessian``."""
