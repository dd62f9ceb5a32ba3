"""What the search loop needs to know about a search space, behind one small interface.

A space builds its supernet, initialises the flat-or-shaped alphas, turns alphas into mixing
weights (a softmax per group), derives the genotype a method returns, builds the final net's
weights and mask, and scores a genotype against its tabular benchmark. The loop and the methods
never test which space they run on: what a method needs to know (which groups choose ops, a
partial-channel supernet, the forward options of a sampled cell) the adapter says. The spaces
themselves are listed in :mod:`nasbench_harness.spaces.catalog`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from nasbench_harness.spaces.catalog import get_space_info, open_benchmark


class SearchSpaceAdapter(Protocol):
    """The space-specific half of a search."""

    name: str
    group_sizes: tuple[int, ...]
    """Sizes of the softmax groups of the flattened alphas (for the Hessian's flat directions)."""
    op_groups: tuple[bool, ...]
    """Per softmax group: True when it chooses an op (NB201: every edge), False when it chooses
    the cell's topology (NB-1Shot1's output and input groups)."""

    def build_net(self, model: Any, num_classes: int, partial_channels: int | None = None) -> nn.Module: ...
    def init_alphas(self, generator: torch.Generator, scale: float) -> torch.Tensor: ...
    def softmax(self, alphas: torch.Tensor) -> torch.Tensor: ...
    def derive(self, alphas: torch.Tensor, include_none: bool) -> Any: ...
    def final_net(self, genotype: Any, device: torch.device) -> tuple[torch.Tensor, Any]: ...
    def open_benchmark(self, data_dir: str | os.PathLike[str] | None) -> Any: ...
    def genotype_columns(self, genotype: Any, weights: torch.Tensor) -> dict[str, Any]: ...
    def score_columns(self, bench: Any, genotype: Any, dataset: str) -> dict[str, Any]: ...
    def alpha_rows(self, epoch: int, alphas: torch.Tensor, weights: torch.Tensor) -> list[dict[str, Any]]: ...
    def sample_with_truth(self, bench: Any, n: int, seed: int, dataset: str) -> list[tuple[Any, float]]: ...
    def sampled_ops_forward(self, weights: torch.Tensor) -> dict[str, Any]: ...


@dataclass
class NB201Space:
    """NAS-Bench-201: alphas (6 edges, 5 ops), scored against the NB201 table."""

    name: str = "nb201"
    group_sizes: tuple[int, ...] = (5,) * 6
    op_groups: tuple[bool, ...] = (True,) * 6

    def build_net(self, model: Any, num_classes: int, partial_channels: int | None = None) -> nn.Module:
        """The supernet; ``partial_channels`` K: PC-DARTS's (1/K of the channels, edge normalisation)."""
        from nasbench_harness.supernets.nb201 import NB201SearchNet
        from nasbench_harness.supernets.nb201_pc import PCNB201SearchNet

        args = (model.channels, model.cells_per_stage, num_classes, model.bn_track_running_stats)
        return NB201SearchNet(*args) if partial_channels is None else PCNB201SearchNet(*args, partial_channels)

    def init_alphas(self, generator: torch.Generator, scale: float) -> torch.Tensor:
        from nasbench_harness.supernets.nb201 import init_alphas

        return init_alphas(generator, scale)

    def softmax(self, alphas: torch.Tensor) -> torch.Tensor:
        return torch.softmax(alphas, dim=-1)

    def derive(self, alphas: torch.Tensor, include_none: bool) -> Any:
        from nasbench_harness.supernets.nb201 import derive_genotype

        return derive_genotype(alphas, include_none=include_none)

    def final_net(self, genotype: Any, device: torch.device) -> tuple[torch.Tensor, Any]:
        from nasbench_harness.supernets.nb201 import final_net_mask, one_hot

        return one_hot(genotype, device), final_net_mask(genotype)

    def open_benchmark(self, data_dir: str | os.PathLike[str] | None) -> Any:
        return open_benchmark(self.name, data_dir)

    def genotype_columns(self, genotype: Any, weights: torch.Tensor) -> dict[str, Any]:
        counts = genotype.op_counts()
        return {
            "genotype": genotype.to_string(),
            "genotype_index": genotype.index,
            "n_skip_connect": counts.skip_connect,
            "n_none": counts.none,
            "n_parameter_free": counts.parameter_free,
        }

    def score_columns(self, bench: Any, genotype: Any, dataset: str) -> dict[str, Any]:
        from nasbench_harness.tracking.scoring import score_columns

        return score_columns(bench, genotype, dataset)

    def sample_with_truth(self, bench: Any, n: int, seed: int, dataset: str) -> list[tuple[Any, float]]:
        """``n`` random cells and their table validation error (%, the searched dataset's valid metric)."""
        from nasbench_harness.spaces.nb201 import NB201Genotype
        from nasbench_harness.tabular.nb201_metrics import resolve_metric

        values = bench.values(resolve_metric(dataset, "valid"))
        known = np.flatnonzero(np.isfinite(values))
        picked = np.random.default_rng(seed).choice(known, size=min(n, len(known)), replace=False)
        return [(NB201Genotype.from_index(int(i)), 100.0 - float(values[i])) for i in picked]

    def sampled_ops_forward(self, weights: torch.Tensor) -> dict[str, Any]:
        """Forward options that compute a one-hot sample as GDAS's NB201 code does
        (``D-X-Y/AutoDL-Projects``, ``xautodl/models/cell_searchs/search_cells.py``,
        ``NAS201SearchCell.forward_gdas``, lines 72-86): on each edge only the sampled op, and every
        other op's (zero) weight added to the edge's output as a constant, so that weight's
        gradient is the sum of the node's gradient."""
        return {"mask": weights.detach() != 0, "masked_as_constants": True}

    def alpha_rows(self, epoch: int, alphas: torch.Tensor, weights: torch.Tensor) -> list[dict[str, Any]]:
        from nasbench_harness.spaces.nb201 import EDGES, OPS

        a, w = alphas.detach().cpu(), weights.detach().cpu()
        return [
            {"epoch": epoch, "edge": f"{s}->{d}", "op": op, "alpha": float(a[e, o]), "weight": float(w[e, o])}
            for e, (s, d) in enumerate(EDGES)
            for o, op in enumerate(OPS)
        ]


@dataclass
class NB1Shot1Space:
    """An NB-1Shot1 space: flat alphas (ops, output, inputs), scored against NB101."""

    number: int
    name: str = ""
    group_sizes: tuple[int, ...] = field(default=())
    op_groups: tuple[bool, ...] = field(default=())

    def __post_init__(self) -> None:
        from nasbench_harness.spaces.nb1shot1 import get_space
        from nasbench_harness.supernets.nb1shot1 import Layout

        self.layout = Layout(get_space(self.number))
        self.name = self.name or f"nb1shot1-{self.number}"
        self.group_sizes = self.layout.group_sizes
        self.op_groups = tuple(name.startswith("ops") for name, _, _ in self.layout.groups)

    def build_net(self, model: Any, num_classes: int, partial_channels: int | None = None) -> nn.Module:
        """The one-shot model; ``partial_channels`` K: 1/K of each block's channels through its mixed op."""
        from nasbench_harness.supernets.nb1shot1 import NB1Shot1SearchNet

        return NB1Shot1SearchNet(
            self.number,
            model.channels,
            model.num_cells,
            num_classes,
            model.bn_track_running_stats,
            partial_channels=partial_channels or 1,
        )

    def init_alphas(self, generator: torch.Generator, scale: float) -> torch.Tensor:
        return scale * torch.randn(self.layout.size, generator=generator)

    def softmax(self, alphas: torch.Tensor) -> torch.Tensor:
        from nasbench_harness.supernets.nb1shot1 import grouped_softmax

        return grouped_softmax(alphas, self.group_sizes)

    def _parts(self, flat: torch.Tensor) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        w = self.layout.split(flat.detach().float().cpu())
        return w.ops.numpy(), w.output.numpy(), [t.numpy() for t in w.inputs if t is not None]

    def derive(self, alphas: torch.Tensor, include_none: bool) -> Any:
        from nasbench_harness.spaces.nb1shot1_derive import derive_genotype

        return derive_genotype(self.number, *self._parts(alphas))

    def final_net(self, genotype: Any, device: torch.device) -> tuple[torch.Tensor, Any]:
        from nasbench_harness.spaces.nb1shot1_derive import genotype_weights
        from nasbench_harness.supernets.nb1shot1 import Mask

        ops, output, inputs = genotype_weights(genotype)
        flat = torch.tensor(
            np.concatenate(
                [np.asarray(ops, dtype=np.float32).reshape(-1), np.asarray(output, dtype=np.float32)]
                + [np.asarray(x, dtype=np.float32) for x in inputs]
            ),
            device=device,
        )
        parts = iter(inputs)
        mask = Mask(
            ops=tuple(tuple(bool(v) for v in row) for row in np.asarray(ops)),
            output=tuple(bool(v) for v in np.asarray(output)),
            inputs=tuple(
                tuple(bool(v) for v in next(parts)) if n in self.layout.choice_nodes else None
                for n in range(1, self.layout.blocks + 1)
            ),
        )
        return flat, mask

    def open_benchmark(self, data_dir: str | os.PathLike[str] | None) -> Any:
        return open_benchmark(self.name, data_dir)

    def genotype_columns(self, genotype: Any, weights: torch.Tensor) -> dict[str, Any]:
        from nasbench_harness.spaces.nb101 import MAXPOOL3X3

        output = self.layout.split(weights.detach().float().cpu()).output
        return {
            "genotype": genotype.to_string(),
            "module_hash": genotype.module_hash(),
            "n_maxpool": sum(op == MAXPOOL3X3 for op in genotype.ops),
            "input_output_weight": float(output[0]),
            "input_output_dominates": bool(int(output.argmax()) == 0),
        }

    def score_columns(self, bench: Any, genotype: Any, dataset: str) -> dict[str, Any]:
        from nasbench_harness.tabular.nb1shot1 import score

        s = score(bench, genotype)
        return {
            "in_benchmark": s.in_benchmark,
            "benchmark_status": s.status,
            "nb101_valid_acc": 100.0 * s.validation_accuracy,
            "nb101_test_acc": 100.0 * s.test_accuracy,
            # in accuracy points, as on NB201 (NB-1Shot1's figures plot the same as error fractions)
            "regret_valid": 100.0 * s.validation_regret,
            "regret_test": 100.0 * s.test_regret,
        }

    def sample_with_truth(self, bench: Any, n: int, seed: int, dataset: str) -> list[tuple[Any, float]]:
        """``n`` random configurations whose cell the NB101 table has, and its mean validation error (%)."""
        from nasbench_harness.spaces.nb1shot1 import random_genotype
        from nasbench_harness.tabular.nb1shot1 import score

        rng = np.random.default_rng(seed)
        out: list[tuple[Any, float]] = []
        for _ in range(200 * max(n, 1)):  # about a third of the space is in the shared table
            if len(out) == n:
                break
            genotype = random_genotype(self.number, rng)
            s = score(bench, genotype)
            if s.in_benchmark:
                out.append((genotype, 100.0 * (1.0 - s.validation_accuracy)))
        return out

    def sampled_ops_forward(self, weights: torch.Tensor) -> dict[str, Any]:
        """Forward options that compute a sample as the NB-1Shot1 authors' GDAS does
        (``automl/nasbench-1shot1``, ``optimizers/gdas/model_search.py``, ``MixedOpGDAS.forward``,
        lines 16-27): in each block only the ops of nonzero weight (the sampled one), so the others'
        weights get no gradient; every input and output edge is kept."""
        from nasbench_harness.supernets.nb1shot1 import Mask

        w = self.layout.split(weights.detach())
        return {
            "mask": Mask(
                ops=tuple(tuple(row) for row in (w.ops != 0).tolist()),  # one read of the sample
                output=(True,) * w.output.numel(),
                inputs=tuple(None if t is None else (True,) * t.numel() for t in w.inputs),
            )
        }

    def alpha_rows(self, epoch: int, alphas: torch.Tensor, weights: torch.Tensor) -> list[dict[str, Any]]:
        from nasbench_harness.spaces.nb101 import OPS

        a, w = alphas.detach().cpu(), weights.detach().cpu()
        rows = []
        for name, start, length in self.layout.groups:
            for k in range(length):
                if name.startswith("ops"):
                    edge, choice = f"block{name[3:]}", OPS[k]
                elif name == "output":
                    edge, choice = "output", "input" if k == 0 else f"block{k}"
                else:
                    edge, choice = f"block{name[6:]}", "input" if k == 0 else f"block{k}"
                    edge += "-in"
                rows.append(
                    {
                        "epoch": epoch,
                        "edge": edge,
                        "op": choice,
                        "alpha": float(a[start + k]),
                        "weight": float(w[start + k]),
                    }
                )
        return rows


def get_search_space(name: str) -> SearchSpaceAdapter:
    """The adapter of the space ``name`` (:data:`nasbench_harness.spaces.catalog.SPACES`)."""
    info = get_space_info(name)
    return NB201Space() if info.family == "nb201" else NB1Shot1Space(info.number or 0)
