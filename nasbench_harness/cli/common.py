"""Shared CLI pieces: the option vocabulary every command speaks, consoles, progress bars.

An option that several commands take (``--space``, ``--dataset``, ``--preset``, ``--device``,
``--root``, ``--data-dir``, ``--cache-dir``) is declared once here, so it has one spelling, one
help text and one validation: a value outside a closed set is typer's usage error (exit code 2)
naming the choices. Old spellings still accepted print a deprecation warning on stderr.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from nasbench_harness.config import PRESETS
from nasbench_harness.paths import CACHE_DIR_ENV, DATA_DIR_ENV
from nasbench_harness.registry import METHOD_HELP
from nasbench_harness.spaces.catalog import SPACE_NAMES, SPACES

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Directory with the raw data (benchmark files, datasets). Default: $NBH_DATA_DIR, else the user data dir.",
        show_default=False,
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar=CACHE_DIR_ENV,
        help="Directory of imported benchmark caches. Default: $NBH_CACHE_DIR, else the user cache dir.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]

# --- closed sets: choices typer validates (exit code 2 on anything else) ------------------------

Space = StrEnum("Space", [(name, name) for name in SPACE_NAMES])  # type: ignore[misc]
"""A search space of :mod:`nasbench_harness.spaces.catalog`."""
DATASET_NAMES: tuple[str, ...] = tuple(dict.fromkeys(d for info in SPACES.values() for d in info.datasets))
Dataset = StrEnum("Dataset", [(name, name) for name in DATASET_NAMES])  # type: ignore[misc]
"""A data set a search (or a table-only baseline) runs on, in its canonical spelling."""
Preset = StrEnum("Preset", [(name, name) for name in PRESETS])  # type: ignore[misc]
"""A preset of :mod:`nasbench_harness.config` (a suite's variant of the same name)."""


class Executor(StrEnum):
    """Where a sweep's runs train."""

    local = "local"
    ray = "ray"
    slurm = "slurm"


def choice_parser(enum: Any, canonical: Callable[[str], str] | None = None) -> Callable[[Any], Any]:
    """A typer ``parser`` for ``enum``: ``canonical`` maps other spellings to a member's value first;
    anything else is a usage error naming the choices."""

    def parse(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        text = str(value)
        try:
            return enum(canonical(text) if canonical else text)
        except (ValueError, LookupError):
            names = ", ".join(repr(m.value) for m in enum)
            raise typer.BadParameter(f"{text!r} is not one of {names}") from None

    return parse


def canonical_dataset(name: str) -> str:
    """``name`` in any spelling the data readers or the NB201 table know (``cifar-10``,
    ``imagenet16_120``, ``imagenet``) -> its canonical name; unknown names come back unchanged."""
    from nasbench_harness.data.readers import canonical_dataset as data_name
    from nasbench_harness.errors import NbhError
    from nasbench_harness.tabular.nb201_metrics import canonical_dataset as table_name

    for canonical in (data_name, table_name):
        try:
            return canonical(name)
        except NbhError:
            continue
    return name


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr: ``old`` still works in this release; ``new`` is the spelling to use."""
    err_console.print(
        f"warning: {old} is deprecated and goes in the next release; write {new}", markup=False, soft_wrap=True
    )


parse_space = choice_parser(Space)
parse_dataset = choice_parser(Dataset, canonical_dataset)
parse_preset = choice_parser(Preset)


def parse_device(value: Any) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; anything else is a usage error. Whether the
    device exists is checked when a run starts."""
    text = str(value)
    if text in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise typer.BadParameter(f"{text!r} is not a device; use auto, cpu, cuda or cuda:N (N: a GPU index, e.g. cuda:1)")


def parse_method(value: Any) -> str:
    """A registered search method (read from the registry when the command runs)."""
    from nasbench_harness.registry import METHODS

    text = str(value)
    if text not in METHODS:
        raise typer.BadParameter(
            f"unknown method {text!r}; registered methods: {', '.join(sorted(METHODS))} (see `nbh methods`)"
        )
    return text


def _or_list(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


SpaceOption = Annotated[
    Space,
    typer.Option(
        "--space",
        parser=parse_space,
        help=f"Search space: {_or_list(SPACE_NAMES)} (NAS-Bench-201, or NB-1Shot1 space 1, 2 or 3).",
    ),
]
DatasetOption = Annotated[
    Dataset,
    typer.Option(
        "--dataset",
        parser=parse_dataset,
        help=f"Data set: {_or_list(DATASET_NAMES)} (other spellings such as imagenet16_120 work too; "
        "NB-1Shot1 spaces: cifar10 only).",
    ),
]
PRESET_HELP = (
    "paper: the method as its reference ran it on the space (the space's published setting overlaid "
    "with the method's protocol: epochs, batch, optimisers, method options; see `nbh methods NAME`), "
    "GPU hours. common: one protocol for every method, the space's published setting (NB201: C=16, N=5, "
    "batch 64, 50 epochs, SGD 0.025 cosine with Nesterov, wd 5e-4; NB-1Shot1: C=16, 9 cells, batch 96, "
    "wd 3e-4), for comparing methods under identical settings. cpu: C=8 (NB201: N=1; NB-1Shot1: 3 cells), "
    "5,000/5,000 images at 16x16, 50 epochs, about 5 minutes on 2 cores. collapse: cpu with the alphas' "
    "learning rate x10 (3e-3) and 100 epochs, where NB201 DARTS drifts to skip connections; about 10 "
    "minutes a run on one core. cpu and collapse use the common protocol. A suite runs its variant of "
    "that name. Default: paper when --device is (or auto finds) CUDA, else cpu; for a suite, its first "
    "variant (in the file's order) that fits the device its runs train on (the executor's machines)."
)
PresetOption = Annotated[
    Preset | None, typer.Option("--preset", parser=parse_preset, help=PRESET_HELP, show_default=False)
]
VariantOption = Annotated[
    Preset | None,
    typer.Option("--variant", parser=parse_preset, hidden=True, help="Deprecated: the old name of --preset."),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        parser=parse_device,
        metavar="DEVICE",
        help="auto (cuda if available where the runs train), cpu, cuda or cuda:N.",
    ),
]
MethodOption = Annotated[
    str,
    typer.Option(
        "--method",
        parser=parse_method,
        metavar="METHOD",
        help="Search method: " + "; ".join(f"{name}: {text}" for name, text in METHOD_HELP.items()) + ".",
    ),
]
RootOption = Annotated[
    Path,
    typer.Option("--root", help="Results folder; a suite's runs go to ROOT/<suite>/<preset>/<space>/<dataset>/..."),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Local executor: runs trained at once (the machine's threads are split between them). Default: "
        "one per GPU slot (see --gpus-per-run) with GPU runs, else 1.",
        show_default=False,
    ),
]

RegWeightOption = Annotated[
    str | None,
    typer.Option(
        "--reg-weight",
        help="The regularizer's weight: a number, or START:END for a linear ramp over the epochs (default 1).",
        show_default=False,
    ),
]
RegParamOption = Annotated[
    list[str] | None,
    typer.Option("--reg-param", help="A regularizer parameter, key=value (repeatable).", show_default=False),
]


def out_option(help: str, show_default: bool = False) -> Any:
    """``--out``/``-o``: where the command writes its result (a run directory, a file, a folder)."""
    return typer.Option("--out", "-o", help=help, show_default=show_default)


def preset_or_variant(preset: Preset | None, variant: Preset | None) -> Preset | None:
    """``--preset``, or the deprecated ``--variant`` (with a warning); both given must agree."""
    if variant is None:
        return preset
    warn_deprecated("--variant", "--preset")
    if preset is not None and preset != variant:
        raise typer.BadParameter(
            f"--preset {preset} and its deprecated alias --variant {variant} disagree; give --preset only",
            param_hint="--preset / --variant",
        )
    return variant


_PHASES = {
    "read": "Reading benchmark entries",
    "hash": "Checksumming the source",
    "spaces": "Marking NB-1Shot1 space cells",
}


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(phase, done, total)`` callback drawing one rich bar per phase on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(_PHASES.get(phase, phase), total=total)
        bars.update(tasks[phase], completed=done, total=total)

    with bars:
        yield update


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (NaN becomes null)."""
    sys.stdout.write(json.dumps(_clean(data), indent=2) + "\n")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell, ``n/a`` when missing."""
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def default_preset(device: str, variants: Iterable[str] | None = None) -> str:
    """The preset a device of this machine implies (:func:`nasbench_harness.presets.preset_for`):
    GPU-sized when the device can be CUDA and torch sees one. ``nbh search`` defaults by this
    rule; a sweep decides from the machines its runs train on (``execution.resources``)."""
    import torch

    from nasbench_harness.presets import preset_for

    return preset_for(device != "cpu" and torch.cuda.is_available(), variants)
