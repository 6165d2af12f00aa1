"""The tensor bundle: the safetensors subset of docs/protocol.md, "The tensor bundle format".

`read_bundle` accepts exactly what the server's reader does (F32, I32 and BOOL; exact tiling; bools 0 or 1);
`write_bundle` writes what the server's writer does (4-byte tensors first in the order given, then bools;
the header padded with spaces to a multiple of 8 bytes), so a bundle's bytes match the reference's.
"""

import json
import math
import struct

from .errors import ClientError
from .values import (
    Struct,
    Tensor,
    bundle_name,
    format_type,
    product,
    shape_fits,
    tensor_leaves,
    value_leaves,
)

MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"
WIRE = {"float32": "F32", "int32": "I32", "bool": "BOOL"}
FROM_WIRE = {v: k for k, v in WIRE.items()}
ITEM_BYTES = {"float32": 4, "int32": 4, "bool": 1}


def malformed(path, message):
    return ClientError("BUNDLE_MALFORMED", f"{path}: {message}")


def _reject_constant(name):
    # JavaScript's JSON.parse knows no NaN or Infinity literals; Python's json would accept them.
    raise ValueError(f"{name} is not JSON")


def _non_negative_int(x):
    # JSON has one number type: 3.0 is the integer 3, as JavaScript reads it. bool is an int in Python.
    if isinstance(x, bool):
        return None
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return x if isinstance(x, int) and 0 <= x <= 2**53 - 1 else None


def _parse_entry(name, info):
    if not isinstance(info, dict):
        raise malformed(name, "tensor info is not an object")
    if sorted(info) != ["data_offsets", "dtype", "shape"]:
        raise malformed(
            name, f"tensor info must have exactly dtype, shape and data_offsets (has {', '.join(sorted(info))})"
        )
    dtype = FROM_WIRE.get(info["dtype"]) if isinstance(info["dtype"], str) else None
    if dtype is None:
        raise malformed(name, f"unknown dtype {info['dtype']!r} (supported: F32, I32, BOOL)")
    shape = info["shape"]
    if not isinstance(shape, list) or any(_non_negative_int(d) is None for d in shape):
        raise malformed(name, f"shape {shape!r} is not a list of non-negative integers")
    shape = [_non_negative_int(d) for d in shape]
    offsets = info["data_offsets"]
    ok = isinstance(offsets, list) and len(offsets) == 2
    begin, end = (_non_negative_int(offsets[0]), _non_negative_int(offsets[1])) if ok else (None, None)
    if begin is None or end is None or begin > end:
        raise malformed(name, f"data_offsets {offsets!r} is not [begin, end] with 0 <= begin <= end")
    need = product(shape) * ITEM_BYTES[dtype]
    if need != end - begin:
        raise malformed(name, f"{end - begin} data bytes, but {info['dtype']} with shape {shape} needs {need}")
    return {"name": name, "dtype": dtype, "shape": shape, "begin": begin, "end": end}


