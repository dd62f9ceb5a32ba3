"""``nbh search``: run a search method on a space, scored against the tabular ground truth every epoch."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from nasbench_harness.cli.common import (
    CacheDirOption,
    DataDirOption,
    Dataset,
    DatasetOption,
    DeviceOption,
    MethodOption,
    PresetOption,
    RegParamOption,
    RegWeightOption,
    Space,
    SpaceOption,
    console,
    default_preset,
    err_console,
    out_option,
)
from nasbench_harness.tracking.schema import nb201_table_column


class LogTarget(StrEnum):
    """A tracker ``--log`` mirrors every trajectory row and the config to (optional extras)."""

    tensorboard = "tensorboard"
    wandb = "wandb"


LogOption = Annotated[
    list[LogTarget] | None,
    typer.Option(
        "--log",
        help="Also send every epoch's trajectory row and the config to a tracker (repeatable): tensorboard "
        "(event files in <run dir>/tensorboard/; extra [tensorboard]) or wandb (a W&B run; extra [wandb]; "
        "WANDB_MODE=offline keeps it on this machine, else WANDB_API_KEY). The run directory's own files "
        "stay as they are without it.",
        show_default=False,
    ),
]
"""``--log`` of ``nbh search`` and ``nbh sweep``."""


def threads_callback(value: int | None) -> int | None:
    """``--threads``: at most the CPUs this process may use (a thread storm is refused before torch starts)."""
    from nasbench_harness.threads import threads_problem

    problem = None if value is None else threads_problem(value)
    if problem:
        raise typer.BadParameter(problem.removeprefix("--threads "), param_hint="--threads")
    return value


def search(
    space: SpaceOption = Space["nb201"],
    method: MethodOption = "darts",
    dataset: DatasetOption = Dataset["cifar10"],
    seed: Annotated[int, typer.Option("--seed", help="Seeds initialisation, alphas, data order, augmentation.")] = 0,
    preset: PresetOption = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, max=10_000, help="Epochs (default: the preset's, 50).")
    ] = None,
    out: Annotated[
        Path | None, out_option("Run directory. Default: results/<space>/<dataset>/<method>/<preset>/seed-<seed>.")
    ] = None,
    device: DeviceOption = "auto",
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a config value (repeatable), e.g. --set optim.lr=0.05 --set method_options.order=2 "
            "--set data.train_size=2048; on a GPU --set numerics.tf32=true (TF32 in the training steps) or "
            "--set numerics.deterministic=true (bit-identical resumes). The run's manifest.json lists every key.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Require an existing run in --out and continue it from its last complete epoch "
            "(re-running into the same directory with the same options also continues).",
        ),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads", callback=threads_callback, help="CPU threads (default: all cores; at most the usable CPUs)."
        ),
    ] = None,
    regularizer: Annotated[
        str | None,
        typer.Option(
            "--regularizer",
            help="Add a regularizer: path/to/file.py:Class, package.module:Class, an installed entry point, "
            "or a built-in (entropy, beta-decay, zero-one); see `nasbench_harness.plugins`. "
            'Other plugins (perturbations, samplers, early stoppers): --set \'plugins=[{"ref": "file.py:Class"}]\'.',
            show_default=False,
        ),
    ] = None,
    reg_weight: RegWeightOption = None,
    reg_params: RegParamOption = None,
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
    log: LogOption = None,
) -> None:
    """Run a search; every epoch, record the derived architecture and its tabular ground truth (NB201 or NB101).

    Writes manifest.json, trajectory.parquet (one row per epoch), alphas.parquet and
    checkpoint.pt to the run directory (see results/README.md for every column).
    """
    from nasbench_harness.config import build_config, parse_overrides
    from nasbench_harness.errors import RunDirError, Terminated
    from nasbench_harness.methods.engine.run import RESUME_HINT, default_run_dir, epochs_done, run_search
    from nasbench_harness.tracking import RunDir
    from nasbench_harness.tracking.trackers import check_trackers

    values: dict[str, Any] = parse_overrides(overrides or [])
    values.update({"space": space.value, "method": method, "dataset": dataset.value, "seed": seed})
    if epochs is not None:
        values["epochs"] = epochs
    if threads is not None:
        values["threads"] = threads
    if regularizer is not None:
        spec = {"ref": regularizer, "weight": 1.0 if reg_weight is None else reg_weight}
        values["plugins"] = [{**spec, "params": parse_overrides(reg_params or [])}]
    elif reg_params or reg_weight is not None:
        from nasbench_harness.errors import ConfigError

        raise ConfigError("--reg-weight and --reg-param need --regularizer (which regularizer they are for)")
    config = build_config(preset.value if preset else default_preset(device), values)
    trackers = check_trackers([t.value for t in log or ()])  # a tracker that cannot work fails before the run
    run_dir = out or default_run_dir(config)
    if resume and not RunDir(run_dir).exists:
        raise RunDirError(f"--resume: {run_dir} holds no run to continue; drop --resume to start one")
    try:
        with _SearchProgress(config.epochs, config.dataset) as progress:
            result = run_search(
                config,
                run_dir,
                device=device,
                data_dir=data_dir,
                cache_dir=cache_dir,
                progress=progress,
                log=trackers,
            )
    except KeyboardInterrupt:  # click would print "Aborted!" and exit 1: say what was kept, exit 130
        kept = RunDir(run_dir)
        detail = f"{run_dir} keeps its {epochs_done(kept)} complete epoch(s); " if kept.exists else ""
        raise Terminated(signal.SIGINT, detail + RESUME_HINT) from None
    _summary(result, config)


class _SearchProgress:
    """Epoch and step bars on a terminal; one line per epoch otherwise (logs stay readable)."""

    def __init__(self, epochs: int, dataset: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.epochs = epochs
        self.test_column = nb201_table_column(dataset, "test")
        self.live = err_console.is_terminal
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=not self.live,
        )
        self.epoch_task = self.bars.add_task("epochs", total=epochs)
        self.step_task = self.bars.add_task("steps", total=None)

    def __enter__(self) -> _SearchProgress:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(*exc)

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if kind == "step":
            self.bars.update(
                self.step_task,
                completed=info["step"],
                total=info["steps"],
                description=f"epoch {info['epoch']} loss {info['loss']:.3f}",
            )
            return
        line = (
            f"epoch {info['epoch']}/{self.epochs}  train {info['train_loss']:.3f} / {info['train_acc']:.1f}%  "
            f"valid {info['valid_loss']:.3f} / {info['valid_acc']:.1f}%  final {info['final_valid_acc']:.1f}%  "
            + _space_summary(info, self.test_column)
        )
        if self.live:
            self.bars.update(self.epoch_task, completed=info["epoch"], description=f"{info['genotype']}")
            self.bars.console.print(line, highlight=False, markup=False)
        else:
            err_console.print(line, highlight=False, soft_wrap=True, markup=False)


def _space_summary(row: dict[str, Any], nb201_test_column: str) -> str:
    """The derived cell's parameter-free ops and ground truth, for whichever space the row is from."""
    if "n_skip_connect" in row:
        return f"skip {row['n_skip_connect']}  NB201 test {row[nb201_test_column]:.2f}%"
    truth = f"NB101 test {row['nb101_test_acc']:.2f}%" if row["in_benchmark"] else "not in the NB101 table"
    return f"maxpool {row['n_maxpool']}  {truth}"


