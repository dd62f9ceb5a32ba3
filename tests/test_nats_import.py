"""Import of NATS-Bench's topology files (the ``-simple`` and ``-full`` directories and the one-file
layout), written here with the official ``nats_bench`` classes: the same metric keys and numbers as
the NB201 ``.pth`` import of the same trials, per-epoch accuracies equal to the official API's, and
bad files refused with a clear error and no partial cache."""

from __future__ import annotations

import bz2
import collections
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nb201_files import EVAL_SETS
from test_cli import nbh

from nasbench_harness.errors import SourceFileError, UnknownMetricError
from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype
from nasbench_harness.tabular.nats_import import import_nats
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_import import import_nb201
from nasbench_harness.tabular.nb201_metrics import MetricKey

INDICES = [3, 1835, 9930]
BASE = "NATS-tss-v1_0-3ffb9"
HPS = {"12": 12, "200": 200}


def _trial(rng: np.random.Generator, dataset: str, arch: str, seed: int, epochs: int, costs: tuple, weights: bool):
    """One trial (``ResultsCount``) with every epoch recorded; ``weights``: as in the -full release."""
    from nats_bench import ResultsCount

    def curve(lo: float, hi: float) -> dict[int, float]:
        return {e: float(rng.uniform(lo, hi)) for e in range(epochs)}

    config = {"channel": 16, "num_cells": 5, "arch_str": arch, "class_num": 10}
    state = {"classifier.weight": torch.randn(10, 4)} if weights else None
    params, flops, latency = costs
    result = ResultsCount(
        dataset, state, curve(10, 100), curve(0.1, 2.5), params, flops, config, seed, epochs, [latency]
    )
    result.update_train_info(curve(10, 100), None, curve(0.1, 2.5), curve(5, 20))
    accs, losses, times = {}, {}, {}
    for name in EVAL_SETS[dataset]:
        for e in range(epochs):
            key = f"{name}@{e}"
            accs[key], losses[key], times[key] = rng.uniform(10, 95), rng.uniform(0.2, 2.3), rng.uniform(1, 3)
    result.update_eval(accs, losses, times)
    return result


def cells(indices: list[int], seed: int = 0, weights: bool = False) -> dict[int, dict[str, dict]]:
    """``{index: {"12": ArchResults state, "200": ...}}`` as NATS-Bench stores each cell."""
    from nats_bench import ArchResults

    rng = np.random.default_rng(seed)
    out = {}
    for index in indices:
        arch = NB201Genotype.from_index(index).to_string()
        entry = collections.OrderedDict()
        for hp, epochs in HPS.items():
            results = ArchResults(index, arch)
            for dataset in EVAL_SETS:
                costs = (float(rng.uniform(0.1, 1.5)), float(rng.uniform(10, 200)), float(rng.uniform(0.005, 0.03)))
                seeds = sorted({888, *rng.choice([777, 999], size=int(rng.integers(0, 3)), replace=False).tolist()})
                for s in seeds:
                    results.update(dataset, s, _trial(rng, dataset, arch, s, epochs, costs, weights))
            entry[hp] = results.state_dict()
        out[index] = entry
    return out


def meta_archs() -> list[str]:
    return [NB201Genotype.from_index(i).to_string() for i in range(NUM_CELLS)]


def write_nats_dir(root: Path, data: dict[int, dict], suffix: str = "simple") -> Path:
    """The official archive layout: ``meta.pickle.pbz2`` and ``<index:06d>.pickle.pbz2`` per cell."""
    from nats_bench import pickle_save

    path = root / f"{BASE}-{suffix}"
    path.mkdir(parents=True)
    meta = {"meta_archs": meta_archs(), "total_archs": NUM_CELLS, "arch2infos": None, "evaluated_indexes": set()}
    pickle_save(meta, str(path / "meta.pickle"))
    for index, entry in data.items():
        pickle_save(entry, str(path / f"{index:06d}.pickle"))
    return path


def write_nats_file(root: Path, data: dict[int, dict]) -> Path:
    """The one-file layout: every cell in ``NATS-tss-v1_0-3ffb9.pickle.pbz2``."""
    from nats_bench import pickle_save

    info = {"meta_archs": meta_archs(), "total_archs": NUM_CELLS, "arch2infos": data, "evaluated_indexes": set(data)}
    pickle_save(info, str(root / f"{BASE}.pickle"))
    return root / f"{BASE}.pickle.pbz2"


