"""Run-time values of the IR (docs/ir.md, "Types"): tensors, structs and sequences, and the types' leaves.

A tensor keeps its elements in a flat row-major list of Python numbers: float32 elements are floats that are
exactly representable in binary32 (every op rounds its result with `f32`), int32 and bool elements are ints
(bools 0 or 1).
"""

import math
import struct

from .errors import ClientError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
DTYPES = ("float32", "int32", "bool")


def f32(x):
    """Rounds a Python float to the nearest binary32 value (overflow gives ±inf, as IEEE 754 says)."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        # struct refuses finite doubles that round past the largest float32; IEEE rounds them to infinity.
        return math.copysign(math.inf, x)


def product(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Tensor:
    """A tensor: dtype, shape (tuple of ints) and flat row-major data."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype, shape, data):
        if dtype not in DTYPES:
            raise ClientError("EVAL_ERROR", f"unknown dtype {dtype!r}")
        self.dtype = dtype
        self.shape = tuple(shape)
        self.data = list(data)
        if len(self.data) != product(self.shape):
            raise ClientError(
                "EVAL_ERROR", f"{len(self.data)} values do not fill shape {list(self.shape)}"
            )

    @property
    def rank(self):
        return len(self.shape)

    def __repr__(self):
        return f"Tensor({self.dtype}, {list(self.shape)}, {self.data})"


class Struct:
    """A struct value: ordered fields, each a (name or None, value) pair."""

    __slots__ = ("fields",)

    def __init__(self, fields):
        self.fields = list(fields)

    def __repr__(self):
        return f"Struct({self.fields})"


class Sequence:
    """A sequence value (a client's batches)."""

    __slots__ = ("elements",)

    def __init__(self, elements):
        self.elements = list(elements)


def format_type(t):
    """The compact form the server's messages use: `int32[?]`, `<a=float32,<>>`, `int32*`."""
    kind = t["kind"]
    if kind == "tensor":
        dims = ",".join("?" if d is None else str(d) for d in t["shape"])
        return t["dtype"] + (f"[{dims}]" if t["shape"] else "")
    if kind == "struct":
        parts = [
            (f"{f['name']}=" if f.get("name") else "") + format_type(f["type"]) for f in t["fields"]
        ]
        return "<" + ",".join(parts) + ">"
    return format_type(t["element"]) + "*"


def tensor_leaves(t, prefix=()):
    """The tensor leaves of a type in order, as (path, tensor type); unnamed fields by position."""
    kind = t["kind"]
    if kind == "tensor":
        return [(tuple(prefix), t)]
    if kind == "struct":
        out = []
        for i, f in enumerate(t["fields"]):
            out.extend(tensor_leaves(f["type"], (*prefix, f.get("name") or str(i))))
        return out
    raise ClientError("BUNDLE_TYPE_MISMATCH", f"a sequence {format_type(t)} has no fixed tensors")


def bundle_name(path):
    """docs/protocol.md, "Tensor names": the path joined by "/", or "value" for a bare tensor."""
    return "/".join(path) if path else "value"


def shape_fits(shape, declared):
    """Whether a concrete shape is accepted by a declared one (`None` matches any size)."""
    return len(shape) == len(declared) and all(d is None or d == s for s, d in zip(shape, declared))


def conform(v, t, where):
    """Checks a value against a declared type and gives struct fields the declared names (`conform`)."""
    kind = t["kind"]
    if kind == "tensor":
        if not isinstance(v, Tensor) or v.dtype != t["dtype"] or not shape_fits(v.shape, t["shape"]):
            got = f"{v.dtype}{list(v.shape)}" if isinstance(v, Tensor) else type(v).__name__
            raise ClientError("EVAL_ERROR", f"{where}: expected {format_type(t)}, got {got}")
        return v
    if kind == "struct":
        if not isinstance(v, Struct) or len(v.fields) != len(t["fields"]):
            raise ClientError("EVAL_ERROR", f"{where}: expected a struct {format_type(t)}")
        return Struct(
            (f.get("name"), conform(v.fields[i][1], f["type"], f"{where}.{f.get('name') or i}"))
            for i, f in enumerate(t["fields"])
        )
    if not isinstance(v, Sequence):
        raise ClientError("EVAL_ERROR", f"{where}: expected a sequence {format_type(t)}")
    return Sequence(conform(e, t["element"], f"{where}[{i}]") for i, e in enumerate(v.elements))


def value_leaves(v, t):
    """The tensors of a value of type `t`, in leaf order, each with its bundle name (for encoding)."""
    out = []

    def walk(value, typ, path):
        kind = typ["kind"]
        if kind == "tensor":
            if not isinstance(value, Tensor) or value.dtype != typ["dtype"] or not shape_fits(
                value.shape, typ["shape"]
            ):
                raise ClientError(
                    "BUNDLE_TYPE_MISMATCH",
                    f"{bundle_name(path)}: value does not match {format_type(typ)}",
                )
            out.append((bundle_name(path), value))
        elif kind == "struct":
            if not isinstance(value, Struct) or len(value.fields) != len(typ["fields"]):
                raise ClientError(
                    "BUNDLE_TYPE_MISMATCH",
                    f"{bundle_name(path)}: value does not match {format_type(typ)}",
                )
            for i, f in enumerate(typ["fields"]):
                walk(value.fields[i][1], f["type"], (*path, f.get("name") or str(i)))
        else:
            raise ClientError("BUNDLE_TYPE_MISMATCH", "a sequence cannot travel in a tensor bundle")

    walk(v, t, ())
    return out
