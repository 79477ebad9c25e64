"""A strict tagged binary codec for pysyncobj's data, installed in place of its pickle.

pysyncobj pickles every network message, every log command, its journal metadata and its dumps.
Unpickling bytes that arrived from the network runs whatever code they name, so qcluster never
lets pysyncobj see :mod:`pickle`: :func:`install` swaps the ``pickle`` module references inside
pysyncobj for this module, and everything it "pickles" is encoded here instead.

The codec knows exactly these values, and nothing can make it build anything else::

    None  True  False  int  float  str  bytes  list  tuple  dict (str / int keys)
    pysyncobj Node -> its id (a str); pysyncobj turns ids back into nodes itself

Layout: ``MAGIC`` (2 bytes) then one value; a value is a 1-byte tag and its body (lengths are
little-endian u32). Decoding checks every length against the bytes left, limits nesting depth and
rejects trailing bytes; any violation raises :class:`WireError`. A pickle (first byte 0x80) or
any other foreign input fails on the magic.
"""

from __future__ import annotations

import io
import struct
from typing import IO, Any

MAGIC = b"Q\x01"
MAX_DEPTH = 32
MAX_BIGINT_DIGITS = 80

_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class WireError(ValueError):
    """Bytes that are not a valid encoding, or a value the codec does not carry."""


