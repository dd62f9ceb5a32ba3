"""Start or resume a search run in a directory: provenance, status, and errors kept on disk.

A run is trained under an exclusive lock, ``<run dir>.lock`` (the one a sweep takes, too; see
:mod:`nasbench_harness.tracking.runlock`): a second command on the same directory fails naming the
live process that holds it; a dead holder's lock is taken over (once stale, where the OS did not
free it). While a run trains, SIGTERM and SIGHUP (where their default action would kill the
process unrecorded; not in a sweep's worker processes) end it as Ctrl-C does: the run is marked
``failed`` with an "interrupted ..." message (a sweep resumes it), its epochs are kept, and ``nbh``
exits with 128 + the signal's number.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from nasbench_harness.config import SearchConfig, with_channels_last
from nasbench_harness.data import SearchData, load_search_data
from nasbench_harness.errors import ConfigError, NbhError, RunDirError, StorageError, Terminated
from nasbench_harness.methods.engine.loop import Progress, Search, resolve_device
from nasbench_harness.numerics import numerics_applied, numerics_record
from nasbench_harness.registry import build_method
from nasbench_harness.spaces.catalog import open_benchmark
from nasbench_harness.threads import check_threads
from nasbench_harness.tracking import RunDir, describe_config_diff, git_commit, utc_now, versions
from nasbench_harness.tracking.atomic import check_output_dir
from nasbench_harness.tracking.runlock import claim_run_dir, run_lock  # noqa: F401  (run_lock: re-exported)
from nasbench_harness.tracking.trackers import check_trackers, open_trackers

RESUME_HINT = "continue with `nbh search ... --resume`"
CUDA_GRAPH_REFUSED = (
    "speed.cuda_graph is refused until fixed: on an NVIDIA H200 (torch 2.11, 2026-12-04) its captured "
    "weight step trained to other weights than the eager step (up to 0.04 apart after 2 epochs of 3 steps; "
    "tests/test_speed_options.py::test_a_captured_weight_step_trains_as_the_eager_one), far beyond cuDNN's "
    "nondeterminism; turn it off"
)


@dataclass(frozen=True)
class RunResult:
    """How a call to :func:`run_search` ended."""

    path: Path
    status: str  # "finished" (also when already finished before the call)
    epochs_completed: int
    resumed_from: int | None
    stopped_early: str | None
    result_epoch: int | None = None  # the epoch whose genotype is the answer, when not the last (an early stop)


def default_run_dir(config: SearchConfig, root: str | os.PathLike[str] = "results") -> Path:
    """``results/<space>/<dataset>/<method>/<preset>/seed-<seed>``."""
    return Path(root) / config.space / config.dataset / config.method / config.preset / f"seed-{config.seed}"


def run_search(
    config: SearchConfig,
    out: str | os.PathLike[str],
    *,
    device: str = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    data: SearchData | None = None,
    bench: Any = None,
    progress: Progress | None = None,
    log: Sequence[str] = (),
) -> RunResult:
    """Run (or continue) the search ``config`` in directory ``out``.

    A directory holding the same config continues from its last complete epoch when ``resume``;
    a different config, or ``resume=False`` on an existing run, is a :class:`RunDirError`.
    ``data``/``bench`` replace the data set and the space's table found in ``data_dir`` (for tests).
    The table is read from the cache in ``cache_dir`` (default: ``$NBH_CACHE_DIR``, else the user cache).
    ``log`` names trackers (``tensorboard``, ``wandb``) that mirror each committed row and the config
    (:mod:`nasbench_harness.tracking.trackers`); one that cannot work is a ``ConfigError`` before anything starts.
    """
    trackers = check_trackers(log)
    run_dir = RunDir(check_output_dir(out, "--out"))
    with claim_run_dir(run_dir.path), _signals_as_interrupts():
        return _run_locked(config, run_dir, device, data_dir, cache_dir, resume, data, bench, progress, trackers)


def _run_locked(
    config: SearchConfig,
    run_dir: RunDir,
    device: str,
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    resume: bool,
    data: SearchData | None,
    bench: Any,
    progress: Progress | None,
    log: tuple[str, ...] = (),
) -> RunResult:
    if config.speed.cuda_graph:
        raise ConfigError(CUDA_GRAPH_REFUSED)
    torch_device = resolve_device(device)
    config = _resolve_channels_last(config, run_dir, torch_device)
    # Before anything runs on the device: cuBLAS reads CUBLAS_WORKSPACE_CONFIG when it starts.
    inputs = _RunInputs(data_dir, cache_dir, resume, data, bench, progress, log)
    with numerics_applied(config.numerics, torch_device) as flags:
        return _run_on_device(config, run_dir, torch_device, flags, inputs)


class _RunInputs(NamedTuple):
    """Where a run's data and table come from, whether it may resume, and whom it reports to."""

    data_dir: str | os.PathLike[str] | None
    cache_dir: str | os.PathLike[str] | None
    resume: bool
    data: SearchData | None
    bench: Any
    progress: Progress | None
    log: tuple[str, ...]


