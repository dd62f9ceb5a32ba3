"""TFRecord framing and NB101 record decoding, on small files built here and on the real file."""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from pathlib import Path

import crc32c
import pytest

from nasbench_harness.errors import SourceFileError
from nasbench_harness.tabular.nb101_records import (
    Evaluation,
    NB101Record,
    encode_record,
    iter_nb101_records,
    parse_record,
)
from nasbench_harness.tabular.tfrecord import TFRecord, masked_crc32c, read_records, write_records

REAL_FILE = "nasbench/nasbench_only108_nb1shot1.tfrecord"
PAYLOADS = [b"first", b"", b"third record payload", b"x" * 300]
HASH = "00010e19334eb9dcbe1fe61a98d524c2"
ADJACENCY = "0110000100000100000000000"  # 5 vertices, row-major
OPS = ("input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output")
EVALUATIONS = (
    Evaluation(0.0, 0.0, 0.1, 0.1, 0.1),
    Evaluation(54.0, 625.25, 0.5127, 0.4941, 0.4846),
    Evaluation(108.0, 1251.5, 1.0, 0.8991, 0.8966),
)


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _offsets(payloads: list[bytes]) -> list[int]:
    """Byte offset of each record: 8 length + 4 CRC + payload + 4 CRC per record."""
    out, offset = [], 0
    for p in payloads:
        out.append(offset)
        offset += 16 + len(p)
    return out


def _where(number: int, offset: int) -> str:
    return re.escape(f"record {number} (byte offset {offset})")


def _write(tmp_path: Path, payloads: list[bytes], name: str = "f.tfrecord") -> Path:
    path = tmp_path / name
    write_records(path, payloads)
    return path


def _flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


# ---------------------------------------------------------------- CRC32C


def test_crc32c_check_value() -> None:
    assert crc32c.crc32c(b"123456789") == 0xE3069283


def test_masked_crc32c_vectors() -> None:
    assert masked_crc32c(b"") == 0xA282EAD8  # crc32c(b"") is 0, so only the delta remains
    assert masked_crc32c(b"123456789") == _mask(0xE3069283) == 0xC78AB0E5
    assert masked_crc32c(b"first") == _mask(crc32c.crc32c(b"first"))


# ---------------------------------------------------------------- framing


def test_round_trip_payloads(tmp_path: Path) -> None:
    path = _write(tmp_path, PAYLOADS)
    records = list(read_records(path))
    assert [r.payload for r in records] == PAYLOADS
    assert [r.number for r in records] == list(range(len(PAYLOADS)))
    assert [r.offset for r in records] == _offsets(PAYLOADS)
    assert all(type(r.payload) is bytes for r in records)
    assert path.stat().st_size == sum(16 + len(p) for p in PAYLOADS)


def test_framing_layout(tmp_path: Path) -> None:
    data = _write(tmp_path, [b"abc"]).read_bytes()
    assert data[:8] == (3).to_bytes(8, "little")
    assert int.from_bytes(data[8:12], "little") == masked_crc32c(data[:8])
    assert data[12:15] == b"abc"
    assert int.from_bytes(data[15:19], "little") == masked_crc32c(b"abc")


@pytest.mark.parametrize(
    ("field_offset", "problem"),
    [
        (0, "length CRC mismatch"),  # length field
        (8, "length CRC mismatch"),  # length CRC
        (12, "payload CRC mismatch"),  # first payload byte
        (12 + len(PAYLOADS[2]), "payload CRC mismatch"),  # payload CRC
    ],
)
def test_flipped_byte_in_third_record(tmp_path: Path, field_offset: int, problem: str) -> None:
    path = _write(tmp_path, PAYLOADS)
    offset = _offsets(PAYLOADS)[2]
    _flip(path, offset + field_offset)
    reader = read_records(path)
    assert next(reader).payload == PAYLOADS[0]  # the records before the damage are still delivered
    assert next(reader).payload == PAYLOADS[1]
    with pytest.raises(SourceFileError, match=_where(2, offset) + f".*{problem}.*download it again"):
        next(reader)