def write_nb201_pth(path: Path, data: dict[int, dict]) -> Path:
    """The same trials as an official NAS-Bench-201 .pth (its ``less``/``full`` names for hp 12/200)."""
    arch2infos = {i: {"less": e["12"], "full": e["200"]} for i, e in data.items()}
    torch.save({"meta_archs": meta_archs(), "arch2infos": arch2infos, "evaluated_indexes": list(data)}, path)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("nats")
    data = cells(INDICES)
    simple = write_nats_dir(root, data)
    full = write_nats_dir(root, cells(INDICES, weights=True), "full")  # the same numbers (same draws), with weights
    single = write_nats_file(root, data)
    pth = write_nb201_pth(root / "NAS-Bench-201-v1_1-096897.pth", data)
    benches = {
        "pth": NB201Benchmark.load(import_nb201(pth, root / "c-pth")),
        "simple": NB201Benchmark.load(import_nb201(simple, root / "c-simple", trust_pickle=True)),
        "full": NB201Benchmark.load(import_nats(full, root / "c-full", trust_pickle=True)),
        "single": NB201Benchmark.load(import_nats(single, root / "c-single", trust_pickle=True, curves=False)),
    }
    return {"root": root, "simple": simple, "full": full, "single": single, "benches": benches}


@pytest.mark.parametrize("layout", ["simple", "full", "single"])
def test_the_same_keys_and_numbers_as_the_nb201_import(sources: dict[str, Any], layout: str) -> None:
    reference, bench = sources["benches"]["pth"], sources["benches"][layout]
    final = [m for m in bench.metrics if MetricKey.parse(m).epoch is None]
    assert final == list(reference.metrics)
    for metric in reference.metrics:
        np.testing.assert_array_equal(bench.values(metric), reference.values(metric), err_msg=metric)
    assert bench.coverage("cifar10-valid/x-valid/accuracy@200") == len(INDICES)


def test_per_epoch_accuracy_equals_the_official_api(sources: dict[str, Any]) -> None:
    from nats_bench import create

    api = create(str(sources["simple"]), "tss", fast_mode=True, verbose=False)
    bench = sources["benches"]["simple"]
    for index in INDICES:
        api.reload(str(sources["simple"]), index)
        for hp, epochs in HPS.items():
            results = api.arch2infos_dict[index][hp]
            for dataset, splits in EVAL_SETS.items():
                for split in splits:
                    for k in (1, 2, epochs // 2, epochs - 1):
                        official = results.get_metrics(dataset, split, iepoch=k - 1, is_random=False)["accuracy"]
                        assert bench.query(index, MetricKey(dataset, split, "accuracy", hp, epoch=k)) == official
                    final = results.get_metrics(dataset, split, is_random=False)["accuracy"]
                    assert bench.query(index, f"{dataset}/{split}/accuracy@{hp}:e{epochs}") == final
    epoch_keys = [m for m in bench.metrics if MetricKey.parse(m).epoch is not None]
    assert len(epoch_keys) == sum(len(s) for s in EVAL_SETS.values()) * (199 + 11)
    assert "after epoch 37 of 200" in bench.describe("cifar100/x-test/accuracy@200:e37")
    assert sources["benches"]["full"].values("cifar100/x-test/accuracy@200:e37").tolist() == pytest.approx(
        bench.values("cifar100/x-test/accuracy@200:e37").tolist(), nan_ok=True
    )
    assert not sources["benches"]["single"].has("cifar100/x-test/accuracy@200:e37")  # curves=False
    with pytest.raises(UnknownMetricError, match="outside the 12-epoch schedule"):
        bench.query(3, "cifar10/ori-test/accuracy@12:e13")


def test_sidecar_names_the_official_package_and_pins_the_files(sources: dict[str, Any]) -> None:
    info = sources["benches"]["simple"].info
    assert info["source"]["format"] == "nats-tss-directory" and info["source"]["name"] == f"{BASE}-simple"
    assert info["importer"]["name"] == "nats-tss (official nats_bench 1.8 API)"
    assert len(info["source"]["sha256"]) == 64 and info["extra"]["evaluated_cells"] == len(INDICES)
    assert sources["benches"]["single"].info["source"]["format"] == "nats-tss-file"


# -- refused files: a clear error, and the previous cache (or none) left as it was ----------------


def test_nothing_is_unpickled_without_trust(sources: dict[str, Any], tmp_path: Path, monkeypatch: Any) -> None:
    import pickle

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unpickled without --trust-pickle")

    monkeypatch.setattr(pickle, "load", refuse)
    for source in (sources["simple"], sources["single"]):
        with pytest.raises(SourceFileError, match=r"it was not unpickled.*--trust-pickle"):
            import_nb201(source, tmp_path / "cache")
    assert not (tmp_path / "cache" / "nb201").exists()


def _copy(sources: dict[str, Any], tmp_path: Path) -> Path:
    return Path(shutil.copytree(sources["simple"], tmp_path / f"{BASE}-simple"))


def _refused(source: Path, tmp_path: Path, match: str) -> None:
    """``source`` is refused with ``match``, and an earlier cache survives the attempt."""
    cache = tmp_path / "cache"
    earlier = import_nats(_earlier(tmp_path), cache, trust_pickle=True, curves=False)
    before = (earlier / "meta.json").read_bytes()
    with pytest.raises(SourceFileError, match=match):
        import_nats(source, cache, trust_pickle=True)
    assert (cache / "nb201" / "meta.json").read_bytes() == before
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".nb201.tmp")) == []


