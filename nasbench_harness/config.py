"""The resolved configuration of one search run: presets, ``key=value`` overrides, validation.

A run's config is a preset (:mod:`nasbench_harness.presets`: ``paper``, the method's own
protocol for the space, :mod:`nasbench_harness.protocols`; ``common``, the space's published
setting shared by every method; ``cpu``, a small setting that finishes a 50-epoch search in
minutes on two cores) plus overrides. Unknown keys, wrong types, non-finite numbers (``inf``,
``nan``) and values outside a key's range are errors naming the key, the value and what would
be right. A ``paper`` config records the protocol it took its values from in ``protocol``.

The thread count is not bounded here (a suite may be planned on a login node and run on a larger
machine): :func:`nasbench_harness.threads.check_threads` bounds it by the CPUs of the machine a
run starts on.
"""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nasbench_harness.errors import ConfigError, echo, validation_problems
from nasbench_harness.presets import LAPTOP_PRESETS, NB1SHOT1_PRESETS, PRESETS, PROTOCOL_PRESETS

__all__ = ["LAPTOP_PRESETS", "NB1SHOT1_PRESETS", "PRESETS", "PROTOCOL_PRESETS"]  # re-exported: callers import them here


class _Strict(BaseModel):
    # allow_inf_nan=False: ``--set optim.lr=inf`` is an error naming the key, not a null in the manifest
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


MAX_EPOCHS = 10_000
"""More epochs than any search needs (DARTS searches 50): a larger value is taken for a typo."""
MAX_PLUGIN_TIMEOUT_S = 86_400.0
"""Longest time limit for one plugin call (a day); a longer one is no limit in practice."""
MAX_CHANNELS = 128
"""Widest supernet accepted (the papers search with 16): the NB201 supernet's weights grow as
channels^2 x cells (stages of C, 2C and 4C channels), so 128 channels with 16 cells per stage
already need about 4 GB for weights, gradients and momentum."""


class DataConfig(_Strict):
    """Images the search sees. Sizes are image counts per split (None: the whole split)."""

    train_size: int | None = Field(None, ge=2, description="search-train images (class-balanced subset)")
    valid_size: int | None = Field(None, ge=2, description="search-valid images (class-balanced subset)")
    image_size: int | None = Field(
        None, ge=4, le=32, description="down-sample to this many pixels a side (4, 8, 16 or 32: a divisor of 32)"
    )
    split_seed: int = Field(0, ge=0, description="seed of the train/valid split (fixed, recorded)")
    subset_seed: int = Field(0, ge=0, description="seed of the subsets")
    augment: bool = Field(True, description="random crop + horizontal flip on the weight and arch steps' batches")

    @field_validator("image_size")
    @classmethod
    def _divides(cls, size: int | None) -> int | None:
        if size is not None and 32 % size:
            raise ValueError(
                f"image_size {size}: images are down-sampled by an integer factor, so use 4, 8, 16 or 32 "
                "(ImageNet16-120: up to 16)"
            )
        return size


class ModelConfig(_Strict):
    """The supernet: C channels in the first stage; NB201: N cells per stage; NB-1Shot1: cells in all."""

    channels: int = Field(16, ge=1, le=MAX_CHANNELS)
    cells_per_stage: int = Field(5, ge=1, le=16, description="NB201 only")
    num_cells: int = Field(9, ge=3, le=48, description="NB-1Shot1 only: cells in 3 stacks")
    bn_track_running_stats: bool = False
    channels_last: bool | None = Field(
        None,
        description="NHWC memory format for the supernet and batches; None: per device, as measured: on the CPU "
        "(benchmarks/perf/nb201_search.py) and plain NCHW on CUDA until the GPU benchmark says otherwise "
        "(benchmarks/perf/gpu_step.py measures both); a run records the choice",
    )


def resolve_channels_last(config: SearchConfig, device: Any) -> bool:
    """``model.channels_last`` for a run on ``device`` (a torch device or its name): the config's
    value, else True on the CPU and False elsewhere."""
    chosen = config.model.channels_last
    return chosen if chosen is not None else str(getattr(device, "type", device)).split(":")[0] == "cpu"


def with_channels_last(config: SearchConfig, device: Any) -> SearchConfig:
    """``config`` with ``model.channels_last`` resolved for ``device`` (what a run records)."""
    model = config.model.model_copy(update={"channels_last": resolve_channels_last(config, device)})
    return config.model_copy(update={"model": model})


class WeightOptimConfig(_Strict):
    """SGD on the network weights, cosine learning rate from ``lr`` to ``lr_min``."""

    lr: float = Field(0.025, gt=0)
    lr_min: float = Field(0.001, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    grad_clip: float | None = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _schedule_falls(self) -> WeightOptimConfig:
        if self.lr_min > self.lr:
            raise ValueError(
                f"lr_min ({self.lr_min}) must not exceed lr ({self.lr}): the cosine schedule falls from lr to lr_min"
            )
        return self


class ArchOptimConfig(_Strict):
    """Adam on the architecture parameters, initialised ``init_scale`` * N(0, 1)."""

    lr: float = Field(3e-4, gt=0)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.5, 0.999)
    weight_decay: float = Field(1e-3, ge=0)
    init_scale: float = Field(1e-3, ge=0)

    @field_validator("betas", mode="before")
    @classmethod
    def _pair(cls, betas: Any) -> Any:
        if not isinstance(betas, list | tuple) or len(betas) != 2:
            raise ValueError(f"betas is {echo(betas)}; give a pair [beta1, beta2], each in [0, 1), e.g. [0.5, 0.999]")
        return betas


