"""Metric keys: every (dataset, split, fidelity) has one name, and the shorthand maps explicitly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasbench_harness.errors import UnknownMetricError
from nasbench_harness.tabular.nb201_metrics import (
    DATASET_QUANTITIES,
    DATASETS,
    HPS,
    SPLIT_QUANTITIES,
    SPLITS,
    MetricKey,
    canonical_dataset,
    metric_sort_key,
    resolve_metric,
    search_metrics,
)


@st.composite
def metric_keys(draw: st.DrawFn) -> MetricKey:
    dataset = draw(st.sampled_from(list(DATASETS)))
    if draw(st.booleans()):
        split, quantity = draw(st.sampled_from(list(SPLITS[dataset]))), draw(st.sampled_from(list(SPLIT_QUANTITIES)))
    else:
        split, quantity = None, draw(st.sampled_from(list(DATASET_QUANTITIES)))
    trial = draw(st.none() | st.integers(0, 2))
    return MetricKey(dataset, split, quantity, draw(st.sampled_from(list(HPS))), trial)


@given(metric_keys())
def test_key_round_trip_and_meaning(key: MetricKey) -> None:
    assert MetricKey.parse(str(key)) == key
    meaning = key.meaning()
    assert HPS[key.hp] in meaning and DATASETS[key.dataset] in meaning
    assert metric_sort_key(key) == metric_sort_key(MetricKey.parse(str(key)))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("cifar10/x-valid/accuracy@200", "cifar10 has no split 'x-valid'"),
        ("cifar10-valid/x-valid/accuracy@100", "hp='100'"),
        ("cifar10-valid/x-valid/acc@200", "quantity 'acc'"),
        ("imagenet/x-valid/accuracy@200", "unknown NB201 dataset 'imagenet'"),
        ("cifar100/accuracy@200", "needs a split"),
        ("cifar100/x-test/accuracy", "malformed NB201 metric"),
        ("cifar100/x-test/accuracy@200#a", "malformed NB201 metric"),
    ],
)
def test_bad_keys_explain_themselves(text: str, match: str) -> None:
    with pytest.raises(UnknownMetricError, match=match):
        MetricKey.parse(text)


def test_shorthand_follows_the_nb201_convention() -> None:
    assert str(resolve_metric("cifar10", "valid")) == "cifar10-valid/x-valid/accuracy@200"
    assert str(resolve_metric("cifar10", "test")) == "cifar10/ori-test/accuracy@200"
    assert str(resolve_metric("cifar10-valid", "test", hp=12)) == "cifar10-valid/ori-test/accuracy@12"
    assert str(resolve_metric("cifar100", "valid")) == "cifar100/x-valid/accuracy@200"
    assert str(resolve_metric("imagenet16_120", "test", 12)) == "ImageNet16-120/x-test/accuracy@12"
    assert str(resolve_metric("cifar100", "ori-test", quantity="loss")) == "cifar100/ori-test/loss@200"
    valid, test = search_metrics("ImageNet16-120")
    assert (valid.split, test.split) == ("x-valid", "x-test")


def test_dataset_spellings() -> None:
    assert canonical_dataset("IMAGENET16-120") == "ImageNet16-120"
    assert canonical_dataset("CIFAR10") == "cifar10"
    with pytest.raises(UnknownMetricError, match="use cifar10, cifar100 or ImageNet16-120"):
        canonical_dataset("svhn")


def test_only_accuracies_have_an_optimum_direction() -> None:
    assert MetricKey.parse("cifar10/ori-test/accuracy@200").higher_is_better
    assert not MetricKey.parse("cifar10/ori-test/loss@200").higher_is_better
