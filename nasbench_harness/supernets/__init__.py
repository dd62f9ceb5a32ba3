"""PyTorch one-shot networks (supernets) for each search space, and their discretised nets."""