def read_bundle(data):
    """Parses and checks a bundle; returns {name: Tensor}. Raises BUNDLE_MALFORMED."""
    if len(data) < 8:
        raise malformed("header", f"bundle is {len(data)} bytes, shorter than its 8-byte header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > MAX_HEADER_BYTES:
        raise malformed("header", f"header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    if 8 + n > len(data):
        raise malformed("header", f"header length {n} runs past the end of the {len(data)}-byte bundle")
    try:
        text = bytes(data[8 : 8 + n]).decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("header", "header is not valid UTF-8") from None
    if not text.startswith("{"):
        raise malformed("header", 'header does not start with "{"')
    try:
        header = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise malformed("header", f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise malformed("header", "header is not a JSON object")

    entries = []
    for name, info in header.items():
        if name == METADATA_KEY:
            if not isinstance(info, dict) or any(not isinstance(v, str) for v in info.values()):
                raise malformed(name, "metadata is not an object of strings")
            continue
        entries.append(_parse_entry(name, info))

    start = 8 + n
    length = len(data) - start
    for e in entries:
        if e["end"] > length:
            raise malformed(
                e["name"], f"data_offsets [{e['begin']},{e['end']}] run past the {length}-byte data section"
            )
    # Exact tiling: sorted by offset, the tensors cover the data section with no gap, overlap or tail.
    entries.sort(key=lambda e: (e["begin"], e["end"]))
    cursor, previous = 0, ""
    for e in entries:
        if e["begin"] < cursor:
            raise malformed(e["name"], f"data_offsets [{e['begin']},{e['end']}] overlap tensor \"{previous}\"")
        if e["begin"] > cursor:
            raise malformed(e["name"], f"data bytes [{cursor},{e['begin']}) before this tensor belong to no tensor")
        cursor, previous = e["end"], e["name"]
    if cursor != length:
        raise malformed("header", f"data bytes [{cursor},{length}) belong to no tensor")

    tensors = {}
    for e in entries:
        raw = bytes(data[start + e["begin"] : start + e["end"]])
        count = product(e["shape"])
        if e["dtype"] == "bool":
            values = list(raw)
            bad = next((i for i, b in enumerate(values) if b > 1), -1)
            if bad >= 0:
                raise malformed(e["name"], f"bool element {bad} is {values[bad]}, not 0 or 1")
        else:
            values = list(struct.unpack(f"<{count}{'f' if e['dtype'] == 'float32' else 'i'}", raw))
        tensors[e["name"]] = Tensor(e["dtype"], e["shape"], values)
    return tensors


def write_bundle(named):
    """Writes [(name, Tensor)] as a bundle: 4-byte tensors first (in the given order), then bools."""
    ordered = [t for t in named if t[1].dtype != "bool"] + [t for t in named if t[1].dtype == "bool"]
    parts, chunks, offset = [], [], 0
    for name, t in ordered:
        if t.dtype == "bool":
            chunk = bytes(1 if v else 0 for v in t.data)
        elif t.dtype == "int32":
            chunk = struct.pack(f"<{len(t.data)}i", *t.data)
        else:
            chunk = struct.pack(f"<{len(t.data)}f", *t.data)
        info = {"dtype": WIRE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(chunk)]}
        parts.append(json.dumps(name, ensure_ascii=False) + ":" + json.dumps(info, separators=(",", ":")))
        chunks.append(chunk)
        offset += len(chunk)
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    padded = header + b" " * (-len(header) % 8)
    return struct.pack("<Q", len(padded)) + padded + b"".join(chunks)


def decode_typed(data, typ, require_finite=True):
    """A bundle that must carry exactly `typ`, as a value (docs/protocol.md, `readTypedBundle`)."""
    tensors = read_bundle(data)
    leaves = [(bundle_name(path), leaf) for path, leaf in tensor_leaves(typ)]
    problems = []
    for name, leaf in leaves:
        t = tensors.get(name)
        if t is None:
            problems.append(f"{name}: missing; expected {format_type(leaf)}")
        elif t.dtype != leaf["dtype"]:
            problems.append(f"{name}: dtype {t.dtype}, expected {format_type(leaf)}")
        elif not shape_fits(t.shape, leaf["shape"]):
            problems.append(f"{name}: shape {list(t.shape)}, expected {format_type(leaf)}")
    known = {name for name, _ in leaves}
    problems += [f"{n}: not part of type {format_type(typ)}" for n in tensors if n not in known]
    if problems:
        raise ClientError(
            "BUNDLE_TYPE_MISMATCH", f"bundle does not match type {format_type(typ)}: " + "; ".join(problems)
        )
    if require_finite:
        for name, leaf in leaves:
            if leaf["dtype"] != "float32":
                continue
            bad = next((i for i, v in enumerate(tensors[name].data) if not math.isfinite(v)), -1)
            if bad >= 0:
                raise ClientError("BUNDLE_NOT_FINITE", f"{name}: element {bad} is {tensors[name].data[bad]}")

    def build(t, path):
        if t["kind"] != "struct":
            return tensors[bundle_name(path)]
        return Struct(
            (f.get("name"), build(f["type"], (*path, f.get("name") or str(i)))) for i, f in enumerate(t["fields"])
        )

    return build(typ, ())


def encode_value(value, typ):
    """Encodes a value of `typ` as a bundle, each leaf under its name (`encodeBundle`)."""
    return write_bundle(value_leaves(value, typ))
