"""Per-method protocols (``--preset paper``): every shipped file loads and names only config keys
and method options that exist; every registered method has a protocol for every space it runs on
(an adaptation says so); a sample of values matches the reference code's numbers (the research
notes in docs/protocol-sources/); ``paper`` and ``common`` differ exactly by the protocol's keys;
bad files are errors naming the file and the key; and each method's ``paper`` protocol trains for
two epochs on tiny synthetic data."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from test_cli import nbh
from tiny import merged, tiny_data, tiny_settings, trajectory

from nasbench_harness import registry
from nasbench_harness.config import SearchConfig, build_config
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.options import DECLARED
from nasbench_harness.protocols import (
    PROTOCOL_DIR,
    check_method_options,
    load_protocol,
    protocol_json,
    read_protocol,
    section_for,
)
from nasbench_harness.spaces.catalog import SPACE_NAMES

SHIPPED = sorted(PROTOCOL_DIR.glob("*.yaml"))
ADAPTED = {  # (method, section) whose reference has no code for the space: the file says what it adapted
    **dict.fromkeys(
        [(m, s) for m in ("darts-es", "darts-ada", "rdarts-l2", "rdarts-dp") for s in ("nb201", "nb1shot1")], True
    ),
    **dict.fromkeys([(m, s) for m in ("fair-darts", "snas", "single-stage") for s in ("nb201", "nb1shot1")], True),
    **dict.fromkeys([("beta-darts", "nb1shot1"), ("drnas", "nb1shot1"), ("sp-darts", "nb1shot1")], True),
    **dict.fromkeys([("pc-darts", "nb201"), ("darts-minus", "nb201")], True),
}


def runs_on(method: str) -> list[str]:
    """The spaces ``method`` runs on (its components' ``check_space``)."""
    spaces = []
    for space in SPACE_NAMES:
        try:
            registry.make_method(method).check_space(space)
        except ConfigError:
            continue
        spaces.append(space)
    return spaces


def config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every leaf key of ``model`` as a user writes it after ``--set``."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from config_keys(annotation, f"{prefix}{name}.")
        else:
            yield prefix + name


def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config dict with dotted keys (``method_options`` flattened one level too)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


# -- the shipped files -----------------------------------------------------------------------


def test_one_file_per_registered_method() -> None:
    assert sorted(p.stem for p in SHIPPED) == sorted(registry.METHODS)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_file_loads_and_names_only_existing_keys(path: Path) -> None:
    protocol = read_protocol(path)
    check_method_options(protocol)  # options class, grid points, and the method runs on the section's spaces
    known = set(config_keys(SearchConfig))
    options = DECLARED[protocol.method].model_fields
    for section, space in protocol.spaces.items():
        for entry in space.entries:
            group, _, name = entry.key.partition(".")
            assert (name in options) if group == "method_options" else (entry.key in known), (section, entry.key)
            repo = entry.source.split(" ", 1)[0]
            assert repo in protocol.references, f"{path.name}: {entry.key}: {repo} is not in references"
        for remark in [*space.not_expressible, *space.notes]:
            assert remark.source.split(" ", 1)[0] in protocol.references


@pytest.mark.parametrize("method", sorted(registry.METHODS))
def test_every_method_has_a_protocol_for_every_space_it_runs_on(method: str) -> None:
    protocol = load_protocol(method)
    for space in runs_on(method):
        section = section_for(protocol, space)
        assert section is not None, f"{method} runs on {space} but its protocol has no section for it"
        adapted = protocol.spaces[section].adapted_from
        # a space without a reference run is never silently the common protocol: the file says what it adapted
        assert bool(adapted) == ADAPTED.get((method, section), False), (method, section, adapted)
    assert set(protocol.spaces) <= {"nb201", "nb1shot1"}


# -- values against the sources' numbers -----------------------------------------------------


def paper(method: str, space: str = "nb201", **overrides: Any) -> SearchConfig:
    return build_config("paper", {"method": method, "space": space, **overrides})


@pytest.mark.parametrize("space", ["nb201", "nb1shot1"])
def test_rdarts_l2_records_the_weight_decay_grid_and_rdarts_runs_second_order(space: str) -> None:
    (entry,) = [e for e in load_protocol("rdarts-l2").spaces[space].entries if e.key == "method_options.weight_decay"]
    assert entry.grid == [0.0003, 0.0009, 0.0027, 0.0081, 0.0243] and entry.value == 0.0027
    assert "automl/RobustDARTS@3dec3fe scripts/start_search.sh:5" in entry.source
    concrete = "nb201" if space == "nb201" else "nb1shot1-2"
    for method in ("darts-es", "darts-ada", "rdarts-l2", "rdarts-dp"):
        config = paper(method, concrete)
        assert config.method_options["order"] == 2 and not config.optim.nesterov and config.batch_size == 64
    assert paper("darts-ada").method_options["wd_factor"] == 10 and paper("darts-ada").optim.weight_decay == 3e-4


@pytest.mark.parametrize("method", ["sdarts-rs", "sdarts-adv", "beta-darts", "drnas"])
def test_the_100_epoch_nb201_protocols_use_wd_3e4_without_nesterov(method: str) -> None:
    config = paper(method)
    assert (config.epochs, config.optim.weight_decay, config.optim.nesterov, config.batch_size) == (
        100,
        3e-4,
        False,
        64,
    )
    assert (config.optim.lr, config.optim.lr_min, config.arch_optim.lr) == (0.025, 0.001, 3e-4)


def test_sampled_values_match_the_sources() -> None:
    pc = paper("pc-darts")
    assert (pc.arch_optim.lr, pc.batch_size, pc.optim.lr, pc.optim.lr_min) == (6e-4, 256, 0.1, 0.0)
    pc1 = paper("pc-darts", "nb1shot1-1")  # the NB-1Shot1 authors' port kept DARTS's settings
    assert (pc1.arch_optim.lr, pc1.batch_size, pc1.epochs) == (3e-4, 96, 100)
    sp = paper("sp-darts")
    assert (sp.optim.lr, sp.optim.lr_min, sp.batch_size, sp.optim.weight_decay) == (0.05, 0.05, 256, 5e-4)
    assert sp.arch_optim.weight_decay == 0 and sp.optim.nesterov and sp.model.bn_track_running_stats
    fair = paper("fair-darts")
    assert (fair.optim.lr, fair.batch_size, fair.arch_optim.lr, fair.arch_optim.betas) == (
        0.005,
        128,
        3e-3,
        (0.9, 0.999),
    )
    assert paper("gdas").epochs == 250 and paper("rsws").epochs == 250 and paper("snas").epochs == 150
    assert paper("gdas", "nb1shot1-1").method_options["tau_min"] == 1.0
    assert paper("rsws", "nb1shot1-3").optim.grad_clip == 0.25
    assert paper("setn").optim.grad_clip is None and paper("setn").method_options["select_num"] == 100
    enas = paper("enas")
    assert (enas.epochs, enas.batch_size, enas.optim.lr, enas.optim.weight_decay) == (250, 128, 0.05, 0.00025)
    assert enas.method_options["controller_train_steps"] * enas.method_options["controller_num_aggregate"] == 1000
    assert paper("beta-darts").method_options["lambda_max"] == 50.0


@pytest.mark.parametrize("method", ["darts", "darts-2nd", "gdas", "pc-darts", "sdarts-rs", "rsws"])
def test_nb1shot1_trains_with_plain_momentum(method: str) -> None:
    for space in ("nb1shot1-1", "nb1shot1-2", "nb1shot1-3"):
        config = paper(method, space)
        assert config.optim.nesterov is False and config.optim.momentum == 0.9 and config.model.num_cells == 9
    assert build_config("common", {"method": method, "space": "nb1shot1-1"}).optim.nesterov is True


@pytest.mark.parametrize("method", sorted(registry.METHODS))
def test_paper_and_common_differ_exactly_by_the_protocols_keys(method: str) -> None:
    protocol = load_protocol(method)
    for space in runs_on(method):
        section = section_for(protocol, space)
        assert section is not None
        values = {"method": method, "space": space}
        got, common = build_config("paper", values), build_config("common", values)
        assert common.protocol is None and got.protocol == protocol.provenance(section)
        assert got.protocol.endswith(protocol.sha256[:12]) and got.preset == "paper"
        a, c = flat(got.to_dict()), flat(common.to_dict())
        differs = {k for k in a.keys() | c.keys() if a.get(k) != c.get(k)} - {"preset", "protocol"}
        wanted = {k for k, v in protocol.spaces[section].values().items() if c.get(k, object()) != v}
        assert differs == wanted, (method, space)
        assert all(a[k] == v for k, v in protocol.spaces[section].values().items())


def test_darts_paper_on_nb201_is_the_common_protocol() -> None:
    """NB201's table ran its DARTS under the setting the common protocol is: they coincide."""
    a, c = flat(paper("darts").to_dict()), flat(build_config("common").to_dict())
    assert {k for k in a.keys() | c.keys() if a.get(k) != c.get(k)} == {"preset", "protocol", "method_options.order"}


def test_overrides_and_suite_options_win_over_the_protocol() -> None:
    config = paper("rdarts-l2", epochs=3, method_options={"weight_decay": 0.0081}, optim={"lr": 0.01})
    assert (config.epochs, config.method_options["weight_decay"], config.optim.lr) == (3, 0.0081, 0.01)
    assert config.method_options["order"] == 2  # the rest of the protocol stays


def test_a_method_without_a_protocol_for_a_space_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"darts-minus\.yaml has no protocol for nb1shot1-1.*--preset common"):
        paper("darts-minus", "nb1shot1-1")


