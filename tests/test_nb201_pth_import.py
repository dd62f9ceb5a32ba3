"""Import of the official NAS-Bench-201 .pth format equals what the official API returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from nas_201_api import NASBench201API
from nb201_files import EVAL_SETS, write_official_pth

from nasbench_harness.errors import NotInBenchmarkError, SourceFileError
from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_import import import_nb201
from nasbench_harness.tabular.nb201_metrics import MetricKey

INDICES = [3, 1835, 9930]
# get_more_info's names for each split of a training setting
INFO_NAMES = {"train": "train", "x-valid": "valid", "x-test": "test", "ori-test": "test"}


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NASBench201API, NB201Benchmark]:
    root = tmp_path_factory.mktemp("pth")
    path = write_official_pth(root / "NAS-Bench-201-v1_1-096897.pth", INDICES)
    bench = NB201Benchmark.load(import_nb201(path, root / "cache"))
    return path, NASBench201API(str(path), verbose=False), bench


def _info_name(dataset: str, split: str) -> str:
    if split == "ori-test" and dataset in ("cifar100", "ImageNet16-120"):
        return "valtest"  # the full test set of these two is "valtest" in get_more_info
    return INFO_NAMES[split]


@pytest.mark.parametrize("hp", ["200", "12"])
@pytest.mark.parametrize("dataset", list(EVAL_SETS))
def test_means_equal_the_official_api(official: tuple, hp: str, dataset: str) -> None:
    _, api, bench = official
    for index in INDICES:
        info = api.get_more_info(index, dataset, hp=hp, is_random=False)
        for split in ("train", *EVAL_SETS[dataset]):
            name = _info_name(dataset, split)
            assert bench.query(index, MetricKey(dataset, split, "accuracy", hp)) == pytest.approx(
                info[f"{name}-accuracy"], abs=0
            )
            assert bench.query(index, MetricKey(dataset, split, "loss", hp)) == pytest.approx(
                info[f"{name}-loss"], abs=0
            )
        assert bench.query(index, MetricKey(dataset, "train", "time", hp)) == pytest.approx(info["train-all-time"])
        costs = api.get_cost_info(index, dataset, hp=hp)
        for quantity in ("flops", "params", "latency"):
            assert bench.query(index, MetricKey(dataset, None, quantity, hp)) == pytest.approx(costs[quantity], abs=0)


def test_each_seed_equals_the_official_api(official: tuple) -> None:
    _, api, bench = official
    for index in INDICES:
        for hp in ("200", "12"):
            for dataset in EVAL_SETS:
                seeds = sorted(api.query_by_index(index, dataset, hp=hp))
                assert bench.query(index, MetricKey(dataset, None, "n_seeds", hp)) == len(seeds)
                for k, seed in enumerate(seeds):
                    assert bench.query(index, MetricKey(dataset, None, "seed", hp, k)) == seed
                    info = api.get_more_info(index, dataset, hp=hp, is_random=seed)
                    split = EVAL_SETS[dataset][0]
                    key = MetricKey(dataset, split, "accuracy", hp, k)
                    assert bench.query(index, key) == info[f"{_info_name(dataset, split)}-accuracy"]
                missing = MetricKey(dataset, "train", "accuracy", hp, len(seeds))
                if bench.has(missing):
                    with pytest.raises(NotInBenchmarkError):
                        bench.query(index, missing)


def test_cells_outside_the_file_have_no_values(official: tuple) -> None:
    _, _, bench = official
    key = "cifar10-valid/x-valid/accuracy@200"
    assert bench.coverage(key) == len(INDICES)
    assert np.flatnonzero(~np.isnan(bench.values(key))).tolist() == sorted(INDICES)
    with pytest.raises(NotInBenchmarkError, match="3 of 15625"):
        bench.query(0, key)


def test_sidecar_names_the_official_importer(official: tuple) -> None:
    path, _, bench = official
    assert bench.info["source"]["format"] == "nb201-pth"
    assert bench.info["source"]["name"] == path.name
    assert bench.info["extra"]["evaluated_cells"] == len(INDICES)
    assert bench.info["extra"]["hps"] == ["12", "200"]


def test_truncated_pth_is_refused(official: tuple, tmp_path: Path) -> None:
    path, _, _ = official
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SourceFileError, match=r"truncated, damaged or not a \.pth"):
        import_nb201(cut, tmp_path / "cache")
    assert not (tmp_path / "cache" / "nb201").exists()


def test_foreign_torch_files_are_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "model.pth")
    with pytest.raises(SourceFileError, match="not a NAS-Bench-201 benchmark"):
        import_nb201(tmp_path / "model.pth", tmp_path / "cache")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(SourceFileError, match=r"truncated, damaged or not a \.pth"):
        import_nb201(tmp_path / "text.pth", tmp_path / "cache")


def test_reordered_meta_archs_are_refused(tmp_path: Path) -> None:
    path = write_official_pth(tmp_path / "a.pth", [5])
    data = torch.load(path, weights_only=True)
    data["meta_archs"][0], data["meta_archs"][1] = data["meta_archs"][1], data["meta_archs"][0]
    torch.save(data, path)
    with pytest.raises(SourceFileError, match="not an official NAS-Bench-201 file"):
        import_nb201(path, tmp_path / "cache")


def test_objects_the_safe_loader_refuses_need_trust(tmp_path: Path) -> None:
    path = write_official_pth(tmp_path / "b.pth", [5], datasets=("cifar10",))
    data = torch.load(path, weights_only=True)
    # numpy scalars are what older official files may hold; torch's safe loader refuses them
    trials = data["arch2infos"][5]["full"]["all_results"]
    trials[next(iter(trials))]["params"] = np.float64(0.5)
    torch.save(data, path)
    with pytest.raises(SourceFileError, match="--trust-pickle"):
        import_nb201(path, tmp_path / "cache")
    bench = NB201Benchmark.load(import_nb201(path, tmp_path / "cache", trust_pickle=True))
    assert bench.query(NB201Genotype.from_index(5), "cifar10/ori-test/accuracy@200") > 0
