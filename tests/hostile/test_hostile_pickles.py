"""Hostile pickles: a ``__reduce__`` that would create a file, in every place a pickle can come in,
and damaged checkpoints, which must never turn into a fresh start that loses the epochs recorded.

- ``checkpoint.pt`` of a run directory, in torch's zip format, torch's legacy format and as a raw
  pickle, resumed by ``nbh search --out DIR`` (resume is the default), ``nbh search --resume``,
  ``nbh sweep`` and the API (``RunDir.resume_state``);
- the CIFAR-10 / CIFAR-100 / ImageNet16 batches a search reads (``nbh search --data-dir``);
- the official NB201 ``.pth`` (``nbh data import nb201`` without ``--trust-pickle``, also with
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in the environment);
- the ``.npy`` arrays of a cache (an object array, with and without the sidecar's checksums
  updated to match, read by ``nbh query``).

Every case checks that the marker file the payload would create does not exist, the exit code, the
one-line message naming the file (and the class or function the pickle names, where it names one),
and that every file already written is unchanged. Every registered method's checkpoint is also
checked to load under the safe loader, so refusing other content costs no legitimate resume.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from checks import error_line, snapshot
from data_files import write_cifar10, write_cifar100, write_imagenet16
from test_cli import nbh
from test_cli_search import TINY
from tiny import interrupted_search, tiny_search

from nasbench_harness.errors import ConfigError, RunDirError
from nasbench_harness.registry import METHODS, make_method
from nasbench_harness.tracking import CHECKPOINT_FILE, RunDir

SYSTEM = f"{os.system.__module__}.system"  # posix.system on Linux
RESTART = "to restart the run from scratch (losing its recorded epochs), delete"


# -- payloads ---------------------------------------------------------------------------------------
class Touch:
    """Unpickling it runs ``touch MARKER`` (via os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch '{self.marker}'",)


class OpenForWriting:
    """Unpickling it runs ``open(MARKER, "w")`` (builtins.open, pickled as io.open)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return builtins.open, (str(self.marker), "w")


class Exec:
    """Unpickling it runs ``exec("open(MARKER, 'w')")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return builtins.exec, (f"open({str(self.marker)!r}, 'w')",)


def _checkpoint_like(payload: Any) -> dict[str, Any]:
    """What a real checkpoint holds, with ``payload`` hidden deep in an optimizer state."""
    return {
        "epoch": 2,
        "net": {"w": torch.zeros(3)},
        "w_optim": {"state": {0: {"momentum_buffer": payload}}, "param_groups": []},
        "components": [],
    }


def _zip(path: Path, obj: Any) -> None:
    torch.save(obj, path)


def _torch_legacy(path: Path, obj: Any) -> None:
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def _raw(protocol: int) -> Callable[[Path, Any], None]:
    def write(path: Path, obj: Any) -> None:
        path.write_bytes(pickle.dumps(obj, protocol=protocol))

    return write


CHECKPOINTS: dict[str, tuple[Callable[[Path, Any], None], type, str]] = {
    # case: (how the file is written, payload class, the name the message must give)
    "zip-os-system": (_zip, Touch, SYSTEM),
    "zip-builtins-open": (_zip, OpenForWriting, "io.open"),
    "zip-builtins-exec": (_zip, Exec, "builtins.exec"),
    "torch-legacy-format-os-system": (_torch_legacy, Touch, SYSTEM),
    "raw-pickle-protocol-0": (_raw(0), Touch, SYSTEM),
    "raw-pickle-protocol-2": (_raw(2), OpenForWriting, "io.open"),
    "raw-pickle-protocol-5": (_raw(5), Exec, "builtins.exec"),
}


def plant_checkpoint(run: Path, case: str, marker: Path) -> str:
    """Replace ``run``'s checkpoint.pt by the hostile file of ``case``; the name the message must give."""
    write, payload, name = CHECKPOINTS[case]
    write(run / CHECKPOINT_FILE, _checkpoint_like(payload(marker)))
    return name


# -- helpers --------------------------------------------------------------------------------------
def one_line_error(code: int, err: str, *needles: str) -> str:
    """The only ``error:`` line of a failed command (exit 1, no traceback), holding every needle,
    with nothing else on stderr."""
    line = error_line(code, err, *needles)
    assert [other for other in err.splitlines() if other.strip()] == [line], err
    return line


def _main(args: list[str]) -> int:
    """``nbh ARGS`` in this process, outside a test (module fixtures); the exit code."""
    import sys

    from nasbench_harness.cli.main import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["nbh", *args])
        with pytest.raises(SystemExit) as info:
            main()
    return int(info.value.code or 0)