def test_protocol_json_has_the_config_keys() -> None:
    data = protocol_json(load_protocol("sdarts-rs"))
    assert data["spaces"]["nb201"]["protocol"]["epochs"] == {
        "value": 100,
        "source": "xiangning-chen/SmoothDARTS@d3dbfed nasbench201/train_search.py:41",
    }
    assert data["spaces"]["nb1shot1"]["applies_to"] == ["nb1shot1-1", "nb1shot1-2", "nb1shot1-3"]


def test_nbh_methods_prints_the_protocol(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = nbh(capsys, monkeypatch, "methods", "rdarts-dp")
    assert code == 0, err
    assert "method_options.drop_prob" in out and "automl/RobustDARTS@3dec3fe src/search/args.py:49" in out
    assert "adapted from: R-DARTS was published on the DARTS space" in out
    assert "not expressible: Cutout (length 16)" in out
    code, out, err = nbh(capsys, monkeypatch, "methods", "pc-darts", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["spaces"]["nb201"]["protocol"]["arch_optim.lr"]["value"] == 6e-4
    assert data["spaces"]["nb201"]["not_expressible"][0]["source"].endswith("train_search.py:156-157")


# -- bad files -------------------------------------------------------------------------------

GOOD = """\
    method: darts
    references:
      a/b@0123abc: https://example.org/a/b
    spaces:
      nb201:
        entries:
          - {key: optim.lr, value: 0.05, source: "a/b@0123abc train.py:3"}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("key: optim.lr,", "key: optim.lrr,"), r"entry 'optim.lrr': unknown config key 'optim.lrr'"),
        (("value: 0.05", "value: -1"), r"entry 'optim.lr' = -1: Input should be greater than 0"),
        ((', source: "a/b@0123abc train.py:3"', ""), r"entry 'optim.lr': source: missing"),
        (('source: "a/b@0123abc train.py:3"', 'source: "the paper"'), r"entry 'optim.lr': source 'the paper' is not"),
        (("key: optim.lr,", "key: tracking.eigen_every,"), r"tracking is not part of a search protocol"),
        (("key: optim.lr, value: 0.05", "key: model.num_cells, value: 9"), r"model.num_cells applies to nb1shot1"),
        (("key: optim.lr,", "key: optim,"), r"entry 'optim': optim is a section"),
        (("value: 0.05,", "value: 0.05, grid: [0.1],"), r"value 0.05 is not in its grid"),
        (("method: darts", "method: gdas"), r"method is 'gdas', but the file is named for 'darts'"),
        (("  nb201:", "  darts-space:"), r"spaces.darts-space: unknown space"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = textwrap.dedent(GOOD)
    assert change[0] in text
    path = tmp_path / "darts.yaml"
    path.write_text(text.replace(*change), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        read_protocol(path)
    assert str(path) in str(caught.value)


def test_a_bad_method_option_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "darts.yaml"
    text = textwrap.dedent(GOOD).replace("key: optim.lr, value: 0.05", "key: method_options.unrolled, value: true")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"darts\.yaml: spaces\.nb201: bad method_options for darts"):
        check_method_options(read_protocol(path))


def test_a_duplicate_entry_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "darts.yaml"
    entry = '      - {key: optim.lr, value: 0.05, source: "a/b@0123abc train.py:3"}\n'
    path.write_text(textwrap.dedent(GOOD) + entry, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"entry 'optim.lr' appears twice"):
        read_protocol(path)


# -- two epochs of each method's paper protocol ----------------------------------------------

CASES = [(m, s) for m in sorted(registry.METHODS) for s in ("nb201", "nb1shot1-1") if s in runs_on(m)]
SMALLER = {
    "rsws": {"n_candidates": 4},
    "setn": {"select_num": 4},
    "enas": {"controller_train_steps": 2, "controller_num_aggregate": 2, "num_samples": 2, "final_num_samples": 2},
}
"""Method options shrunk for the tiny run (rsws ranks 100 or 1000 candidates an epoch, SETN 100,
ENAS trains its controller on 50 x 20 samples)."""


@pytest.mark.parametrize(("method", "space"), CASES, ids=[f"{m}-{s}" for m, s in CASES])
def test_two_epochs_of_the_paper_protocol(method: str, space: str, tmp_path: Path, request: Any) -> None:
    """The protocol with the model and data shrunk (tiny channels and cells, batch 16, 2 epochs)
    but its optimiser keys and method options kept."""
    from nasbench_harness.methods.engine.run import run_search

    bench = request.getfixturevalue("synthetic_nb201" if space == "nb201" else "small_nb101")
    tiny = merged(tiny_settings(space), {"method": method, "method_options": SMALLER.get(method, {})})
    config = build_config("paper", tiny)
    full = paper(method, space)
    assert config.optim == full.optim and config.arch_optim == full.arch_optim and config.protocol == full.protocol
    assert {k: v for k, v in config.method_options.items() if k not in SMALLER.get(method, {})} == {
        k: v for k, v in full.method_options.items() if k not in SMALLER.get(method, {})
    }
    result = run_search(config, tmp_path / "run", device="cpu", data=tiny_data(), bench=bench)
    assert result.status == "finished" and len(trajectory(result)) == 2
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["protocol"] == full.protocol and manifest["config"]["preset"] == "paper"


def test_a_paper_run_from_before_protocols_resumes_as_common(tmp_path: Path, synthetic_nb201: Any) -> None:
    """A run written before per-method protocols has ``preset: paper`` and no ``protocol``: it ran
    the shared protocol, today's ``common``, and resumes under that name, not under ``paper``."""
    from tiny import tiny_config, tiny_search

    from nasbench_harness.errors import RunDirError

    config = tiny_config(epochs=1)
    result = tiny_search(tmp_path, synthetic_nb201, config=config)
    manifest_file = result.path / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["config"]["preset"] = "paper"
    del manifest["config"]["protocol"]
    manifest_file.write_text(json.dumps(manifest))
    again = tiny_search(tmp_path, synthetic_nb201, config=config.model_copy(update={"preset": "common"}))
    assert again.status == "finished" and again.epochs_completed == 1
    today = config.model_copy(update={"preset": "paper", "protocol": "darts/nb201 darts.yaml sha256:0"})
    with pytest.raises(RunDirError, match=r"differs in .*preset"):
        tiny_search(tmp_path, synthetic_nb201, config=today)
