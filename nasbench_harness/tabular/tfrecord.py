"""Read and write uncompressed TFRecord files without TensorFlow.

Each record is framed as: payload length (``uint64`` little-endian, 8 bytes), masked CRC32C of
those 8 bytes (``uint32`` LE), the payload, masked CRC32C of the payload (``uint32`` LE). Both
checksums are verified, so a damaged or truncated download is reported instead of being parsed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import crc32c

from nasbench_harness.errors import SourceFileError

_HEADER = struct.Struct("<QI")  # payload length, masked CRC of the length bytes
_FOOTER = struct.Struct("<I")  # masked CRC of the payload
_MASK_DELTA = 0xA282EAD8
_FIX = "the file is damaged or truncated; download it again"


@dataclass(frozen=True, slots=True)
class TFRecord:
    """One record: its 0-based number, the byte offset of its length field, and its payload."""

    number: int
    offset: int
    payload: bytes


def _mask(crc: int) -> int:
    # TFRecord masks the CRC because a CRC over data that itself contains CRCs is weak.
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """The masked CRC32C (Castagnoli) of ``data``, as stored in TFRecord framing."""
    return _mask(crc32c.crc32c(data))


def read_records(path: str | os.PathLike[str]) -> Iterator[TFRecord]:
    """Every record of an uncompressed TFRecord file, in order, with both CRCs verified.

    The whole file is read into memory (the official NB101 files are up to ~2 GB).
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise SourceFileError(
            f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions"
        ) from None
    if not data:
        raise SourceFileError(f"{path}: no records (the file is empty); {_FIX}")
    return _iter_records(path, data)


def _iter_records(path: Path, data: bytes) -> Iterator[TFRecord]:
    view = memoryview(data)
    size = len(data)
    header_size = _HEADER.size
    footer_size = _FOOTER.size
    unpack_header = _HEADER.unpack_from
    unpack_footer = _FOOTER.unpack_from
    crc = crc32c.crc32c
    mask = _mask
    offset = 0
    number = 0
    while offset < size:
        remaining = size - offset
        if remaining < header_size:
            _fail(path, number, offset, f"truncated header: {remaining} trailing bytes")
        length, stored_length_crc = unpack_header(data, offset)
        computed = mask(crc(view[offset : offset + 8]))
        if computed != stored_length_crc:
            _fail(
                path,
                number,
                offset,
                f"length CRC mismatch (stored 0x{stored_length_crc:08x}, computed 0x{computed:08x})",
            )
        start = offset + header_size
        end = start + length
        if end > size:
            _fail(
                path,
                number,
                offset,
                f"truncated: record declares {length} payload bytes but only {size - start} remain",
            )
        if end + footer_size > size:
            _fail(path, number, offset, f"truncated: payload CRC has only {size - end} of {footer_size} bytes")
        payload = view[start:end]
        (stored_payload_crc,) = unpack_footer(data, end)
        computed = mask(crc(payload))
        if computed != stored_payload_crc:
            _fail(
                path,
                number,
                offset,
                f"payload CRC mismatch (stored 0x{stored_payload_crc:08x}, computed 0x{computed:08x})",
            )
        yield TFRecord(number, offset, payload.tobytes())
        offset = end + footer_size
        number += 1


def _fail(path: Path, number: int, offset: int, problem: str) -> NoReturn:
    raise SourceFileError(f"{path}, record {number} (byte offset {offset}): {problem}; {_FIX}")


def write_records(path: str | os.PathLike[str], payloads: Iterable[bytes]) -> None:
    """Write ``payloads`` to ``path`` as an uncompressed TFRecord file (replacing it)."""
    with Path(path).open("wb") as fh:
        for payload in payloads:
            length = len(payload).to_bytes(8, "little")
            fh.write(length)
            fh.write(_FOOTER.pack(masked_crc32c(length)))
            fh.write(payload)
            fh.write(_FOOTER.pack(masked_crc32c(payload)))