def _run_on_device(
    config: SearchConfig, run_dir: RunDir, torch_device: torch.device, flags: dict[str, Any], inputs: _RunInputs
) -> RunResult:
    data_dir, cache_dir, resume, data, bench, progress, log = inputs
    config_dict = config.to_dict()
    existing = run_dir.exists
    if existing:
        if not resume:
            raise RunDirError(
                f"{run_dir.path} already holds a search run; continue it with --resume, or choose another --out"
            )
        _check_same_config(run_dir, config_dict)
    method, plugins = build_method(config)
    if config.threads:
        torch.set_num_threads(check_threads(config.threads))  # never an absurd count: ConfigError naming the limit
    bench = bench or open_benchmark(config.space, data_dir, cache_dir)
    data = data or load_search_data(
        config.dataset,
        data_dir,
        split_seed=config.data.split_seed,
        train_size=config.data.train_size,
        valid_size=config.data.valid_size,
        image_size=config.data.image_size,
        subset_seed=config.data.subset_seed,
    )
    trackers = open_trackers(log, run_dir.path)  # sent each row after its commit, so a tracker never costs an epoch
    progress = trackers.wrap(progress) if trackers else progress
    search = Search(config, method, data, bench, run_dir, torch_device, progress)
    resumed_from = schedule_done = None
    if existing:
        state = run_dir.resume_state(map_location=torch_device)
        if state.checkpoint is not None:
            schedule_done = search.restore(state.checkpoint)
            resumed_from = int(state.checkpoint["epoch"])
        manifest = run_dir.read_manifest()
        if manifest["status"] == "finished":
            return RunResult(
                run_dir.path,
                "finished",
                manifest["epochs_completed"],
                resumed_from,
                manifest.get("stopped_early"),
                manifest.get("result_epoch"),
            )
        run_dir.set_status("running")
        # "numerics" describes the latest session, as "device" does; earlier sessions' are kept in order
        earlier = [*manifest.get("numerics_earlier", []), *([manifest["numerics"]] if "numerics" in manifest else [])]
        run_dir.update_manifest(
            device=str(torch_device),
            resumed_at=[*manifest.get("resumed_at", []), utc_now()],
            numerics=numerics_record(flags, torch_device, config_dict["speed"]),
            numerics_earlier=earlier,
        )
    else:
        numerics = numerics_record(flags, torch_device, config_dict["speed"])
        run_dir.create({**_manifest(config_dict, data, bench, torch_device), "numerics": numerics, "plugins": plugins})
    try:
        with trackers.session(config_dict):
            stop = search.run(done=resumed_from or 0, schedule_done=schedule_done or 0)
    except KeyboardInterrupt:
        _record_failure(run_dir, f"interrupted by the user; {RESUME_HINT}")
        raise
    except Terminated as exc:
        _record_failure(run_dir, f"interrupted by signal {exc.name}; {RESUME_HINT}")
        exc.detail = f"{run_dir.path} keeps its {epochs_done(run_dir)} complete epoch(s); {RESUME_HINT}"
        raise
    except StorageError as exc:
        _record_failure(run_dir, f"{type(exc).__name__}: {exc}")
        then = f"{RESUME_HINT} ({run_dir.path} keeps its {epochs_done(run_dir)} complete epoch(s))"
        raise StorageError(exc.path, exc.cause, exc.fix, then) from None
    except Exception as exc:
        _record_failure(run_dir, f"{type(exc).__name__}: {exc}")
        raise
    if stop:
        run_dir.update_manifest(stopped_early=stop.reason, result_epoch=stop.result_epoch)
    run_dir.set_status("finished")
    done = run_dir.read_manifest()["epochs_completed"]
    return RunResult(
        run_dir.path, "finished", done, resumed_from, stop.reason if stop else None, stop.result_epoch if stop else None
    )