def _summary(result: Any, config: Any) -> None:
    from nasbench_harness.tracking import read_trajectory

    rows = read_trajectory(result.path).to_pylist()
    if not rows:
        console.print(f"{result.path}: no epochs recorded", soft_wrap=True, markup=False)
        return
    # The answer: the last epoch's cell, or the one an early stop names (DARTS-ES answers with the
    # cell from before the eigenvalue grew, not the one of the epoch it stopped in).
    last = next((r for r in rows if r["epoch"] == result.result_epoch), rows[-1])
    resumed = f" (resumed after epoch {result.resumed_from})" if result.resumed_from else ""
    stopped = f"; stopped early: {result.stopped_early}" if result.stopped_early else ""
    lines = [f"run {result.path}: {result.status}, {result.epochs_completed} epochs{resumed}{stopped}"]
    if last is not rows[-1]:
        lines.append(f"answer: epoch {last['epoch']}'s cell, as the early stop says (not epoch {rows[-1]['epoch']}'s)")
    if "genotype_index" in last:
        column = nb201_table_column(config.dataset, "test")
        lines += [
            f"derived genotype  {last['genotype']}  (NB201 index {last['genotype_index']})",
            f"NB201 {config.dataset} test accuracy {last[column]:.2f}%, test regret {last['regret_test']:.2f} points",
        ]
    else:
        lines.append(f"derived genotype  {last['genotype']}  (NB101 module hash {last['module_hash']})")
        lines.append(
            f"NB101 test accuracy {last['nb101_test_acc']:.2f}%, test regret {last['regret_test']:.2f} points"
            if last["in_benchmark"]
            else "NB101: this cell is not in the imported table (the shared table covers about 30% of the space)"
        )
    for line in lines:
        console.print(line, soft_wrap=True, markup=False)
