"""The resolved configuration of one search run: presets, ``key=value`` overrides, validation.

A run's config is a preset (``paper``: NB201's published search setting; ``cpu``: a small
setting that finishes a 50-epoch search in minutes on two cores) plus overrides. Unknown keys
and wrong types are errors naming the key and what would be right.
"""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nasbench_harness.errors import ConfigError, validation_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Images the search sees. Sizes are image counts per split (None: the whole split)."""

    train_size: int | None = Field(None, ge=2, description="search-train images (class-balanced subset)")
    valid_size: int | None = Field(None, ge=2, description="search-valid images (class-balanced subset)")
    image_size: int | None = Field(None, ge=4, description="down-sample to this many pixels a side")
    split_seed: int = Field(0, ge=0, description="seed of the train/valid split (fixed, recorded)")
    subset_seed: int = Field(0, ge=0, description="seed of the subsets")
    augment: bool = Field(True, description="random crop + horizontal flip on the weight and arch steps' batches")


class ModelConfig(_Strict):
    """The supernet: C channels in the first stage; NB201: N cells per stage; NB-1Shot1: cells in all."""

    channels: int = Field(16, ge=1)
    cells_per_stage: int = Field(5, ge=1, description="NB201 only")
    num_cells: int = Field(9, ge=3, description="NB-1Shot1 only: cells in 3 stacks")
    bn_track_running_stats: bool = False
    channels_last: bool = True


class WeightOptimConfig(_Strict):
    """SGD on the network weights, cosine learning rate from ``lr`` to ``lr_min``."""

    lr: float = Field(0.025, gt=0)
    lr_min: float = Field(0.001, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    grad_clip: float | None = Field(5.0, gt=0)


class ArchOptimConfig(_Strict):
    """Adam on the architecture parameters, initialised ``init_scale`` * N(0, 1)."""

    lr: float = Field(3e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(1e-3, ge=0)
    init_scale: float = Field(1e-3, ge=0)


class TrackingConfig(_Strict):
    """What is measured at the end of every epoch."""

    eigen_every: int = Field(5, ge=0, description="dominant Hessian eigenvalue every k epochs (0: never)")
    eigen_batch_size: int = Field(64, ge=2)
    final_eval_images: int | None = Field(None, ge=1, description="valid images for the final net (None: all)")
    correlation_sample: int = Field(
        0, ge=0, description="architectures (from the table) whose one-shot error is correlated with the table's"
    )
    correlation_every: int = Field(5, ge=1, description="epochs between correlation measurements")


class WeightRamp(_Strict):
    """A regularizer weight rising (or falling) linearly from ``start`` (first epoch) to ``end`` (last)."""

    start: float = Field(ge=0, allow_inf_nan=False)
    end: float = Field(ge=0, allow_inf_nan=False)


class PluginSpec(_Strict):
    """A plugin (see :mod:`nasbench_harness.plugins`): ``ref`` (file.py:Class,
    module:Class, entry point or built-in name), its weight (regularizers only: a constant or a
    ``{start, end}`` ramp) and its typed parameters (checked against the class's ``Params``)."""

    ref: str = Field(min_length=1)
    weight: Annotated[float, Field(ge=0, allow_inf_nan=False)] | WeightRamp = 1.0

    @field_validator("weight", mode="before")
    @classmethod
    def _ramp(cls, value: Any) -> Any:
        """``"START:END"`` (as ``--reg-weight 0:50`` writes it) is a ramp."""
        from nasbench_harness.methods.components.schedules import split_ramp

        ramp = split_ramp(value) if isinstance(value, str) else None
        return value if ramp is None else {"start": ramp[0], "end": ramp[1]}

    params: dict[str, Any] = Field(default_factory=dict)


class SearchConfig(_Strict):
    """Everything that determines a search run."""

    space: str = Field("nb201", description="a search space of nasbench_harness.spaces.catalog")
    method: str = "darts"
    method_options: dict[str, Any] = Field(default_factory=dict)
    dataset: str = "cifar10"
    seed: int = Field(0, ge=0)
    preset: str = "cpu"
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(64, ge=2)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: WeightOptimConfig = WeightOptimConfig()
    arch_optim: ArchOptimConfig = ArchOptimConfig()
    tracking: TrackingConfig = TrackingConfig()
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (None: all cores)")
    plugins: list[PluginSpec] = Field(default_factory=list)

    @field_validator("space")
    @classmethod
    def _space(cls, space: str) -> str:
        from nasbench_harness.spaces.catalog import SPACE_NAMES

        if space not in SPACE_NAMES:
            raise ValueError(f"unknown search space {space!r}; choose one of: {', '.join(SPACE_NAMES)}")
        return space

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        from nasbench_harness.data import canonical_dataset

        return canonical_dataset(value)

    @model_validator(mode="after")
    def _nb1shot1_is_cifar10(self) -> SearchConfig:
        if self.space != "nb201" and self.dataset != "cifar10":
            raise ValueError(f"NB-1Shot1 spaces are benchmarked on cifar10 only (NB101), not {self.dataset}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON values."""
        return json.loads(self.model_dump_json())


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # Calibrated on 2 CPU cores: an epoch of first-order DARTS takes about 5 s, so 50 epochs take
    # about 5 minutes, and tracking (both evaluations every epoch, the Hessian every 5) stays
    # under 10% of the epoch; see benchmarks/perf/nb201_search.py.
    "cpu": {
        "model": {"channels": 8, "cells_per_stage": 1},
        "data": {"train_size": 5000, "valid_size": 5000, "image_size": 16},
        "tracking": {"final_eval_images": 512, "eigen_batch_size": 32},
    },
}


NB1SHOT1_PRESETS: dict[str, dict[str, Any]] = {
    # NB-1Shot1's DARTS setting: C=16, 9 cells, batch 96, wd 3e-4 (the rest as NB201).
    "paper": {"batch_size": 96, "optim": {"weight_decay": 3e-4}},
    # 16x16 images with 3 stacks of 1 cell: about as long an epoch as NB201's cpu preset.
    "cpu": {
        "batch_size": 96,
        "optim": {"weight_decay": 3e-4},
        "model": {"channels": 8, "num_cells": 3},
        "data": {"train_size": 5000, "valid_size": 5000, "image_size": 16},
        "tracking": {"final_eval_images": 512, "eigen_batch_size": 32},
    },
}
"""What an NB-1Shot1 space changes in each preset (applied over the preset, under overrides)."""


def build_config(preset: str = "cpu", overrides: dict[str, Any] | None = None) -> SearchConfig:
    """The preset (adjusted for the space named in ``overrides``) merged with ``overrides``, validated."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    merged = copy.deepcopy(PRESETS[preset])
    if str((overrides or {}).get("space", "nb201")).startswith("nb1shot1"):
        merged = copy.deepcopy(NB1SHOT1_PRESETS[preset])
    merged = _merge(merged, {"preset": preset})
    merged = _merge(merged, overrides or {})
    return validate_config(merged)


def validate_config(values: dict[str, Any]) -> SearchConfig:
    """A :class:`SearchConfig` from plain values; errors name each bad key."""
    try:
        return SearchConfig.model_validate(values)
    except ValidationError as exc:
        problems = validation_problems(
            exc, lambda loc: f"{'.'.join(map(str, loc))}: unknown key{_known_keys(loc)}", "(config)"
        )
        raise ConfigError("invalid search config: " + "; ".join(problems)) from None


def _known_keys(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = SearchConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return f"; known keys here: {', '.join(model.model_fields)}"


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=0.05", "epochs=3"]`` -> nested dict. Values parse as JSON, else as strings."""
    nested: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"bad override {item!r}; write key=value, e.g. optim.lr=0.05 or epochs=10")
        value = _parse_value(raw.strip())
        _merge(nested, _nest(key.split("."), value))
    return nested


def _parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in {"none", "null"}:
        return None
    if lowered in {"true", "false"}:
        return lowered == "true"
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(parts):
        out = {part: out}
    return out


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """A new nested dict: ``base`` with ``extra`` merged in key by key (neither is changed)."""
    return _merge(copy.deepcopy(base), copy.deepcopy(extra))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base
