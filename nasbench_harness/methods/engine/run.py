"""Start or resume a search run in a directory: provenance, status, and errors kept on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasbench_harness.config import SearchConfig
from nasbench_harness.data import SearchData, load_search_data
from nasbench_harness.errors import RunDirError
from nasbench_harness.methods.engine.loop import Progress, Search, resolve_device
from nasbench_harness.registry import build_method
from nasbench_harness.spaces.catalog import open_benchmark
from nasbench_harness.tracking import RunDir, describe_config_diff, git_commit, utc_now, versions


@dataclass(frozen=True)
class RunResult:
    """How a call to :func:`run_search` ended."""

    path: Path
    status: str  # "finished" (also when already finished before the call)
    epochs_completed: int
    resumed_from: int | None
    stopped_early: str | None


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
) -> RunResult:
    """Run (or continue) the search ``config`` in directory ``out``.

    A directory holding the same config continues from its last complete epoch when ``resume``;
    a different config, or ``resume=False`` on an existing run, is a :class:`RunDirError`.
    ``data``/``bench`` replace the data set and the space's table found in ``data_dir`` (for tests).
    The table is read from the cache in ``cache_dir`` (default: ``$NBH_CACHE_DIR``, else the user cache).
    """
    run_dir = RunDir(out)
    config_dict = config.to_dict()
    existing = run_dir.exists
    if existing:
        if not resume:
            raise RunDirError(
                f"{run_dir.path} already holds a search run; continue it with --resume, or choose another --out"
            )
        _check_same_config(run_dir, config_dict)
    method, plugins = build_method(config)
    torch_device = resolve_device(device)
    if config.threads:
        torch.set_num_threads(config.threads)
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
                run_dir.path, "finished", manifest["epochs_completed"], resumed_from, manifest.get("stopped_early")
            )
        run_dir.set_status("running")
        run_dir.update_manifest(device=str(torch_device), resumed_at=[*manifest.get("resumed_at", []), utc_now()])
    else:
        run_dir.create({**_manifest(config_dict, data, bench, torch_device), "plugins": plugins})
    try:
        stop = search.run(done=resumed_from or 0, schedule_done=schedule_done or 0)
    except KeyboardInterrupt:
        run_dir.set_status("failed", "interrupted by the user; continue with `nbh search ... --resume`")
        raise
    except Exception as exc:
        run_dir.set_status("failed", f"{type(exc).__name__}: {exc}")
        raise
    if stop:
        run_dir.update_manifest(stopped_early=stop.reason, result_epoch=stop.result_epoch)
    run_dir.set_status("finished")
    done = run_dir.read_manifest()["epochs_completed"]
    return RunResult(run_dir.path, "finished", done, resumed_from, stop.reason if stop else None)


def _check_same_config(run_dir: RunDir, config: dict[str, Any]) -> None:
    old = run_dir.read_manifest().get("config")
    if old is None:
        raise RunDirError(f"{run_dir.path / 'manifest.json'} has no config; it was not written by `nbh search`")
    # Threads change speed, not results, and may differ between machines.
    diff = describe_config_diff(old, config, ignore=["threads"])
    if diff:
        raise RunDirError(
            f"{run_dir.path} holds a run with a different config (differs in {diff}); "
            "resume it with the same options, or choose another --out"
        )


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