def dumps(value: Any, protocol: int | None = None) -> bytes:
    """Encode ``value`` (``protocol`` is accepted for pickle compatibility and ignored)."""
    out = bytearray(MAGIC)
    _encode(value, out, 0)
    return bytes(out)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode bytes produced by :func:`dumps`; raises :class:`WireError` on anything else."""
    raw = to_bytes(data)
    if raw[: len(MAGIC)] != MAGIC:
        raise WireError("not a qcluster wire encoding (bad magic)")
    value, pos = _decode(raw, len(MAGIC), 0)
    if pos != len(raw):
        raise WireError(f"{len(raw) - pos} trailing bytes after the encoded value")
    return value


def dump(value: Any, file: IO[bytes], protocol: int | None = None) -> None:
    file.write(dumps(value))


def load(file: IO[bytes]) -> Any:
    return loads(file.read())


def to_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def _encode(value: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None:
        out += b"N"
    elif value is True:
        out += b"T"
    elif value is False:
        out += b"F"
    elif isinstance(value, int):
        if _I64_MIN <= value <= _I64_MAX:
            out += b"i"
            out += _I64.pack(value)
        else:
            digits = str(value).encode("ascii")
            out += b"I"
            out += _U32.pack(len(digits))
            out += digits
    elif isinstance(value, float):
        out += b"d"
        out += _F64.pack(value)
    elif isinstance(value, str):
        _encode_blob(b"s", value.encode("utf-8"), out)
    elif isinstance(value, bytes | bytearray | memoryview):
        _encode_blob(b"b", bytes(value), out)
    elif isinstance(value, list | tuple):
        out += b"l" if isinstance(value, list) else b"t"
        out += _U32.pack(len(value))
        for item in value:
            _encode(item, out, depth + 1)
    elif isinstance(value, dict):
        out += b"m"
        out += _U32.pack(len(value))
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise WireError(f"dict key of type {type(key).__name__} is not carried")
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    elif _is_node(value):
        node_id = value.id
        if not isinstance(node_id, str):
            raise WireError("only nodes with str ids are carried")
        _encode_blob(b"s", node_id.encode("utf-8"), out)
    else:
        raise WireError(f"values of type {type(value).__name__} are not carried")


def _encode_blob(tag: bytes, body: bytes, out: bytearray) -> None:
    out += tag
    out += _U32.pack(len(body))
    out += body


def _is_node(value: object) -> bool:
    from pysyncobj.node import Node

    return isinstance(value, Node)


def _need(raw: bytes, pos: int, size: int) -> None:
    if size < 0 or pos + size > len(raw):
        raise WireError("truncated encoding")


def _decode(raw: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise WireError("encoding nested too deeply")
    _need(raw, pos, 1)
    tag = raw[pos : pos + 1]
    pos += 1
    if tag == b"N":
        return None, pos
    if tag == b"T":
        return True, pos
    if tag == b"F":
        return False, pos
    if tag == b"i":
        _need(raw, pos, 8)
        return _I64.unpack_from(raw, pos)[0], pos + 8
    if tag == b"d":
        _need(raw, pos, 8)
        return _F64.unpack_from(raw, pos)[0], pos + 8
    if tag in (b"I", b"s", b"b"):
        _need(raw, pos, 4)
        size = _U32.unpack_from(raw, pos)[0]
        pos += 4
        _need(raw, pos, size)
        body = raw[pos : pos + size]
        pos += size
        if tag == b"b":
            return body, pos
        try:
            text = body.decode("utf-8" if tag == b"s" else "ascii")
        except UnicodeDecodeError as exc:
            raise WireError("invalid text in encoding") from exc
        if tag == b"s":
            return text, pos
        if not 0 < size <= MAX_BIGINT_DIGITS or not text.lstrip("-").isdigit():
            raise WireError("invalid big integer in encoding")
        return int(text), pos
    if tag in (b"l", b"t", b"m"):
        _need(raw, pos, 4)
        count = _U32.unpack_from(raw, pos)[0]
        pos += 4
        # Every element takes at least one byte: a count beyond what is left is a lie.
        _need(raw, pos, count * (2 if tag == b"m" else 1))
        if tag == b"m":
            mapping: dict[Any, Any] = {}
            for _ in range(count):
                key, pos = _decode(raw, pos, depth + 1)
                if isinstance(key, bool) or not isinstance(key, str | int):
                    raise WireError("invalid dict key in encoding")
                mapping[key], pos = _decode(raw, pos, depth + 1)
            return mapping, pos
        items = []
        for _ in range(count):
            item, pos = _decode(raw, pos, depth + 1)
            items.append(item)
        return (items if tag == b"l" else tuple(items)), pos
    raise WireError(f"unknown tag {tag!r} in encoding")


_installed = False


def install() -> None:
    """Make pysyncobj encode with this module instead of pickle (idempotent, process-wide).

    Raises ``RuntimeError`` when the installed pysyncobj does not have the module attributes this
    relies on, rather than silently leaving pickle in place.
    """
    global _installed
    if _installed:
        return
    import sys

    import pysyncobj.journal
    import pysyncobj.serializer
    import pysyncobj.syncobj
    import pysyncobj.tcp_connection

    this = sys.modules[__name__]
    for module in (pysyncobj.syncobj, pysyncobj.serializer, pysyncobj.tcp_connection):
        if not hasattr(module, "pickle"):
            raise RuntimeError(f"{module.__name__} has no `pickle` attribute; unsupported pysyncobj version")
        module.pickle = this
    for name in ("loads", "dumps", "to_bytes"):
        if not hasattr(pysyncobj.journal, name):
            raise RuntimeError(f"pysyncobj.journal has no `{name}`; unsupported pysyncobj version")
        setattr(pysyncobj.journal, name, getattr(this, name))
    # pysyncobj leaves files open: its journal metadata reader, and the dump it sends to a lagging
    # follower (never closed). Read the former properly, the latter into memory (dumps are small).
    pysyncobj.journal.MetaStorer.getMeta = _get_meta
    pysyncobj.serializer.open = _serializer_open
    # and its journal file dies of SIGBUS on a full disk: ours grows into allocated blocks
    from qcluster.consensus import journal

    journal.install()
    _installed = True


def _serializer_open(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    if mode == "rb":
        with open(path, "rb") as fh:
            return io.BytesIO(fh.read())
    return open(path, mode, *args, **kwargs)


def _get_meta(self: Any) -> dict[str, Any]:
    try:
        with open(self.getPath(), "rb") as fh:
            meta = loads(fh.read())
    except (OSError, WireError):
        return {}
    return meta if isinstance(meta, dict) else {}