@pytest.fixture(scope="module")
def cache_dir(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the synthetic NB201 table, shared by this module's searches (read only)."""
    cache = tmp_path_factory.mktemp("pickles-cache")
    assert _main(["data", "import", "nb201", str(synthetic_data_dir / "nb201" / "nb201_table.parquet"),
                  "--cache-dir", str(cache)]) == 0  # fmt: skip
    return cache


def search_args(out: Path, data_dir: Path, cache: Path, *extra: str) -> list[str]:
    return ["search", "--epochs", "2", "--out", str(out), "--data-dir", str(data_dir), "--cache-dir", str(cache),
            *TINY, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def cli_run(synthetic_data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch ``nbh search``, copied by each test before its checkpoint is replaced."""
    out = tmp_path_factory.mktemp("pickles-runs") / "run"
    assert _main(search_args(out, synthetic_data_dir, cache_dir)) == 0
    return out


# -- checkpoints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["search --out (resume by default)", "search --resume"])
@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_a_malicious_checkpoint_is_refused_by_nbh_search(
    case: str, how: str, cli_run: Path, synthetic_data_dir: Path, cache_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    run = shutil.copytree(cli_run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    name = plant_checkpoint(run, case, marker)
    before = snapshot(run)
    extra = ["--resume"] if how == "search --resume" else []
    code, _, err = nbh(capsys, monkeypatch, *search_args(run, synthetic_data_dir, cache_dir, *extra))
    one_line_error(code, err, f"{run / CHECKPOINT_FILE} names {name}", "which no nbh checkpoint holds",
                   "it was not loaded", "Resume only checkpoints you trust", RESTART)  # fmt: skip
    assert not marker.exists()
    assert snapshot(run) == before


@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_a_malicious_checkpoint_is_refused_by_the_api(case: str, cli_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(cli_run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    name = plant_checkpoint(run, case, marker)
    before = snapshot(run)
    for load in (RunDir(run).load_checkpoint, RunDir(run).resume_state):
        with pytest.raises(RunDirError) as info:
            load()
        message = str(info.value)
        assert message.startswith(f"{run / CHECKPOINT_FILE} names {name}") and "which no nbh checkpoint" in message
        assert "\n" not in message and RESTART in message
    assert not marker.exists()
    assert snapshot(run) == before


SUITE = """\
    name: hostile
    reproduces: a one-run sweep whose checkpoint is replaced
    command: nbh sweep hostile.yaml
    spaces: [nb201]
    datasets: [cifar10]
    seeds: [0]
    methods: [darts]
    overrides:
      epochs: 2
      batch_size: 32
      threads: 1
      model: {channels: 4}
      data: {train_size: 64, valid_size: 64}
      tracking: {eigen_every: 0}
    variants:
      cpu: {}
"""


@pytest.fixture(scope="module")
def swept(synthetic_data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(suite file, results root) of a finished one-run sweep."""
    base = tmp_path_factory.mktemp("pickles-sweep")
    suite = base / "hostile.yaml"
    suite.write_text(textwrap.dedent(SUITE))
    args = ["sweep", str(suite), "--root", str(base / "results"), "--device", "cpu", "--data-dir",
            str(synthetic_data_dir), "--cache-dir", str(cache_dir)]  # fmt: skip
    assert _main(args) == 0
    return suite, base / "results"


@pytest.mark.parametrize("case", ["zip-os-system", "torch-legacy-format-os-system", "raw-pickle-protocol-5"])
def test_a_malicious_checkpoint_is_refused_by_nbh_sweep(
    case: str, swept: tuple[Path, Path], synthetic_data_dir: Path, cache_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from nasbench_harness.execution.suite import expand, load_suite

    suite, results = swept
    root = shutil.copytree(results, tmp_path / "results")
    (run,) = [r.path for r in expand(load_suite(suite), "cpu", root)]
    manifest = json.loads((run / "manifest.json").read_text())  # an interrupted run: the sweep resumes it
    manifest.update(status="failed", error="interrupted by the user; continue with `nbh search ... --resume`")
    (run / "manifest.json").write_text(json.dumps(manifest))
    marker = tmp_path / "PWNED"
    name = plant_checkpoint(run, case, marker)
    before = snapshot(run)
    code, out, err = nbh(capsys, monkeypatch, "sweep", str(suite), "--root", str(root), "--device", "cpu",
                         "--data-dir", str(synthetic_data_dir), "--cache-dir", str(cache_dir))  # fmt: skip
    assert code == 1 and "Traceback" not in out + err, out + err
    failed = [line for line in err.splitlines() if line.startswith("failed")]  # the per-run lines (stderr)
    assert len(failed) == 1 and "1 runs: 1 failed" in out, out + err
    assert f"RunDirError: {run / CHECKPOINT_FILE} names {name}" in failed[0] and "Resume only" in failed[0]
    assert not marker.exists()
    assert snapshot(run) == before


# -- damaged checkpoints: the user decides --------------------------------------------------------
def _flip(path: Path, at: float, width: int) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + width] = bytes(b ^ 0xFF for b in data[start : start + width])
    path.write_bytes(bytes(data))


def _tensor_bit(path: Path) -> None:
    """One bit flipped in the middle of the largest tensor's bytes (torch.load alone reads it silently)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    head = info.header_offset  # a local header: 30 bytes, then the name and the extra field
    start = head + 30 + int.from_bytes(data[head + 26 : head + 28], "little")
    start += int.from_bytes(data[head + 28 : head + 30], "little")
    data[start + info.file_size // 2] ^= 0x08
    path.write_bytes(bytes(data))


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    # case: (what is done to checkpoint.pt, what the message must say)
    "truncated-to-half": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "cannot be loaded"),
    "truncated-to-10-bytes": (lambda p: p.write_bytes(p.read_bytes()[:10]), "cannot be loaded"),
    "empty": (lambda p: p.write_bytes(b""), "cannot be loaded (the file is empty)"),
    "256-bytes-flipped-mid-file": (lambda p: _flip(p, 0.5, 256), "cannot be loaded"),
    "one-bit-flipped-in-a-tensor": (_tensor_bit, "fails its CRC-32 check"),
    "foreign-bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "cannot be loaded"),
    "a-tensor-not-a-dict": (lambda p: torch.save(torch.zeros(3), p), "is not a run checkpoint"),
    "a-dict-without-epoch": (lambda p: torch.save({"net": {}}, p), "is not a run checkpoint"),
    "missing": (lambda p: p.unlink(), "records epoch 2 as complete, but"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_checkpoint_stops_the_resume_and_keeps_every_epoch(
    case: str, cli_run: Path, synthetic_data_dir: Path, cache_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    run = shutil.copytree(cli_run, tmp_path / "run")
    damage, says = DAMAGE[case]
    damage(run / CHECKPOINT_FILE)
    before = snapshot(run)
    code, _, err = nbh(capsys, monkeypatch, *search_args(run, synthetic_data_dir, cache_dir))
    one_line_error(code, err, str(run / CHECKPOINT_FILE), says, RESTART, str(run))
    assert snapshot(run) == before


def test_an_interrupted_run_whose_checkpoint_lags_one_epoch_still_resumes(synthetic_nb201: Any, tmp_path: Path) -> None:
    """The one legitimate gap (a stop between the trajectory and the checkpoint of an epoch) resumes."""
    import nasbench_harness.tracking.rundir as rundir

    original = rundir._save_checkpoint
    calls: list[int] = []

    def stop_at_the_second(file: Path, serialized: bytes, fsync: bool) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(file, serialized, fsync)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rundir, "_save_checkpoint", stop_at_the_second)
        with pytest.raises(KeyboardInterrupt):
            tiny_search(tmp_path, synthetic_nb201, "run", tracking={"eigen_every": 0})
    result = tiny_search(tmp_path, synthetic_nb201, "run", tracking={"eigen_every": 0})
    assert (result.status, result.epochs_completed, result.resumed_from) == ("finished", 2, 1)


# -- every method's checkpoint loads under the safe loader ----------------------------------------
def _eigen(method: str) -> int:
    return 1 if method in ("darts-es", "darts-ada") else 0  # their rule needs the eigenvalue


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_checkpoint_loads_under_the_safe_loader_and_resumes(
    method: str, synthetic_nb201: Any, small_nb101: Any, tmp_path: Path
) -> None:
    spaces = [("nb201", synthetic_nb201)]
    try:
        make_method(method).check_space("nb1shot1-1")
    except ConfigError:  # the method refuses NB-1Shot1 (test_method_contract checks how)
        pass
    else:
        spaces.append(("nb1shot1-1", small_nb101))
    for space, bench in spaces:
        settings = {"method": method, "space": space, "tracking": {"eigen_every": _eigen(method)}}
        interrupted_search(tmp_path, bench, space, after_epoch=1, **settings)
        assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / space / CHECKPOINT_FILE) == []
        result = tiny_search(tmp_path, bench, space, **settings)  # restores every part from the safe load
        assert (result.status, result.epochs_completed, result.resumed_from) == ("finished", 2, 1)
        file = result.path / CHECKPOINT_FILE
        assert torch.serialization.get_unsafe_globals_in_checkpoint(file) == []
        components = RunDir(result.path).load_checkpoint()["components"]
        if method == "darts-ada":
            assert components[-1]["snapshots"], "the rollback snapshots (nested checkpoints) were checked"
        if method == "single-stage":
            assert isinstance(components[0]["frozen_weights"], torch.Tensor)


# -- image batches --------------------------------------------------------------------------------
DATASETS: dict[str, tuple[Callable[[Path], Any], str, tuple[str, ...]]] = {
    # dataset: (writer, its directory, files a search reads)
    "cifar10": (write_cifar10, "cifar-10-batches-py", ("data_batch_1", "data_batch_5")),
    "cifar100": (write_cifar100, "cifar-100-python", ("train", "test")),
    "ImageNet16-120": (write_imagenet16, "ImageNet16", ("train_data_batch_1", "val_data")),
}
BATCH_PAYLOADS: dict[str, tuple[type, int, str]] = {
    "os-system-protocol-2": (Touch, 2, SYSTEM),
    "builtins-exec-protocol-5": (Exec, 5, "builtins.exec"),
}


@pytest.fixture(scope="module")
def image_dirs(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A data directory per dataset: the synthetic NB201 table and that dataset's batches."""
    dirs = {}
    for dataset, (write, _, _) in DATASETS.items():
        root = tmp_path_factory.mktemp(f"images-{dataset}")
        (root / "nb201").mkdir()
        (root / "nb201" / "nb201_table.parquet").symlink_to(synthetic_data_dir / "nb201" / "nb201_table.parquet")
        write(root)
        dirs[dataset] = root
    return dirs


@pytest.mark.parametrize("payload", sorted(BATCH_PAYLOADS))
@pytest.mark.parametrize(("dataset", "file"), [(d, f) for d, (_, _, files) in DATASETS.items() for f in files])
def test_a_malicious_image_batch_is_refused_by_nbh_search(
    dataset: str, file: str, payload: str, image_dirs: dict[str, Path], cache_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    data = tmp_path / "data"
    shutil.copytree(image_dirs[dataset], data, symlinks=True)
    marker = tmp_path / "PWNED"
    cls, protocol, name = BATCH_PAYLOADS[payload]
    path = data / DATASETS[dataset][1] / file
    path.write_bytes(pickle.dumps({"data": cls(marker), "labels": [1, 2]}, protocol=protocol))
    before = snapshot(data)
    out = tmp_path / "run"
    code, _, err = nbh(capsys, monkeypatch, *search_args(out, data, cache_dir, "--dataset", dataset))
    one_line_error(code, err, f"{path} refers to {name}, which a data batch never does", "it was not unpickled",
                   "Replace it with the official file")  # fmt: skip
    assert not marker.exists()
    assert snapshot(data) == before
    assert not (out / "checkpoint.pt").exists()


def test_a_batch_that_decodes_bytes_with_another_codec_is_refused_naming_it(
    image_dirs: dict[str, Path], cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``_codecs.encode`` is allowed (protocol-2 pickles store bytes with it), for latin1 only."""
    data = tmp_path / "data"
    shutil.copytree(image_dirs["cifar10"], data, symlinks=True)
    path = data / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(
        b"\x80\x02}X\x04\x00\x00\x00datac_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00utf-8\x86Rs."
    )
    before = snapshot(data)
    code, _, err = nbh(capsys, monkeypatch, *search_args(tmp_path / "run", data, cache_dir))
    one_line_error(code, err, f"{path}: the pickle encodes bytes with 'utf-8'", "Replace it with the official file")
    assert snapshot(data) == before


# -- the official NB201 .pth ----------------------------------------------------------------------
PTH: dict[str, tuple[Callable[[Path, Any], None], type]] = {
    "zip-os-system": (_zip, Touch),
    "zip-builtins-exec": (_zip, Exec),
    "torch-legacy-format": (_torch_legacy, OpenForWriting),
    "raw-pickle-protocol-2": (_raw(2), Touch),
    "raw-pickle-protocol-5": (_raw(5), Exec),
}


@pytest.mark.parametrize("environment", ["plain", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"])
@pytest.mark.parametrize("case", sorted(PTH))
def test_a_malicious_nb201_pth_is_not_unpickled_without_trust(
    case: str, environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    if environment != "plain":
        monkeypatch.setenv(*environment.split("="))
    marker = tmp_path / "PWNED"
    write, payload = PTH[case]
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    write(path, {"meta_archs": [], "arch2infos": {0: payload(marker)}, "evaluated_indexes": []})
    cache = tmp_path / "cache"
    code, _, err = nbh(capsys, monkeypatch, "data", "import", "nb201", str(path), "--cache-dir", str(cache))
    one_line_error(code, err, str(path), "torch's safe loader refuses to unpickle", "it was not unpickled",
                   "--trust-pickle")  # fmt: skip
    assert not marker.exists()
    assert not (cache / "nb201").exists()
    assert os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") is None  # the gate restored the environment
    assert (os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") is None) == (environment == "plain")


# -- cache arrays ---------------------------------------------------------------------------------
def _object_array(marker: Path) -> np.ndarray:
    array = np.empty(2, dtype=object)
    array[0], array[1] = Touch(marker), Exec(marker)
    return array


def _reseal(cache: Path, name: str) -> None:
    """Record the replaced file's sha256 in the sidecar and the sidecar's own checksum anew, as an
    attacker who knows the format would."""
    import hashlib

    from nasbench_harness.tabular.cache import _sidecar_checksum

    sidecar = json.loads((cache / "meta.json").read_text())
    sidecar["files"][name]["sha256"] = hashlib.sha256((cache / name).read_bytes()).hexdigest()
    sidecar["checksum"] = _sidecar_checksum(sidecar)
    (cache / "meta.json").write_text(json.dumps(sidecar))


@pytest.fixture
def caches(synthetic_nb201: Any, small_nb101: Any, tmp_path: Path) -> dict[str, tuple[Path, list[str]]]:
    """Copies of an NB201 and an NB101 cache: benchmark -> (cache root, the query that reads it)."""
    from nb101_files import S1, cell

    nb201 = tmp_path / "c201"
    shutil.copytree(Path(synthetic_nb201.path), nb201 / "nb201")
    nb101 = tmp_path / "c101"
    shutil.copytree(Path(small_nb101.path), nb101 / "nb101")
    return {"nb201": (nb201, ["query", "nb201", "0"]), "nb101": (nb101, ["query", "nb101", cell(S1[0])[0]])}


@pytest.mark.parametrize("resealed", [False, True], ids=["checksum-left", "checksum-forged"])
@pytest.mark.parametrize(("benchmark", "name"), [("nb201", "metrics.npy"), ("nb101", "metrics.npy"),
                                                 ("nb101", "keys.npy")])  # fmt: skip
def test_an_object_array_in_a_cache_is_refused_with_the_reimport_command(
    benchmark: str, name: str, resealed: bool, caches: dict[str, tuple[Path, list[str]]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    root, query = caches[benchmark]
    cache = root / benchmark
    marker = tmp_path / "PWNED"
    np.save(cache / name, _object_array(marker), allow_pickle=True)
    if resealed:
        _reseal(cache, name)
    before = snapshot(root)
    code, _, err = nbh(capsys, monkeypatch, *query, "--cache-dir", str(root))
    one_line_error(code, err, str(cache / name), f"rebuild it with `nbh data import {benchmark} ")
    assert not marker.exists()
    assert snapshot(root) == before
