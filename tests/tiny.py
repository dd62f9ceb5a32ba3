"""The tiny search settings the method tests share: 4 channels, one cell per stage (NB201) or
three cells (NB-1Shot1), batch 16, the eigenvalue every epoch on 8 images, one thread."""

from __future__ import annotations

TINY = {
    "model": {"channels": 4, "cells_per_stage": 1},
    "batch_size": 16,
    "tracking": {"eigen_every": 1, "eigen_batch_size": 8},
    "threads": 1,
}
TINY_1SHOT1 = {**TINY, "space": "nb1shot1-1", "model": {"channels": 4, "num_cells": 3}}