def test_payload_crc_mismatch_reports_both_values(tmp_path: Path) -> None:
    path = _write(tmp_path, PAYLOADS)
    offset = _offsets(PAYLOADS)[1]
    _flip(path, offset + 12)  # record 1 has an empty payload: this is its payload CRC
    with pytest.raises(SourceFileError, match=r"payload CRC mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)"):
        list(read_records(path))


def test_message_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, PAYLOADS)
    _flip(path, _offsets(PAYLOADS)[1] + 8)
    with pytest.raises(SourceFileError, match=re.escape(str(path))):
        list(read_records(path))


def test_truncated_header(tmp_path: Path) -> None:
    path = _write(tmp_path, PAYLOADS)
    offset = _offsets(PAYLOADS)[2]
    _truncate(path, offset + 5)
    with pytest.raises(SourceFileError, match=_where(2, offset) + ".*truncated header: 5 trailing bytes"):
        list(read_records(path))


def test_truncated_payload(tmp_path: Path) -> None:
    path = _write(tmp_path, PAYLOADS)
    offset = _offsets(PAYLOADS)[2]
    _truncate(path, offset + 12 + 3)
    expected = f"truncated: record declares {len(PAYLOADS[2])} payload bytes but only 3 remain"
    with pytest.raises(SourceFileError, match=_where(2, offset) + ".*" + re.escape(expected)):
        list(read_records(path))