def _check_same_config(run_dir: RunDir, config: dict[str, Any]) -> None:
    old = run_dir.read_manifest().get("config")
    if old is None:
        raise RunDirError(f"{run_dir.path / 'manifest.json'} has no config; it was not written by `nbh search`")
    # Keys added since the run was written take their defaults, which do what that version did.
    old = _with_new_defaults(old)
    if old.get("preset") == "paper" and "protocol" not in run_dir.read_manifest()["config"]:
        old["preset"] = "common"  # written before per-method protocols: its `paper` is today's `common`
    # Threads change speed, not results, and may differ between machines; a plugin's time limit
    # changes only whether a slow call fails, and sync_every only how often the host reads the loss.
    diff = describe_config_diff(old, config, ignore=["threads", "plugin_timeout_s", "tracking.sync_every"])
    if diff:
        raise RunDirError(
            f"{run_dir.path} holds a run with a different config (differs in {diff}); "
            "resume it with the same options, or choose another --out"
        )


def _with_new_defaults(old: dict[str, Any]) -> dict[str, Any]:
    """``old`` with every key a newer version added set to its default (missing sections too)."""
    defaults = SearchConfig().to_dict()

    def fill(values: Any, default: Any) -> Any:
        if not (isinstance(values, dict) and isinstance(default, dict)):
            return values
        filled = {k: fill(v, default.get(k)) for k, v in values.items()}
        return {**{k: v for k, v in default.items() if k not in values}, **filled}

    return fill(old, defaults)


def _resolve_channels_last(config: SearchConfig, run_dir: RunDir, device: torch.device) -> SearchConfig:
    """``config`` with ``model.channels_last`` resolved: when unset and continuing a run, as the
    run recorded it (a checkpoint moved to another device, a CUDA run resumed on the CPU, keeps
    its memory format, so its config still matches), else chosen for ``device``; recorded."""
    if config.model.channels_last is None and run_dir.exists:
        with contextlib.suppress(NbhError):
            recorded = (run_dir.read_manifest().get("config") or {}).get("model", {}).get("channels_last")
            if isinstance(recorded, bool):
                model = config.model.model_copy(update={"channels_last": recorded})
                return config.model_copy(update={"model": model})
    return with_channels_last(config, device)


def _manifest(config: dict[str, Any], data: SearchData, bench: Any, device: torch.device) -> dict[str, Any]:
    return {
        "config": config,
        "seed": config["seed"],
        "method": config["method"],
        "device": str(device),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "git": git_commit(),
        "data": data.describe(),
        "table": {
            "benchmark": bench.info.get("benchmark"),
            "source": bench.info.get("source"),
            "cache": str(bench.path),
        },
    }


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` while the block runs, where their default
    action (killing the process unrecorded) is in force, in the main thread of a process that is no
    sweep's worker (a killed worker is the sweep's to report); handlers restored after."""
    import multiprocessing

    if threading.current_thread() is not threading.main_thread() or multiprocessing.parent_process() is not None:
        yield
        return
    fired = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal fired
        if not fired:  # one exception; a second signal must not abort recording the first
            fired = True
            raise Terminated(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _record_failure(run_dir: RunDir, message: str) -> None:
    """Mark the run failed with ``message``; where even that cannot be written (a full disk), the
    manifest keeps "running", which resumes the same way."""
    with contextlib.suppress(NbhError):
        run_dir.set_status("failed", message)


def epochs_done(run_dir: RunDir) -> int | str:
    """The complete epochs ``run_dir``'s manifest records, or ``"last"`` when it cannot be read."""
    try:
        return int(run_dir.read_manifest()["epochs_completed"])
    except (NbhError, KeyError, TypeError, ValueError):
        return "last"