def _earlier(tmp_path: Path) -> Path:
    """A small good NATS-Bench file to import before the bad one."""
    folder = tmp_path / "earlier"
    folder.mkdir(exist_ok=True)
    return write_nats_file(folder, cells([7]))


def test_a_truncated_cell_file_is_named(sources: dict[str, Any], tmp_path: Path) -> None:
    source = _copy(sources, tmp_path)
    cell = source / "001835.pickle.pbz2"
    cell.write_bytes(cell.read_bytes()[: cell.stat().st_size // 2])
    _refused(source, tmp_path, r"cannot read .*001835\.pickle\.pbz2 as a NATS-Bench topology file .*truncated")


def test_a_cell_file_of_another_kind_is_named(sources: dict[str, Any], tmp_path: Path) -> None:
    source = _copy(sources, tmp_path)
    (source / "000003.pickle.pbz2").write_bytes(bz2.compress(b"not a pickle"))
    _refused(source, tmp_path, r"000003\.pickle\.pbz2")
    from nats_bench import pickle_save

    pickle_save({"12": {"arch_index": 3}}, str(source / "000003.pickle"))  # a dict, but no ArchResults in it
    _refused(source, tmp_path, r"000003\.pickle\.pbz2: cell 3 is not in the NATS-Bench layout")


def test_layouts_that_are_not_nats_bench_are_refused(sources: dict[str, Any], tmp_path: Path) -> None:
    empty = tmp_path / "some-dir"
    empty.mkdir()
    _refused(empty, tmp_path, r"without meta\.pickle\.pbz2, so not a NATS-Bench benchmark")
    source = _copy(sources, tmp_path)
    for cell in source.glob("0*.pickle.pbz2"):
        cell.unlink()
    _refused(source, tmp_path, "no cell files")
    _refused(tmp_path / "missing.pickle.pbz2", tmp_path, "no such file or directory")
    text = tmp_path / f"{BASE}.pickle.pbz2"
    text.write_text("hello")
    _refused(text, tmp_path, r"cannot read .* as a NATS-Bench topology file")


def test_reordered_meta_archs_are_refused(sources: dict[str, Any], tmp_path: Path) -> None:
    from nats_bench import pickle_save

    source = _copy(sources, tmp_path)
    archs = meta_archs()
    archs[0], archs[1] = archs[1], archs[0]
    meta = {"meta_archs": archs, "total_archs": NUM_CELLS, "arch2infos": None, "evaluated_indexes": set()}
    pickle_save(meta, str(source / "meta.pickle"))
    _refused(source, tmp_path, "not an official NAS-Bench-201 file")


def test_cli_imports_a_nats_directory(
    sources: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "cache")
    args = ["data", "import", "nb201", str(sources["simple"]), "--cache-dir", cache]
    code, _, err = nbh(capsys, monkeypatch, *args)
    assert code == 1 and "--trust-pickle" in err and "Traceback" not in err
    code, _, err = nbh(capsys, monkeypatch, *args, "--trust-pickle", "--no-curves")
    assert code == 0, err
    assert f"Imported {BASE}-simple" in " ".join(err.split()) and "3 of 15625 cells" in err
    metric = "cifar10-valid/x-valid/accuracy@200"
    code, out, err = nbh(capsys, monkeypatch, "query", "nb201", "1835", "-m", metric, "--json", "--cache-dir", cache)
    assert code == 0, err
    assert json.loads(out)["metrics"][metric] == sources["benches"]["pth"].query(1835, metric)
