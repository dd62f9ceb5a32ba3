"""Run directories: manifest, trajectory/alphas Parquet, checkpoints, atomic writes, resume, provenance."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from nasbench_harness.errors import ConfigError, RunDirError
from nasbench_harness.tracking import (
    ALPHAS_FILE,
    CHECKPOINT_FILE,
    MANIFEST_FILE,
    TRAJECTORY_FILE,
    RunDir,
    atomic_write_bytes,
    config_diff,
    describe_config_diff,
    file_fingerprint,
    git_commit,
    read_alphas,
    read_trajectory,
    utc_now,
    versions,
)
from nasbench_harness.tracking.atomic import TEMP_SUFFIX

REPO = Path(__file__).resolve().parent.parent
CONFIG = {"method": "darts", "optimizer": {"lr": 0.025, "momentum": 0.9}, "seed": 1}


def alpha_rows(epoch: int) -> list[dict]:
    return [
        {"edge": f"{i}<-{j}", "op": op, "alpha": 0.1 * epoch + k, "weight": 0.2}
        for i, j in ((1, 0), (2, 0))
        for k, op in enumerate(("none", "skip_connect"))
    ]


def new_run(tmp_path: Path, name: str = "run") -> RunDir:
    run = RunDir(tmp_path / name)
    run.create({"config": CONFIG, "seed": 1})
    return run


def commit(run: RunDir, epoch: int, **extra: object) -> None:
    row = {"train_loss": 1.0 / (epoch + 1), "valid_acc": 50.0 + epoch, "genotype": f"g{epoch}", **extra}
    run.commit_epoch(epoch, row, alpha_rows(epoch), {"weights": torch.full((2,), float(epoch))})


def commit_crashing_at_checkpoint(run: RunDir, epoch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commit ``epoch`` with the checkpoint's rename failing, as a crash there would leave it."""
    real_replace = os.replace

    def crash_on_checkpoint(src: str, dst: str) -> None:
        if Path(dst).name == CHECKPOINT_FILE:
            raise OSError("simulated crash")
        real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", crash_on_checkpoint)
        with pytest.raises(OSError, match="simulated"):
            commit(run, epoch)


def temps(path: Path) -> list[Path]:
    return list(path.glob(f"*{TEMP_SUFFIX}"))


# --- manifest -------------------------------------------------------------------------------------------------


def test_create_read_update_manifest(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "a" / "b")
    assert not run.exists
    run.create({"config": CONFIG, "seed": 1, "data": {"path": tmp_path / "x", "n": np.int64(3)}})
    assert run.exists
    manifest = run.read_manifest()
    assert manifest["status"] == "running"
    assert manifest["error"] is None
    assert manifest["epochs_completed"] == 0
    assert manifest["last_epoch"] is None
    assert manifest["schema_version"] == 1
    assert manifest["config"] == CONFIG
    assert manifest["data"] == {"path": str(tmp_path / "x"), "n": 3}
    assert manifest["created"].endswith("+00:00")
    updated = run.update_manifest(device="cpu", wall_time_s=1.5)
    assert updated["device"] == "cpu"
    assert RunDir(run.path).read_manifest()["wall_time_s"] == 1.5
    assert RunDir(run.path).read_manifest()["created"] == manifest["created"]


def test_manifest_refuses_kept_fields_and_non_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot set status"):
        RunDir(tmp_path / "a").create({"status": "finished"})
    run = new_run(tmp_path)
    with pytest.raises(ConfigError, match="set_status"):
        run.update_manifest(epochs_completed=3)
    with pytest.raises(ConfigError, match="JSON values only"):
        run.update_manifest(model=object())
    assert run.read_manifest()["config"] == CONFIG
    assert temps(run.path) == []


def test_create_refuses_existing_run(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    with pytest.raises(RunDirError, match=r"already holds a run \(status running, 0 epochs"):
        RunDir(run.path).create({"config": CONFIG})
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / CHECKPOINT_FILE).write_bytes(b"x")
    with pytest.raises(RunDirError, match=f"has {CHECKPOINT_FILE} but no {MANIFEST_FILE}"):
        RunDir(damaged).create({})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no manifest.json in .*not a run directory"),
        ('{"status": "running", ', r"not valid JSON \(.* at line 1 column .*edited or damaged"),
        ("[1, 2]", "not a run manifest"),
        ('{"status": "running", "schema_version": 99}', "schema version 99.*reads versions up to 1"),
    ],
)
def test_bad_manifest_messages(tmp_path: Path, content: str | None, message: str) -> None:
    tmp_path.joinpath("run").mkdir()
    if content is not None:
        (tmp_path / "run" / MANIFEST_FILE).write_text(content)
    with pytest.raises(RunDirError, match=message):
        RunDir(tmp_path / "run").read_manifest()


