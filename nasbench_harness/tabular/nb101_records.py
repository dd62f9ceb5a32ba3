"""Decode (and, for test fixtures, encode) the records of the official NAS-Bench-101 tfrecord files.

Each TFRecord payload is UTF-8 JSON: ``[module_hash, epochs, raw_adjacency, raw_operations,
raw_metrics]``, where ``raw_metrics`` is base64 of a serialized ``nasbench.ModelMetrics`` proto2
message. The message classes are built at runtime from a descriptor, so neither TensorFlow nor
protoc nor a generated ``_pb2`` module is needed. Only the record format is checked here; whether
the graph is a valid NB101 cell is checked by ``nasbench_harness.spaces.nb101``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from nasbench_harness.errors import SourceFileError
from nasbench_harness.tabular.tfrecord import TFRecord, read_records

_HASH = re.compile(r"[0-9a-f]{32}")
_FIX = "the file is not an NB101 tfrecord or is damaged; download it again"
_JSON_TYPES = {str: "string", int: "integer", float: "number", list: "array", dict: "object", type(None): "null"}
_EVALUATION_FIELDS = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One ``EvaluationData`` entry: epoch, cumulative training time (s) and accuracies (fractions 0-1).

    A field missing from the record is NaN.
    """

    current_epoch: float
    training_time: float
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float


@dataclass(frozen=True, slots=True)
class NB101Record:
    """One training run of one cell: identity, graph strings and the decoded ``ModelMetrics``.

    ``adjacency`` is the V x V matrix as '0'/'1' characters row-major; ``total_time`` is in s;
    ``trainable_parameters`` and ``total_time`` are None when the record does not set them.
    """

    module_hash: str
    epochs: int
    adjacency: str
    ops: tuple[str, ...]
    evaluations: tuple[Evaluation, ...]
    trainable_parameters: int | None
    total_time: float | None


@functools.cache
def _message_classes() -> tuple[Any, Any]:
    """The ``ModelMetrics`` and ``EvaluationData`` classes, built once from a descriptor."""
    fdp = descriptor_pb2.FileDescriptorProto(name="nasbench_harness/nb101_model_metrics.proto", package="nasbench")
    fdp.syntax = "proto2"
    field = descriptor_pb2.FieldDescriptorProto
    optional = field.LABEL_OPTIONAL

    metrics = fdp.message_type.add(name="ModelMetrics")
    metrics.field.add(
        name="evaluation_data",
        number=1,
        label=field.LABEL_REPEATED,
        type=field.TYPE_MESSAGE,
        type_name=".nasbench.EvaluationData",
    )
    metrics.field.add(name="trainable_parameters", number=2, label=optional, type=field.TYPE_INT32)
    metrics.field.add(name="total_time", number=3, label=optional, type=field.TYPE_DOUBLE)

    evaluation = fdp.message_type.add(name="EvaluationData")
    for number, name in enumerate(_EVALUATION_FIELDS, start=1):
        evaluation.field.add(name=name, number=number, label=optional, type=field.TYPE_DOUBLE)
    evaluation.field.add(name="checkpoint_path", number=6, label=optional, type=field.TYPE_STRING)

    # A private pool: the default one may already hold another "nasbench" package (e.g. the official API's).
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.EvaluationData")),
    )