def test_truncated_payload_crc(tmp_path: Path) -> None:
    path = _write(tmp_path, PAYLOADS)
    offset = _offsets(PAYLOADS)[3]
    _truncate(path, path.stat().st_size - 2)
    with pytest.raises(SourceFileError, match=_where(3, offset) + ".*truncated"):
        list(read_records(path))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    with pytest.raises(SourceFileError, match="no records"):
        list(read_records(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError, match="cannot read"):
        list(read_records(tmp_path / "absent.tfrecord"))


# ---------------------------------------------------------------- NB101 records


def test_nb101_round_trip(tmp_path: Path) -> None:
    second = ("a" * 32, 36, "0100", ("input", "output"), EVALUATIONS[:2], None, None)
    path = _write(
        tmp_path,
        [
            encode_record(HASH, 108, ADJACENCY, OPS, EVALUATIONS, 3292298, 1251.5),
            encode_record(*second),
        ],
    )
    records = list(iter_nb101_records(path))
    assert records == [
        NB101Record(HASH, 108, ADJACENCY, OPS, EVALUATIONS, 3292298, 1251.5),
        NB101Record(*second),
    ]
    assert type(records[0].ops) is tuple
    assert type(records[0].evaluations) is tuple


def test_nb101_unset_evaluation_fields_are_nan(tmp_path: Path) -> None:
    partial = Evaluation(108.0, math.nan, 1.0, math.nan, 0.9)
    path = _write(tmp_path, [encode_record(HASH, 108, ADJACENCY, OPS, [partial], None)])
    (record,) = iter_nb101_records(path)
    (ev,) = record.evaluations
    assert (ev.current_epoch, ev.train_accuracy, ev.test_accuracy) == (108.0, 1.0, 0.9)
    assert math.isnan(ev.training_time)
    assert math.isnan(ev.validation_accuracy)
    assert record.trainable_parameters is None
    assert record.total_time is None


def test_encode_record_format() -> None:
    fields = json.loads(encode_record(HASH, 108, ADJACENCY, OPS, EVALUATIONS, 7))
    assert fields[:4] == [HASH, 108, ADJACENCY, ",".join(OPS)]
    assert base64.b64encode(base64.b64decode(fields[4], validate=True)).decode() == fields[4]


def test_parse_record_does_not_check_graph_semantics() -> None:
    # unknown op names and a lower-triangular matrix are the spec validator's business
    payload = encode_record(HASH, 4, "0010", ("foo", "bar"), [], None)
    record = parse_record(TFRecord(0, 0, payload), "x.tfrecord")
    assert record.ops == ("foo", "bar")
    assert record.adjacency == "0010"


def _raw(fields: list) -> bytes:
    return json.dumps(fields).encode()


def _metrics_b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


GOOD_METRICS = json.loads(encode_record(HASH, 108, ADJACENCY, OPS, EVALUATIONS, 7))[4]
GOOD = [HASH, 108, ADJACENCY, ",".join(OPS), GOOD_METRICS]

MALFORMED = {
    "utf8": (b'["\xff"]', "not valid UTF-8"),
    "json": (b'["abc", 108', "not valid JSON"),
    "object": (b'{"a": 1}', "payload is a JSON object"),
    "short": (_raw(GOOD[:4]), "4-element array"),
    "long": (_raw([*GOOD, "extra"]), "6-element array"),
    "hash type": (_raw([123, *GOOD[1:]]), "module_hash is a JSON integer; expected a JSON string"),
    "epochs type": (_raw([HASH, "108", *GOOD[2:]]), "epochs is a JSON string; expected a JSON integer"),
    "epochs bool": (_raw([HASH, True, *GOOD[2:]]), "epochs is a JSON boolean"),
    "epochs float": (_raw([HASH, 108.0, *GOOD[2:]]), "epochs is a JSON number"),
    "ops type": (_raw([*GOOD[:3], ["input", "output"], GOOD[4]]), "operations is a JSON array"),
    "metrics null": (_raw([*GOOD[:4], None]), "metrics is a JSON null"),
    "hash upper": (_raw([HASH.upper(), *GOOD[1:]]), "not 32 lowercase hex"),
    "hash short": (_raw([HASH[:31], *GOOD[1:]]), "not 32 lowercase hex"),
    "hash non-hex": (_raw(["g" * 32, *GOOD[1:]]), "not 32 lowercase hex"),
    "adjacency length": (_raw([HASH, 108, ADJACENCY[:-1], *GOOD[3:]]), re.escape("must hold 5x5=25 characters 0/1")),
    "adjacency chars": (_raw([HASH, 108, ADJACENCY[:-1] + "2", *GOOD[3:]]), "characters 0/1"),
    "base64": (_raw([*GOOD[:4], "!!!not base64"]), "not valid base64"),
    "base64 padding": (_raw([*GOOD[:4], GOOD_METRICS[:-1]]), "not valid base64"),
    "protobuf": (_raw([*GOOD[:4], _metrics_b64(b"\xff\xff\xff")]), "not a valid ModelMetrics protobuf"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_payload(tmp_path: Path, case: str) -> None:
    payload, problem = MALFORMED[case]
    payloads = [_raw(GOOD), _raw(GOOD), payload]
    path = _write(tmp_path, payloads)
    offset = _offsets(payloads)[2]
    records = iter_nb101_records(path)
    assert next(records).module_hash == HASH
    assert next(records).module_hash == HASH
    with pytest.raises(SourceFileError, match=re.escape(str(path)) + ", " + _where(2, offset) + ".*" + problem):
        next(records)


# ---------------------------------------------------------------- the real file


@pytest.mark.data
def test_real_nb1shot1_file(real_data_dir: Path) -> None:
    path = real_data_dir / REAL_FILE
    if not path.is_file():
        pytest.fail(f"this test needs {REAL_FILE} in NBH_DATA_DIR={real_data_dir}")
    count = 0
    hashes: Counter[str] = Counter()
    for record in iter_nb101_records(path):
        count += 1
        hashes[record.module_hash] += 1
        assert record.epochs == 108
        assert len(record.adjacency) == len(record.ops) ** 2
        assert 2 <= len(record.ops) <= 7
        assert record.ops[0] == "input"
        assert record.ops[-1] == "output"
        assert record.trainable_parameters is not None
        assert record.trainable_parameters > 0
        assert [e.current_epoch for e in record.evaluations] == [0.0, 54.0, 108.0]
        for e in record.evaluations:
            for accuracy in (e.train_accuracy, e.validation_accuracy, e.test_accuracy):
                assert 0.0 <= accuracy <= 1.0
    assert count == 61_203
    assert len(hashes) == 20_401
    assert set(hashes.values()) == {3}  # three training repeats per cell
