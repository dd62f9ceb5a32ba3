"""``--log tensorboard|wandb``: every committed trajectory row and the config mirrored to the
tracker, read back with the tracker's own reader (TensorBoard's ``EventAccumulator``; W&B's
offline transaction log parsed into ``wandb.proto`` records); the run directory's own files as
without ``--log``; a tracker that cannot work is an error before the run starts; one that fails
mid-run is a warning and the run keeps every epoch; the option reaches the runs of a sweep."""

from __future__ import annotations

import json
import struct
import sys
import textwrap
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli import nbh
from tiny import TIME_COLUMNS, tiny_config, tiny_data, trajectory, without_times

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.run import run_search
from nasbench_harness.tracking import read_alphas
from nasbench_harness.tracking import trackers as trackers_module
from nasbench_harness.tracking.trackers import TrackerError, TrackerWarning, check_trackers

VOLATILE_MANIFEST = {"created", "updated", "threads"}


def search(tmp_path: Path, bench: Any, name: str = "run", log: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """The tiny two-epoch search of ``tests/tiny.py`` in ``tmp_path / name``, mirrored to ``log``."""
    return run_search(tiny_config(), tmp_path / name, device="cpu", data=tiny_data(), bench=bench, log=log, **kwargs)


def numeric(row: Mapping[str, Any]) -> dict[str, float]:
    """The columns of a row a tracker records as numbers."""
    return {k: float(v) for k, v in row.items() if isinstance(v, int | float) and v is not None}


# -- TensorBoard -------------------------------------------------------------------------------


def tensorboard_events(logdir: Path) -> Any:
    """TensorBoard's own reader over every event file in ``logdir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def tensorboard_text(acc: Any, tag: str) -> dict[int, str]:
    """The text summaries under ``tag`` (as ``torch.utils.tensorboard`` stores them) by step."""
    from tensorboard.util import tensor_util

    return {
        e.step: tensor_util.make_ndarray(e.tensor_proto).item().decode() for e in acc.Tensors(f"{tag}/text_summary")
    }


def test_tensorboard_holds_every_row_and_the_config(tmp_path: Path, synthetic_nb201: Any) -> None:
    result = search(tmp_path, synthetic_nb201, log=("tensorboard",))
    rows = trajectory(result)
    acc = tensorboard_events(result.path / "tensorboard")
    scalars = set(acc.Tags()["scalars"])
    for row in rows:
        for column, value in numeric(row).items():
            assert column in scalars, column
            recorded = {e.step: e.value for e in acc.Scalars(column)}
            assert recorded[row["epoch"]] == pytest.approx(float(np.float32(value)), nan_ok=True), column
    assert {e.step for e in acc.Scalars("train_loss")} == {1, 2}
    assert tensorboard_text(acc, "genotype") == {r["epoch"]: r["genotype"] for r in rows}
    config = tensorboard_text(acc, "config")[0]
    assert json.loads(config.strip("`\n")) == json.loads((result.path / "manifest.json").read_text())["config"]
    assert tensorboard_text(acc, "status") == {0: "finished"}


def test_the_run_directory_is_the_same_with_and_without_log(tmp_path: Path, synthetic_nb201: Any) -> None:
    plain = search(tmp_path, synthetic_nb201, "plain")
    logged = search(tmp_path, synthetic_nb201, "logged", log=("tensorboard",))
    assert sorted(p.name for p in logged.path.iterdir()) == sorted(
        [p.name for p in plain.path.iterdir()] + ["tensorboard"]
    )
    assert without_times(trajectory(plain)) == without_times(trajectory(logged))
    assert read_alphas(plain.path).to_pylist() == read_alphas(logged.path).to_pylist()
    plain_manifest, logged_manifest = (json.loads((r.path / "manifest.json").read_text()) for r in (plain, logged))
    assert {k: v for k, v in plain_manifest.items() if k not in VOLATILE_MANIFEST} == {
        k: v for k, v in logged_manifest.items() if k not in VOLATILE_MANIFEST
    }
    assert list(plain_manifest) == list(logged_manifest)  # same keys in the same order: no record added


class _Stop(Exception):
    pass


def test_a_resumed_run_continues_the_tensorboard_curves(tmp_path: Path, synthetic_nb201: Any) -> None:
    def stop_after_first(kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch" and info["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        search(tmp_path, synthetic_nb201, log=("tensorboard",), progress=stop_after_first)
    result = search(tmp_path, synthetic_nb201, log=("tensorboard",))
    assert result.resumed_from == 1
    acc = tensorboard_events(result.path / "tensorboard")
    assert [e.step for e in acc.Scalars("valid_acc")] == [1, 2]  # each committed epoch once
    assert tensorboard_text(acc, "status") == {0: "finished"}  # the last session's; the first ended "failed"


# -- Weights & Biases, offline -----------------------------------------------------------------


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """W&B's settings, cache and credentials in ``tmp_path`` (nothing read from or written to the
    user's), offline; returns the folder for ``WANDB_DIR`` (not set: runs write beside their files)."""
    for name in ("WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "wandb-home"
    for name, folder in [("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")]:
        (home / folder).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / folder))
    monkeypatch.setenv("NETRC", str(home / "netrc"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    return home / "dir"


_HEADER = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> list[Any]:
    """The records of an offline run's ``run-<id>.wandb`` file as ``wandb.proto`` ``Record`` messages.

    The installed wandb has no Python reader for it (its ``DataStore`` was removed); the format is
    W&B's header (``:W&B``, 0xBEE1, version 0) then LevelDB-log chunks in 32 KiB blocks, each a
    7-byte header (CRC-32 of the type byte and data, length, type: full, first, middle, last); a
    block's tail shorter than a header is padding. Every chunk's CRC is checked.
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[: len(_HEADER)] == _HEADER, "not a W&B transaction log"
    records, pending, pos = [], b"", len(_HEADER)
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + 7 : pos + 7 + length]
        if kind == 0 and length == 0:
            break
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad CRC at byte {pos} of {path}"
        pos += 7 + length
        if kind in (_FULL, _FIRST):
            pending = chunk
        else:
            pending += chunk
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_history(records: list[Any]) -> dict[int, dict[str, Any]]:
    """Logged rows by step (W&B's own ``_step``/``_runtime``/``_timestamp`` left out)."""
    out: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            out[record.history.step.num] = {k: v for k, v in items.items() if not k.startswith("_")}
    return out


def wandb_config(records: list[Any]) -> dict[str, Any]:
    """The run's config as recorded (the run record's, updated by later config records)."""
    config: dict[str, Any] = {}
    for record in records:
        kind = record.WhichOneof("record_type")
        updates = record.run.config.update if kind == "run" else record.config.update if kind == "config" else []
        for item in updates:
            key = "/".join(item.nested_key) or item.key
            config[key] = json.loads(item.value_json)
    config.pop("_wandb", None)
    return config


def test_wandb_offline_holds_every_row_and_the_config(tmp_path: Path, synthetic_nb201: Any, wandb_env: Path) -> None:
    result = search(tmp_path, synthetic_nb201, log=("wandb",))
    files = sorted((result.path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    records = wandb_records(files[0])
    rows = trajectory(result)
    history = wandb_history(records)
    assert sorted(history) == [1, 2]
    for row in rows:
        logged = history[row["epoch"]]
        expected = {k: v for k, v in row.items() if v is not None}
        assert set(logged) == set(expected)
        for key, value in expected.items():
            assert logged[key] == (pytest.approx(value, nan_ok=True) if isinstance(value, float) else value), key
    assert wandb_config(records) == json.loads((result.path / "manifest.json").read_text())["config"]
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.project == "nasbench-harness" and run.run_group == "nb201/cifar10/darts/cpu"
    assert run.display_name == "nb201/cifar10/darts/cpu/seed-0" and run.notes == str(result.path.resolve())
    exits = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert [e.exit_code for e in exits] == [0]


def test_wandb_respects_wandb_dir_and_keeps_one_run_id_across_a_resume(
    tmp_path: Path, synthetic_nb201: Any, wandb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb_env.mkdir()
    monkeypatch.setenv("WANDB_DIR", str(wandb_env))

    def stop_after_first(kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch" and info["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        search(tmp_path, synthetic_nb201, log=("wandb",), progress=stop_after_first)
    result = search(tmp_path, synthetic_nb201, log=("wandb",))
    assert not (result.path / "wandb").exists()
    files = sorted((wandb_env / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2 and len({f.name for f in files}) == 1  # two sessions, one W&B run id
    steps = sorted(s for f in files for s in wandb_history(wandb_records(f)))
    assert steps == [1, 2]
    codes = sorted(r.exit.exit_code for f in files for r in wandb_records(f) if r.WhichOneof("record_type") == "exit")
    assert codes == [0, 1]  # the interrupted session, then the finished one


# -- errors before the run, failures during it -------------------------------------------------


@pytest.mark.parametrize(("tracker", "module"), [("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_a_missing_package_is_an_error_before_the_run(
    tmp_path: Path, synthetic_nb201: Any, monkeypatch: pytest.MonkeyPatch, tracker: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=rf"pip install 'nasbench-harness\[{tracker}\]'"):
        search(tmp_path, synthetic_nb201, log=(tracker,))
    assert not (tmp_path / "run").exists()


def test_unknown_tracker_names_the_choices(wandb_env: Path) -> None:
    with pytest.raises(ConfigError, match="use tensorboard or wandb"):
        check_trackers(["mlflow"])
    assert check_trackers(["wandb", "TensorBoard", "wandb"]) == ("wandb", "tensorboard")


def test_wandb_online_without_credentials_is_an_error_before_the_run(
    tmp_path: Path, synthetic_nb201: Any, wandb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    monkeypatch.delenv("WANDB_MODE")
    wandb.teardown()  # W&B keeps settings per process: forget an earlier test's offline mode
    with pytest.raises(ConfigError, match=r"no W&B API key found; set WANDB_API_KEY .* WANDB_MODE=offline"):
        search(tmp_path, synthetic_nb201, log=("wandb",))
    monkeypatch.setenv("WANDB_API_KEY", "not-a-key")  # refused by its form, before any request
    with pytest.raises(ConfigError, match=r"W&B did not accept the credentials .*API key.*WANDB_MODE=offline"):
        search(tmp_path, synthetic_nb201, log=("wandb",))
    assert not (tmp_path / "run").exists()


class _Recorder:
    """A tracker that keeps what it is sent; ``fail_at``: raise at that epoch's row."""

    def __init__(self, name: str, fail_at: int | None = None, fail_start: bool = False) -> None:
        self.name, self.fail_at, self.fail_start = name, fail_at, fail_start
        self.rows: list[int] = []
        self.status: str | None = None

    def start(self, config: Mapping[str, Any]) -> None:
        if self.fail_start:
            raise OSError("disk full")

    def log(self, row: Mapping[str, Any], epoch: int) -> None:
        if epoch == self.fail_at:
            raise ConnectionError("the tracker's server went away")
        self.rows.append(epoch)

    def finish(self, status: str) -> None:
        self.status = status


def test_a_tracker_failing_mid_run_is_a_warning_and_every_epoch_is_kept(
    tmp_path: Path, synthetic_nb201: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = {"tensorboard": _Recorder("tensorboard", fail_at=1), "wandb": _Recorder("wandb")}
    monkeypatch.setattr(trackers_module, "build_tracker", lambda name, run_dir: made[name])
    monkeypatch.setitem(trackers_module._CHECKS, "wandb", lambda: None)
    with pytest.warns(TrackerWarning, match=r"--log tensorboard failed at epoch 1 \(ConnectionError: .*every epoch"):
        result = search(tmp_path, synthetic_nb201, log=("tensorboard", "wandb"))
    assert result.status == "finished" and [r["epoch"] for r in trajectory(result)] == [1, 2]
    assert made["tensorboard"].rows == [] and made["tensorboard"].status == "failed"  # closed when dropped
    assert made["wandb"].rows == [1, 2] and made["wandb"].status == "finished"  # the other one goes on


def test_a_tracker_that_cannot_start_stops_the_run_before_its_first_epoch(
    tmp_path: Path, synthetic_nb201: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = {"tensorboard": _Recorder("tensorboard", fail_start=True)}
    monkeypatch.setattr(trackers_module, "build_tracker", lambda name, run_dir: made[name])
    with pytest.raises(TrackerError, match=r"tensorboard: the tracker could not start .*disk full.*no epoch"):
        search(tmp_path, synthetic_nb201, log=("tensorboard",))
    assert not (tmp_path / "run" / "trajectory.parquet").exists()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"].startswith("TrackerError: --log tensorboard")
    assert search(tmp_path, synthetic_nb201).epochs_completed == 2  # the same command without it runs


# -- the CLI and the sweep executors -----------------------------------------------------------

TINY_CLI = ["--set", "model.channels=4", "--set", "data.train_size=32", "--set", "data.valid_size=32",
            "--set", "batch_size=16", "--set", "tracking.eigen_every=0", "--threads", "1", "--device", "cpu",
            "--epochs", "1"]  # fmt: skip
TINY_SUITE = """\
    name: tiny
    reproduces: a tracker smoke test
    command: nbh sweep tiny.yaml
    spaces: [nb201]
    datasets: [cifar10]
    seeds: [0, 1]
    methods: [darts]
    overrides:
      epochs: 1
      batch_size: 16
      model: {channels: 4}
      data: {train_size: 32, valid_size: 32}
      tracking: {eigen_every: 0}
    variants:
      cpu: {}
"""


def test_cli_search_log_tensorboard(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    args = ["search", "--out", str(out), "--data-dir", str(synthetic_data_dir), *TINY_CLI]
    code, _, err = nbh(capsys, monkeypatch, *args, "--log", "tensorboard")
    assert code == 0, err
    assert [e.step for e in tensorboard_events(out / "tensorboard").Scalars("valid_acc")] == [1]
    code, _, err = nbh(capsys, monkeypatch, *args, "--log", "mlflow")
    assert code == 2 and "'mlflow' is not one of" in err


def test_cli_sweep_checks_the_tracker_before_any_run(
    tmp_path: Path,
    synthetic_data_dir: Path,
    wandb_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import wandb

    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent(TINY_SUITE), encoding="utf-8")
    monkeypatch.delenv("WANDB_MODE")
    wandb.teardown()
    root = tmp_path / "results"
    args = ["sweep", str(suite), "--root", str(root), "--data-dir", str(synthetic_data_dir), "--device", "cpu"]
    code, _, err = nbh(capsys, monkeypatch, *args, "--log", "wandb")
    assert code == 1 and "no W&B API key found" in err and "Traceback" not in err
    assert not list(root.rglob("manifest.json"))


def test_a_sweep_passes_log_to_every_run(tmp_path: Path, synthetic_data_dir: Path) -> None:
    """In this process (one worker) and in a pool of worker processes."""
    from nasbench_harness.execution.local import run_sweep
    from nasbench_harness.execution.suite import expand, load_suite

    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent(TINY_SUITE), encoding="utf-8")
    for workers in (1, 2):
        runs = expand(load_suite(suite), "cpu", tmp_path / f"w{workers}")
        outcomes = run_sweep(
            runs, tmp_path / f"w{workers}", workers=workers, threads=1, data_dir=synthetic_data_dir, log=["tensorboard"]
        )
        assert [o.status for o in outcomes] == ["finished", "finished"]
        for run in runs:
            assert [e.step for e in tensorboard_events(run.path / "tensorboard").Scalars("train_loss")] == [1]


def test_the_ray_executor_passes_log_to_its_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With a stand-in for ray that runs each task at once: what reaches ``run_one``."""
    import types

    import nasbench_harness.execution.ray as ray_executor
    from nasbench_harness.execution.job import JobArgs, Outcome
    from nasbench_harness.execution.resources import Placement
    from nasbench_harness.execution.suite import PlannedRun

    seen: list[tuple[Any, ...]] = []

    def run_one(*args: Any) -> Outcome:
        seen.append(args)
        return Outcome(args[0].run_id, "finished")

    class _Ref:
        def __init__(self, value: Any) -> None:
            self.value = value

    fake = types.SimpleNamespace(
        is_initialized=lambda: True,  # a cluster already connected: the backend neither starts nor stops it
        remote=lambda fn: types.SimpleNamespace(
            options=lambda **_: types.SimpleNamespace(remote=lambda *a: _Ref(fn(*a)))
        ),
        wait=lambda refs, num_returns: ([refs[0]], refs[1:]),
        get=lambda ref: ref.value,
    )
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(ray_executor, "run_one", run_one)
    run = PlannedRun("r0", tiny_config(), tmp_path / "r0")
    backend = ray_executor.RayBackend(None)
    job = JobArgs("cpu", log=("tensorboard",))
    outcomes = list(backend.outcomes([run], Placement("cpu", 0.0, 1), job, tmp_path))
    assert [o.status for o in outcomes] == ["finished"] and seen[0][-1].log == ("tensorboard",)


def test_time_columns_are_logged_too(tmp_path: Path, synthetic_nb201: Any) -> None:
    """The wall-clock columns differ between runs but are part of the row: they are sent as well."""
    result = search(tmp_path, synthetic_nb201, log=("tensorboard",))
    scalars = set(tensorboard_events(result.path / "tensorboard").Tags()["scalars"])
    assert set(TIME_COLUMNS) <= scalars