def parse_record(record: TFRecord, path: str | os.PathLike[str]) -> NB101Record:
    """Decode one NB101 record; ``path`` is only used in error messages."""
    try:
        # decoded explicitly: json.loads(bytes) would also accept UTF-16/32, which the format never uses
        fields = json.loads(record.payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        _fail(record, path, f"payload is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    except json.JSONDecodeError as exc:
        _fail(record, path, f"payload is not valid JSON ({exc.msg} at character {exc.pos})")
    if not isinstance(fields, list) or len(fields) != 5:
        what = f"a {len(fields)}-element array" if isinstance(fields, list) else f"a JSON {_json_type(fields)}"
        _fail(record, path, f"payload is {what}; expected [module_hash, epochs, adjacency, operations, metrics]")
    module_hash, epochs, adjacency, raw_ops, raw_metrics = fields
    for name, value, kind in (
        ("module_hash", module_hash, str),
        ("epochs", epochs, int),
        ("adjacency", adjacency, str),
        ("operations", raw_ops, str),
        ("metrics", raw_metrics, str),
    ):
        # bool is a subclass of int, but JSON true/false is never a valid epoch count
        if not isinstance(value, kind) or isinstance(value, bool):
            _fail(record, path, f"{name} is a JSON {_json_type(value)}; expected a JSON {_json_type(kind())}")
    if not _HASH.fullmatch(module_hash):
        _fail(record, path, f"module_hash {module_hash!r} is not 32 lowercase hex characters")
    ops = tuple(raw_ops.split(","))
    n = len(ops)
    if len(adjacency) != n * n or not set(adjacency) <= {"0", "1"}:
        _fail(
            record,
            path,
            f"adjacency {adjacency!r} must hold {n}x{n}={n * n} characters 0/1 for the {n} operations {raw_ops!r}",
        )
    try:
        blob = base64.b64decode(raw_metrics, validate=True)
    except (binascii.Error, ValueError) as exc:
        _fail(record, path, f"metrics are not valid base64 ({exc})")
    model_metrics_cls, _ = _message_classes()
    metrics = model_metrics_cls()
    try:
        metrics.ParseFromString(blob)
    except DecodeError as exc:
        _fail(record, path, f"metrics are not a valid ModelMetrics protobuf ({exc})")
    return NB101Record(
        module_hash=module_hash,
        epochs=epochs,
        adjacency=adjacency,
        ops=ops,
        evaluations=tuple(_evaluation(e) for e in metrics.evaluation_data),
        trainable_parameters=metrics.trainable_parameters if metrics.HasField("trainable_parameters") else None,
        total_time=metrics.total_time if metrics.HasField("total_time") else None,
    )


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _evaluation(message: Any) -> Evaluation:
    has = message.HasField
    nan = math.nan
    return Evaluation(
        message.current_epoch if has("current_epoch") else nan,
        message.training_time if has("training_time") else nan,
        message.train_accuracy if has("train_accuracy") else nan,
        message.validation_accuracy if has("validation_accuracy") else nan,
        message.test_accuracy if has("test_accuracy") else nan,
    )


def _fail(record: TFRecord, path: str | os.PathLike[str], problem: str) -> NoReturn:
    raise SourceFileError(f"{path}, record {record.number} (byte offset {record.offset}): {problem}; {_FIX}")


def iter_nb101_records(path: str | os.PathLike[str]) -> Iterator[NB101Record]:
    """Every record of an NB101 tfrecord file, decoded, in file order."""
    for record in read_records(path):
        yield parse_record(record, path)


def encode_record(
    module_hash: str,
    epochs: int,
    adjacency: str,
    ops: Sequence[str],
    evaluations: Sequence[Evaluation],
    trainable_parameters: int | None,
    total_time: float | None = None,
) -> bytes:
    """One record payload in the official format (for building test files); NaN fields are left unset."""
    model_metrics_cls, _ = _message_classes()
    metrics = model_metrics_cls()
    for evaluation in evaluations:
        message = metrics.evaluation_data.add()
        for name in _EVALUATION_FIELDS:
            value = getattr(evaluation, name)
            if not math.isnan(value):
                setattr(message, name, value)
    if trainable_parameters is not None:
        metrics.trainable_parameters = trainable_parameters
    if total_time is not None:
        metrics.total_time = total_time
    raw_metrics = base64.b64encode(metrics.SerializeToString()).decode("ascii")
    return json.dumps([module_hash, epochs, adjacency, ",".join(ops), raw_metrics]).encode("utf-8")
