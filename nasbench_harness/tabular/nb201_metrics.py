"""Every NAS-Bench-201 metric by name, and what each (dataset, split, fidelity) means.

A metric key names everything that changes the number::

    <dataset>/<split>/<quantity>@<hp>[:e<epoch>][#<trial>]   e.g. cifar10-valid/x-valid/accuracy@200
    <dataset>/<quantity>@<hp>[#<trial>]                       e.g. cifar100/params@200

``hp`` is the training schedule (``200`` or ``12`` epochs, the final epoch unless ``:e<k>`` names
an earlier one: the number after k epochs of that schedule, as the NATS-Bench files record it;
``:e<hp>`` is the final epoch, the key without it); no ``#trial`` means the mean over the
training seeds, ``#k`` the k-th seed in ascending seed order.
The shorthand (``dataset="cifar10", split="valid"``) used in papers is resolved by
:func:`resolve_metric`, following the NB201 convention: the search sees validation numbers,
test numbers are for analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nasbench_harness.errors import UnknownMetricError

DATASETS: dict[str, str] = {
    "cifar10-valid": "CIFAR-10, network trained on the 25k 'train' half of the CIFAR-10 training set",
    "cifar10": "CIFAR-10, network trained on all 50k CIFAR-10 training images",
    "cifar100": "CIFAR-100, network trained on the 50k CIFAR-100 training set",
    "ImageNet16-120": "ImageNet16-120 (16x16 px, 120 classes), network trained on its 151.7k training set",
}

SPLITS: dict[str, dict[str, str]] = {
    "cifar10-valid": {
        "train": "the 25k training half it was trained on",
        "x-valid": "the other 25k half of the CIFAR-10 training set (NB201's validation set)",
        "ori-test": "the 10k CIFAR-10 test set",
    },
    "cifar10": {
        "train": "the 50k training set it was trained on",
        "ori-test": "the 10k CIFAR-10 test set",
    },
    "cifar100": {
        "train": "the 50k training set it was trained on",
        "x-valid": "the 5k validation half of the CIFAR-100 test set",
        "x-test": "the other 5k half of the CIFAR-100 test set",
        "ori-test": "the full 10k CIFAR-100 test set (x-valid + x-test)",
    },
    "ImageNet16-120": {
        "train": "the training set it was trained on",
        "x-valid": "the 3k validation half of the ImageNet16-120 test set",
        "x-test": "the other 3k half of the ImageNet16-120 test set",
        "ori-test": "the full 6k ImageNet16-120 test set (x-valid + x-test)",
    },
}

HPS: dict[str, str] = {
    "200": "200-epoch schedule (cosine learning rate 0.1 -> 0), final epoch",
    "12": "12-epoch schedule (cosine learning rate 0.1 -> 0 within 12 epochs), final epoch",
}

SPLIT_QUANTITIES: dict[str, str] = {
    "accuracy": "top-1 accuracy in %",
    "loss": "cross-entropy loss",
    "time": "time in s summed over all epochs",
}
DATASET_QUANTITIES: dict[str, str] = {
    "params": "parameters in millions",
    "flops": "FLOPs in millions",
    "latency": "latency in s for a batch (as the benchmark measured it)",
    "n_seeds": "number of training seeds behind the mean",
    "seed": "the random seed of trial #k",
}

_KEY_RE = re.compile(
    r"(?P<dataset>[^/@#]+)(?:/(?P<split>[^/@#]+))?/(?P<quantity>[^/@#]+)@(?P<hp>[^/@#:]+)"
    r"(?::e(?P<epoch>\d+))?(?:#(?P<trial>\d+))?"
)
EPOCH_QUANTITIES = ("accuracy", "loss")
"""Per-split quantities that have a value after every epoch (``:e<k>``)."""
_DATASET_ALIASES = {name.lower().replace("_", "-"): name for name in DATASETS} | {"imagenet": "ImageNet16-120"}


@dataclass(frozen=True, slots=True)
class MetricKey:
    """One NB201 number per cell: dataset, split (None for per-network costs), quantity, hp, trial,
    and the epoch of the schedule it was measured after (None: the final epoch)."""

    dataset: str
    split: str | None
    quantity: str
    hp: str
    trial: int | None = None
    epoch: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise UnknownMetricError(f"unknown NB201 dataset {self.dataset!r}; datasets are {', '.join(DATASETS)}")
        if self.hp not in HPS:
            raise UnknownMetricError(f"unknown NB201 fidelity hp={self.hp!r}; use one of {', '.join(HPS)}")
        if self.split is None:
            if self.quantity not in DATASET_QUANTITIES:
                raise UnknownMetricError(
                    f"{self.quantity!r} needs a split ({self.dataset}/<split>/{self.quantity}@{self.hp}) "
                    "or is unknown; "
                    f"per-network quantities are {', '.join(DATASET_QUANTITIES)}"
                )
        else:
            if self.split not in SPLITS[self.dataset]:
                raise UnknownMetricError(
                    f"dataset {self.dataset} has no split {self.split!r}; "
                    f"its splits are {', '.join(SPLITS[self.dataset])}"
                )
            if self.quantity not in SPLIT_QUANTITIES:
                raise UnknownMetricError(
                    f"unknown per-split quantity {self.quantity!r}; use one of {', '.join(SPLIT_QUANTITIES)}"
                )
        if self.trial is not None and (type(self.trial) is not int or self.trial < 0):
            raise UnknownMetricError(f"a trial number is an int >= 0, got {self.trial!r}")
        if self.epoch is not None:
            self._check_epoch()

    def _check_epoch(self) -> None:
        epochs = int(self.hp)
        if self.split is None or self.quantity not in EPOCH_QUANTITIES:
            raise UnknownMetricError(
                f"an epoch (:e{self.epoch}) applies to a split's {' or '.join(EPOCH_QUANTITIES)}, "
                f"not to {self.quantity}"
            )
        if type(self.epoch) is not int or not 1 <= self.epoch <= epochs:
            raise UnknownMetricError(
                f"epoch :e{self.epoch} is outside the {epochs}-epoch schedule; use :e1..:e{epochs}"
            )
        if self.epoch == epochs:  # the final epoch is the key without an epoch: one name per number
            object.__setattr__(self, "epoch", None)

    @classmethod
    def parse(cls, text: str) -> MetricKey:
        """Parse ``dataset/split/quantity@hp[#trial]`` or ``dataset/quantity@hp[#trial]``."""
        match = _KEY_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise UnknownMetricError(
                f"malformed NB201 metric {text!r}; expected <dataset>/<split>/<quantity>@<hp>[:e<epoch>][#trial] "
                "such as cifar10-valid/x-valid/accuracy@200 or cifar10-valid/x-valid/accuracy@200:e12, "
                "or <dataset>/<quantity>@<hp> such as cifar100/params@200"
            )
        trial, epoch = match["trial"], match["epoch"]
        return cls(
            match["dataset"],
            match["split"],
            match["quantity"],
            match["hp"],
            None if trial is None else int(trial),
            None if epoch is None else int(epoch),
        )

    def __str__(self) -> str:
        middle = f"/{self.split}" if self.split is not None else ""
        suffix = f"#{self.trial}" if self.trial is not None else ""
        epoch = f":e{self.epoch}" if self.epoch is not None else ""
        return f"{self.dataset}{middle}/{self.quantity}@{self.hp}{epoch}{suffix}"

    def with_trial(self, trial: int | None) -> MetricKey:
        """The same metric for one trial (or the seed mean when ``trial`` is None)."""
        return MetricKey(self.dataset, self.split, self.quantity, self.hp, trial, self.epoch)

    def at_epoch(self, epoch: int | None) -> MetricKey:
        """The same metric after ``epoch`` epochs of its schedule (None: the final epoch)."""
        return MetricKey(self.dataset, self.split, self.quantity, self.hp, self.trial, epoch)

    @property
    def higher_is_better(self) -> bool:
        """True for accuracies: the quantity an optimum and a regret are defined for."""
        return self.quantity == "accuracy"

    def meaning(self) -> str:
        """A sentence saying exactly what the number is."""
        if self.split is None:
            what = DATASET_QUANTITIES[self.quantity]
            where = DATASETS[self.dataset]
        else:
            what = f"{SPLIT_QUANTITIES[self.quantity]} on {SPLITS[self.dataset][self.split]}"
            where = DATASETS[self.dataset]
        trial = "mean over training seeds" if self.trial is None else f"trial #{self.trial} (seeds in ascending order)"
        if self.quantity in ("n_seeds", "seed"):
            trial = "" if self.trial is None else f"trial #{self.trial}"
        schedule = HPS[self.hp]
        if self.epoch is not None:
            schedule = schedule.replace("final epoch", f"after epoch {self.epoch} of {self.hp}")
        parts = [what, where, schedule] + ([trial] if trial else [])
        return "; ".join(parts)


def canonical_dataset(name: str) -> str:
    """Map a dataset name in any common spelling (``imagenet16_120``) to the official one."""
    key = name.lower().replace("_", "-") if isinstance(name, str) else ""
    if key not in _DATASET_ALIASES:
        raise UnknownMetricError(
            f"unknown NB201 dataset {name!r}; use cifar10, cifar100 or ImageNet16-120 "
            "(or the training settings cifar10-valid / cifar10)"
        )
    return _DATASET_ALIASES[key]


def resolve_metric(dataset: str, split: str, hp: int | str = 200, quantity: str = "accuracy") -> MetricKey:
    """Turn the papers' shorthand into a metric key.

    ``split`` is ``valid``/``test``/``train`` or an official split name. For ``cifar10``:
    ``valid`` = cifar10-valid x-valid (the search's validation number) and ``test`` = cifar10
    ori-test (the network trained on all 50k images). For ``cifar100`` and ``ImageNet16-120``:
    ``valid`` = x-valid and ``test`` = x-test.
    """
    ds = canonical_dataset(dataset)
    hp = str(hp)
    if split == "valid":
        ds = "cifar10-valid" if ds == "cifar10" else ds
        split = "x-valid"
    elif split == "test":
        split = "ori-test" if ds in ("cifar10", "cifar10-valid") else "x-test"
    return MetricKey(ds, split, quantity, hp)


def search_metrics(dataset: str, hp: int | str = 200) -> tuple[MetricKey, MetricKey]:
    """(validation, test) accuracy a search on ``dataset`` is scored with."""
    return resolve_metric(dataset, "valid", hp), resolve_metric(dataset, "test", hp)


_QUANTITY_ORDER = [*SPLIT_QUANTITIES, *DATASET_QUANTITIES]


def metric_sort_key(key: MetricKey) -> tuple[int, int, int, int, int, int]:
    """Stable column order: hp 200 first, then final-epoch numbers before per-epoch ones (by epoch),
    dataset, split (costs last), quantity, mean before trials."""
    splits = list(SPLITS[key.dataset])
    return (
        list(HPS).index(key.hp),
        0 if key.epoch is None else key.epoch,
        list(DATASETS).index(key.dataset),
        len(splits) if key.split is None else splits.index(key.split),
        _QUANTITY_ORDER.index(key.quantity),
        -1 if key.trial is None else key.trial,
    )