def test_status_transitions(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    commit(run, 0)
    run.set_status("failed", "TrainingError: loss is NaN at epoch 1")
    assert run.read_manifest()["status"] == "failed"
    assert run.read_manifest()["error"].startswith("TrainingError")
    with pytest.raises(RunDirError, match=r"status 'failed'.*set_status\('running'\)"):
        commit(run, 1)
    run.set_status("running")
    assert run.read_manifest()["error"] is None
    commit(run, 1)
    run.set_status("finished")
    manifest = run.read_manifest()
    assert (manifest["status"], manifest["epochs_completed"], manifest["last_epoch"]) == ("finished", 2, 1)
    with pytest.raises(ConfigError, match="one of running, finished, failed, got 'done'"):
        run.set_status("done")


# --- epochs ---------------------------------------------------------------------------------------------------


def test_commit_epoch_trajectory_columns_and_nulls(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    commit(run, 0, hessian_ev=None, flag=True)
    commit(run, 1, hessian_ev=np.float32(0.5), flag=False)
    commit(run, 2, hessian_ev=2, flag=True, epsilon=0.03, skip_count=np.int64(2))
    table = read_trajectory(run.path)
    assert table.column_names == [
        "epoch", "train_loss", "valid_acc", "genotype", "hessian_ev", "flag", "epsilon", "skip_count"
    ]  # fmt: skip
    types = dict(zip(table.column_names, table.schema.types, strict=True))
    assert types["epoch"] == pa.int64()
    assert types["hessian_ev"] == pa.float64()  # int widened to float
    assert types["flag"] == pa.bool_()
    assert types["genotype"] == pa.string()
    assert table.column("epoch").to_pylist() == [0, 1, 2]
    assert table.column("hessian_ev").to_pylist() == [None, 0.5, 2.0]
    assert table.column("epsilon").to_pylist() == [None, None, 0.03]
    assert table.column("skip_count").to_pylist() == [None, None, 2]
    assert run.trajectory_rows() == RunDir(run.path).trajectory_rows() == table.to_pylist()
    assert table.to_pandas()["epsilon"].isna().tolist() == [True, True, False]


def test_commit_epoch_keeps_nan_and_rejects_bad_values(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    commit(run, 0, grad_norm=float("nan"))
    assert np.isnan(read_trajectory(run.path).column("grad_norm").to_pylist()[0])
    with pytest.raises(ConfigError, match="column 'grad_norm' held float values and now got a str"):
        commit(run, 1, grad_norm="big")
    with pytest.raises(ConfigError, match="column 'vec' got a value of type ndarray"):
        commit(run, 1, vec=np.zeros(3))
    with pytest.raises(ConfigError, match="says 'epoch': 5; leave it out or make it 1"):
        run.commit_epoch(1, {"epoch": 5}, [], {})
    with pytest.raises(RunDirError, match=r"got epoch 3, but .* has epochs up to 0"):
        commit(run, 3)
    commit(run, 1)  # the refused commits changed nothing
    assert [r["epoch"] for r in run.trajectory_rows()] == [0, 1]
    assert read_trajectory(run.path).column_names == ["epoch", "train_loss", "valid_acc", "genotype", "grad_norm"]


def test_alphas_long_form(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run", durable=False)  # no fsync: same files, only less safe against power loss
    run.create({"config": CONFIG})
    for epoch in range(3):
        commit(run, epoch)
    table = read_alphas(run.path / ALPHAS_FILE)
    assert table.column_names == ["epoch", "edge", "op", "alpha", "weight"]
    assert table.num_rows == 12
    assert table.schema.field("alpha").type == pa.float64()
    assert table.to_pylist()[5] == {"epoch": 1, "edge": "1<-0", "op": "skip_connect", "alpha": 1.1, "weight": 0.2}


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    assert run.load_checkpoint() is None
    net = torch.nn.Linear(3, 2)
    state = {"model": net.state_dict(), "alphas": [torch.randn(6, 5)], "rng": {"torch": torch.get_rng_state()}}
    extra = {"step": 7, "name": "x", "betas": (0.5, 0.999), "seen": {1, 2}, "size": torch.Size([2]), "none": None}
    run.commit_epoch(0, {"loss": 1.0}, [], {**state, "nested": extra})
    loaded = RunDir(run.path).load_checkpoint()
    assert loaded["epoch"] == 0
    assert loaded["nested"] == extra
    assert torch.equal(loaded["model"]["weight"], net.weight.detach())
    assert torch.equal(loaded["alphas"][0], state["alphas"][0])
    assert torch.equal(loaded["rng"]["torch"], state["rng"]["torch"])


@pytest.mark.parametrize(
    ("value", "where", "kind"),
    [
        (np.zeros(3), "checkpoint['components'][0]['history']", "numpy.ndarray"),
        (np.float64(0.5), "checkpoint['components'][0]['history']", "numpy.float64"),
        ({Path("k"): 1}, "checkpoint['components'][0]['history'] (a key)", "pathlib.PosixPath"),
        (torch.optim.SGD, "checkpoint['components'][0]['history']", "builtins.type"),
    ],
)
def test_a_checkpoint_value_the_safe_loader_refuses_fails_the_commit_naming_it(
    tmp_path: Path, value: object, where: str, kind: str
) -> None:
    run = new_run(tmp_path)
    commit(run, 0)
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    with pytest.raises(ConfigError) as info:
        run.commit_epoch(1, {"loss": 1.0}, [], {"components": [{"history": value}]})
    message = str(info.value)
    assert f"the checkpoint of epoch 1 holds a {kind} at {where}; a checkpoint may hold only tensors" in message
    assert "state_dict()" in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before  # nothing written
    assert [r["epoch"] for r in run.trajectory_rows()] == [0]
    commit(run, 1)  # the run goes on


def test_damaged_checkpoint_and_parquet_messages(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    commit(run, 0)
    (run.path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match=r"cannot be loaded.*restart the run from scratch .*, delete .*run"):
        run.load_checkpoint()
    (run.path / TRAJECTORY_FILE).write_bytes(b"PAR1 garbage")
    with pytest.raises(RunDirError, match="not a readable Parquet file"):
        read_trajectory(run.path)
    with pytest.raises(RunDirError, match=r"no alphas.parquet at .*completed no epoch"):
        read_alphas(tmp_path / "nowhere")


# --- atomicity and resume -------------------------------------------------------------------------------------


def test_failed_replace_keeps_previous_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash during rename")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="simulated"):
            atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert temps(tmp_path) == []


def test_crash_mid_commit_leaves_resumable_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = new_run(tmp_path)
    for epoch in range(3):
        commit(run, epoch)
    before = (run.path / TRAJECTORY_FILE).read_bytes()
    real_replace = os.replace
    calls = []

    def replace_then_crash(src: str, dst: str) -> None:
        calls.append(Path(dst).name)
        if len(calls) == 3:  # trajectory and alphas of epoch 3 are in place, the checkpoint is not
            raise OSError("simulated crash before the checkpoint")
        real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace_then_crash)
        with pytest.raises(OSError, match="simulated"):
            commit(run, 3, new_col=1.0)
    assert calls == [TRAJECTORY_FILE, ALPHAS_FILE, CHECKPOINT_FILE]
    assert temps(run.path) == []
    assert read_trajectory(run.path).num_rows == 4
    assert [r["epoch"] for r in run.trajectory_rows()] == [0, 1, 2]  # memory rolled back

    (run.path / f".{CHECKPOINT_FILE}.dead{TEMP_SUFFIX}").write_bytes(b"partial")  # as left by a SIGKILL
    resumed = RunDir(run.path)
    state = resumed.resume_state()
    assert (state.epoch, state.dropped_rows) == (2, 1)
    assert torch.equal(state.checkpoint["weights"], torch.full((2,), 2.0))
    assert temps(run.path) == []
    assert (run.path / TRAJECTORY_FILE).read_bytes() != before  # rewritten, with the new column kept as nulls
    assert read_trajectory(run.path).column("epoch").to_pylist() == [0, 1, 2]
    assert sorted(set(read_alphas(run.path).column("epoch").to_pylist())) == [0, 1, 2]
    assert resumed.read_manifest()["epochs_completed"] == 3
    commit(resumed, 3)
    assert read_trajectory(run.path).column("epoch").to_pylist() == [0, 1, 2, 3]


def test_resume_without_checkpoint_starts_from_scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = new_run(tmp_path)
    assert RunDir(run.path).resume_state().epoch is None
    commit_crashing_at_checkpoint(run, 0, monkeypatch)
    state = RunDir(run.path).resume_state()
    assert (state.epoch, state.checkpoint, state.dropped_rows) == (None, None, 1)
    assert read_trajectory(run.path).num_rows == 0
    assert read_alphas(run.path).num_rows == 0


def test_resume_with_missing_rows_is_an_error(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    for epoch in range(4):
        commit(run, epoch)
    table = read_trajectory(run.path)
    kept = table.filter(pa.compute.is_in(table.column("epoch"), pa.array([0, 1, 3])))
    import pyarrow.parquet as pq

    pq.write_table(kept, run.path / TRAJECTORY_FILE)
    with pytest.raises(RunDirError, match=r"trajectory.parquet holds epochs 0-1, 3, but .* says epoch 3 is complete"):
        RunDir(run.path).resume_state()
    (run.path / TRAJECTORY_FILE).unlink()
    with pytest.raises(RunDirError, match=f"{TRAJECTORY_FILE} is missing.*Restore the file; to restart the run"):
        RunDir(run.path).resume_state()


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_rows_ahead_of_the_checkpoint_beyond_one_epoch_are_refused_and_kept(tmp_path: Path) -> None:
    """A checkpoint removed (a results folder shared without its .pt files) or replaced by an
    older one must not make resuming drop the epochs the directory records."""
    run = new_run(tmp_path)
    for epoch in range(4):
        commit(run, epoch)
    other = new_run(tmp_path, "other")
    commit(other, 0)
    commit(other, 1)
    older = (other.path / CHECKPOINT_FILE).read_bytes()  # says epoch 1
    (run.path / CHECKPOINT_FILE).replace(tmp_path / "kept.pt")
    hint = f"Restore the newer {CHECKPOINT_FILE}; to restart the run from scratch (losing its recorded epochs), "
    hint += f"delete {run.path} or use a new directory"

    before = _files(run.path)
    with pytest.raises(RunDirError) as info:
        RunDir(run.path).resume_state()
    assert str(info.value).startswith(
        f"{run.path / MANIFEST_FILE} records epoch 3 as complete, but {run.path / CHECKPOINT_FILE} is missing; "
    )
    assert hint in str(info.value)
    assert _files(run.path) == before

    (run.path / CHECKPOINT_FILE).write_bytes(older)
    before = _files(run.path)
    with pytest.raises(RunDirError, match=r"records epoch 3 as complete, but .* says epoch 1 is the last complete one"):
        RunDir(run.path).resume_state()
    assert _files(run.path) == before

    manifest = json.loads((run.path / MANIFEST_FILE).read_text())  # a manifest that lags (as written by hand)
    (run.path / MANIFEST_FILE).write_text(json.dumps({**manifest, "last_epoch": 1}))
    before = _files(run.path)
    with pytest.raises(RunDirError) as info:
        RunDir(run.path).resume_state()
    assert str(info.value).startswith(
        f"{run.path / TRAJECTORY_FILE} holds epochs 2-3, but {run.path / CHECKPOINT_FILE} says epoch 1 is the last "
    )
    assert hint in str(info.value)
    assert _files(run.path) == before

    (tmp_path / "kept.pt").replace(run.path / CHECKPOINT_FILE)  # restored: resumes
    assert RunDir(run.path).resume_state().epoch == 3


def test_a_refused_resume_rewrites_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows after the checkpoint are dropped only once the rest checks out (here epoch 1 is missing)."""
    run = new_run(tmp_path)
    for epoch in range(3):
        commit(run, epoch)
    commit_crashing_at_checkpoint(run, 3, monkeypatch)
    table = read_trajectory(run.path)
    import pyarrow.parquet as pq

    pq.write_table(table.filter(pa.compute.not_equal(table.column("epoch"), 1)), run.path / TRAJECTORY_FILE)
    before = _files(run.path)
    with pytest.raises(RunDirError, match=r"holds epochs 0, 2, but .* says epoch 2 is complete"):
        RunDir(run.path).resume_state()
    assert _files(run.path) == before


def test_check_config(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    run.check_config(CONFIG)
    changed = {**CONFIG, "optimizer": {"lr": 0.05, "momentum": 0.9}, "seed": 2}
    run.check_config(changed, ignore=["optimizer.lr", "seed"])
    with pytest.raises(RunDirError, match=r"different config: differs in optimizer.lr \(0.025 vs 0.05\)"):
        run.check_config(changed, ignore=["seed"])


# --- config diff and provenance -------------------------------------------------------------------------------


def test_config_diff_nested() -> None:
    old = {"a": 1, "opt": {"lr": 0.025, "wd": 3e-4, "sched": {"name": "cos"}}, "ops": ["none", "skip"], "x": None}
    new = {"a": 1, "opt": {"lr": 0.05, "wd": 3e-4, "sched": {"name": "step"}}, "ops": ["none"], "y": True}
    assert config_diff(old, new) == ["ops", "opt.lr", "opt.sched.name", "x", "y"]
    assert config_diff(old, new, ignore=["opt", "x"]) == ["ops", "y"]
    assert config_diff(old, new, ignore=["opt.s*"]) == ["ops", "opt.lr", "x", "y"]
    assert config_diff({"f": float("nan"), "b": 1}, {"f": float("nan"), "b": True}) == ["b"]
    assert config_diff({"d": {"k": 1}}, {"d": 5}) == ["d"]
    assert describe_config_diff(old, new, ignore=["ops", "opt.sched"]) == (
        "opt.lr (0.025 vs 0.05), x (None vs not set), y (not set vs True)"
    )


def test_git_commit_inside_repo_and_outside(tmp_path: Path) -> None:
    found = git_commit()
    assert found is not None
    assert re.fullmatch(r"[0-9a-f]{40}", found["commit"])
    assert isinstance(found["dirty"], bool)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert found["commit"] == head.stdout.strip()
    assert git_commit(tmp_path) is None
    assert git_commit(tmp_path / "missing" / "file.txt") is None


def test_versions_utc_now_and_fingerprint(tmp_path: Path) -> None:
    found = versions()
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    assert found["torch"] == torch.__version__
    assert found["numpy"] == np.__version__
    assert found["pyarrow"] == pa.__version__
    assert "torch_cuda" in found
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", utc_now())
    data = tmp_path / "data.bin"
    data.write_bytes(b"abc")
    record = file_fingerprint(data)
    assert record["size_bytes"] == 3
    assert record["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    json.dumps(record)


def test_import_loads_neither_torch_nor_pyarrow() -> None:
    code = "import sys, nasbench_harness.tracking; print('torch' in sys.modules, 'pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# -- runs without epochs (the table-only baselines) ---------------------------------------------
def test_write_table_fixes_types_and_counts_rows(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "baseline")
    run.create({"kind": "tabular-baseline"})
    rows = [{"evaluation": 1, "parent": None, "valid_acc": 90}, {"evaluation": 2, "parent": None, "valid_acc": 91.5}]
    run.write_table(rows, {"parent": "str", "valid_acc": "float"})
    table = read_trajectory(run.path)
    assert table.schema.field("parent").type == pa.string()  # all null, typed as asked
    assert table.schema.field("valid_acc").type == pa.float64()
    assert table.schema.field("evaluation").type == pa.int64()
    assert table.column("valid_acc").to_pylist() == [90.0, 91.5]
    manifest = run.read_manifest()
    assert (manifest["epochs_completed"], manifest["last_epoch"], manifest["status"]) == (2, None, "running")
    run.write_table(rows[:1])  # replaces, never appends
    assert read_trajectory(run.path).num_rows == 1
    run.set_status("finished")
    with pytest.raises(RunDirError, match="status 'finished'"):
        run.write_table(rows)
    assert read_trajectory(run.path).num_rows == 1  # nothing written is lost


def test_write_table_rejects_an_unknown_kind(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "baseline")
    run.create({"kind": "tabular-baseline"})
    with pytest.raises(ConfigError, match="kinds take bool, int, float, str"):
        run.write_table([{"a": 1}], {"a": "decimal"})