class TrackingConfig(_Strict):
    """What is measured at the end of every epoch."""

    eigen_every: int = Field(5, ge=0, description="dominant Hessian eigenvalue every k epochs (0: never)")
    eigen_batch_size: int = Field(64, ge=2)
    final_eval_images: int | None = Field(
        None,
        ge=1,
        description="search-valid images of the end-of-epoch evaluations (supernet and final net; a fixed "
        "subset, the same every epoch; None: all)",
    )
    correlation_sample: int = Field(
        0, ge=0, description="architectures (from the table) whose one-shot error is correlated with the table's"
    )
    correlation_every: int = Field(5, ge=1, description="epochs between correlation measurements")
    eval_batch_size: int = Field(
        128,
        ge=2,
        description="batch size of the end-of-epoch evaluations (fixed: search cells normalise with batch "
        "statistics, so it changes the numbers)",
    )
    sync_every: int = Field(
        10,
        ge=1,
        le=100_000,
        description="weight steps between host reads of the running loss and the finiteness flags: progress "
        "updates and non-finite losses are seen at this granularity (no effect on the numbers)",
    )


class NumericsConfig(_Strict):
    """How floating point is done on a GPU; every flag is recorded in the run's manifest."""

    tf32: bool = Field(
        False,
        description="allow TF32 in the training steps' convolutions and matmuls on GPUs that have it (the "
        "papers ran on GPUs without it); finite differences and the Hessian always run in full fp32",
    )
    deterministic: bool = Field(
        False,
        description="deterministic algorithms only (cudnn.deterministic, torch.use_deterministic_algorithms): "
        "a GPU run then resumes bit-identically, a little slower",
    )


class SpeedConfig(_Strict):
    """Options that trade exactness or start-up time for speed; none is on by default."""

    amp_bf16: bool = Field(
        False, description="bf16 autocast in the weight step (the arch step, finite differences and Hessian stay fp32)"
    )
    compile: bool = Field(False, description="torch.compile the supernet forward of the training steps")
    cuda_graph: bool = Field(
        False, description="CUDA only: capture the weight step in a CUDA graph (drops the ragged last batch)"
    )


class SelectionConfig(_Strict):
    """Perturbation-based selection (DARTS-PT), scored beside the method's own derivation
    (:mod:`nasbench_harness.methods.engine.selection`; NB201 only)."""

    perturbation: bool = Field(False, description="run DARTS-PT's selection at the last epoch (pt_* columns)")
    every: int = Field(0, ge=0, description="also every k epochs (0: only at the last)")
    tune_epochs: int = Field(5, ge=0, le=100, description="fine-tune epochs between edge decisions (DARTS-PT: 5)")
    criterion: Literal["acc", "loss"] = Field("acc", description="keep the op whose removal costs most accuracy/loss")
    lr_factor: float = Field(0.1, gt=0, le=1, description="fine-tune LR = lr_factor * optim.lr (DARTS-PT: 0.1)")


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
    protocol: str | None = Field(
        None,
        description="the method protocol the preset took its values from: METHOD/SPACE FILE sha256:DIGEST "
        "(set by the paper preset; None: no per-method protocol); recorded, changes nothing by itself",
    )
    epochs: int = Field(50, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(64, ge=2, description="images per step (at most the search-train images)")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: WeightOptimConfig = WeightOptimConfig()
    arch_optim: ArchOptimConfig = ArchOptimConfig()
    tracking: TrackingConfig = TrackingConfig()
    numerics: NumericsConfig = NumericsConfig()
    speed: SpeedConfig = SpeedConfig()
    selection: SelectionConfig = SelectionConfig()
    threads: int | None = Field(
        None, ge=1, description="CPU threads for torch (None: all cores; at most the CPUs of the machine it runs on)"
    )
    plugins: list[PluginSpec] = Field(default_factory=list)
    plugin_timeout_s: float | None = Field(
        None,
        gt=0,
        le=MAX_PLUGIN_TIMEOUT_S,
        allow_inf_nan=False,
        description="seconds one call of a plugin's hook may take before the run fails naming the plugin "
        "(None: the plugin class's own timeout_s, else no limit; main thread on POSIX only)",
    )

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

    @model_validator(mode="after")
    def _selection_on_nb201(self) -> SearchConfig:
        if self.selection.perturbation and self.space != "nb201":
            raise ValueError("selection.perturbation (DARTS-PT) decides NB201's edges; NB-1Shot1 has no such edges")
        return self

    @model_validator(mode="after")
    def _protocol_names_this_method(self) -> SearchConfig:
        if self.protocol is not None and not self.protocol.startswith(f"{self.method}/"):
            raise ValueError(
                f"protocol {self.protocol!r} is another method's; the paper preset records the protocol of "
                f"--method {self.method} (drop protocol= from the overrides)"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON values."""
        return json.loads(self.model_dump_json())


def build_config(preset: str = "cpu", overrides: dict[str, Any] | None = None) -> SearchConfig:
    """The preset (adjusted for the space named in ``overrides``) merged with ``overrides``, validated."""
    return validate_config(config_values(preset, overrides))


def config_values(preset: str = "cpu", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plain values :func:`build_config` validates: the preset for the space named in
    ``overrides`` (``paper``: overlaid with the protocol of the method named there, default
    darts, and the protocol's provenance in ``protocol``), with ``overrides`` merged in."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    overrides = overrides or {}
    space = str(overrides.get("space", "nb201"))
    merged = copy.deepcopy((NB1SHOT1_PRESETS if space.startswith("nb1shot1") else PRESETS)[preset])
    if preset in PROTOCOL_PRESETS:
        from nasbench_harness.protocols import protocol_values

        merged = _merge(merged, protocol_values(str(overrides.get("method", "darts")), space))
    merged = _merge(merged, {"preset": preset})
    return _merge(merged, copy.deepcopy(overrides))


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
