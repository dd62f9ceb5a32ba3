"""Small NB101 tfrecord files in the official format, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype
from nasbench_harness.tabular.nb101_records import Evaluation, encode_record
from nasbench_harness.tabular.tfrecord import write_records

S1 = [
    "|conv3x3-bn-relu~0|conv3x3-bn-relu~0~1|maxpool3x3~0~2|conv1x1-bn-relu~1~3|output~2~4|",
    "|conv1x1-bn-relu~0|conv3x3-bn-relu~0~1|conv3x3-bn-relu~1~2|maxpool3x3~0~3|output~3~4|",
]
ABSENT = "|maxpool3x3~0|maxpool3x3~0~1|maxpool3x3~0~1|maxpool3x3~0~1|output~0~4|"


def cell(text: str) -> tuple[str, str, list[str]]:
    spec = NB1Shot1Genotype.from_string(1, text).to_spec().pruned()
    return NB1Shot1Genotype.from_string(1, text).module_hash(), spec.adjacency_string, list(spec.ops)


def runs(rng: np.random.Generator, epochs: int) -> list[Evaluation]:
    start = Evaluation(0.0, 0.0, 0.1, 0.1, 0.1)  # the placeholder entry the official API ignores
    half = Evaluation(epochs / 2, *rng.uniform([10, 0.5, 0.5, 0.5], [500, 0.9, 0.9, 0.9]))
    final = Evaluation(float(epochs), *rng.uniform([500, 0.8, 0.8, 0.8], [2000, 1.0, 0.95, 0.95]))
    return [start, half, final]


def write_nb101(path: Path, cells: list[str], budgets: tuple[int, ...] = (108,), repeats: int = 3) -> dict:
    """A small official-format file; returns {hash: {epochs: [evaluations per repeat]}, "params": {...}}."""
    rng = np.random.default_rng(7)
    truth: dict = {"params": {}}
    payloads = []
    for text in cells:
        h, adjacency, ops = cell(text)
        truth["params"][h] = int(rng.integers(100_000, 5_000_000))
        for epochs in budgets:
            for _ in range(repeats):
                evaluations = runs(rng, epochs)
                truth.setdefault(h, {}).setdefault(epochs, []).append(evaluations)
                payloads.append(encode_record(h, epochs, adjacency, ops, evaluations, truth["params"][h]))
    write_records(path, payloads)
    return truth
