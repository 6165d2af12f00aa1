"""Tensor ops of the IR (docs/ir.md, "Tensor ops") with the numeric semantics of docs/protocol.md,
"Numeric semantics": int32 results are exact or fail with EVAL_INT_OVERFLOW (never wrap), float32 results
are rounded to binary32 after every op, floor_div and mod are floored (Python's // and %), casts to int32
truncate toward zero and fail outside int32, one_hot gives a row of off_value for an index out of range.

Only a subset of the IR is here; an op not in OPS fails with "unsupported op X".
"""

import math

from .errors import ClientError
from .values import INT32_MAX, INT32_MIN, Tensor, f32, product

INF = math.inf


class OpError(Exception):
    """A failure inside one op; the interpreter names the node (EVAL_ERROR unless `code` says otherwise)."""

    def __init__(self, message, code="EVAL_ERROR"):
        super().__init__(message)
        self.code = code


def checked_int(v, index=0):
    if v < INT32_MIN or v > INT32_MAX:
        raise OpError(
            f"int32 overflow: element {index} of the result is {v}, outside [{INT32_MIN}, {INT32_MAX}]",
            "EVAL_INT_OVERFLOW",
        )
    return v


def strides(shape):
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return list(reversed(out))


def broadcast_shape(shapes):
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise OpError(f"shapes {[list(s) for s in shapes]} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def broadcast_data(t, shape):
    """t's elements laid out over `shape` (NumPy broadcasting)."""
    if t.shape == shape:
        return t.data
    lead = len(shape) - len(t.shape)
    src = [0] * lead + [st if d != 1 else 0 for st, d in zip(strides(t.shape), t.shape)]
    out_strides = strides(shape)
    data = []
    for flat in range(product(shape)):
        idx = 0
        for k, st in enumerate(out_strides):
            idx += ((flat // st) % shape[k]) * src[k]
        data.append(t.data[idx])
    return data


def same_dtype(args, allowed):
    dtype = args[0].dtype
    for i, a in enumerate(args):
        if a.dtype != dtype:
            raise OpError(f"arg {i}: dtype {a.dtype} is not {dtype}")
        if a.dtype not in allowed:
            raise OpError(f"arg {i}: dtype {a.dtype} is not one of {', '.join(allowed)}")
    return dtype


def elementwise(args, fn, allowed, out_dtype=None):
    """Applies fn(dtype, *elements) over broadcast args; int32 results are checked, float32 rounded."""
    dtype = same_dtype(args, allowed)
    shape = broadcast_shape([a.shape for a in args])
    cols = [broadcast_data(a, shape) for a in args]
    result_dtype = out_dtype or dtype
    data = []
    for i, xs in enumerate(zip(*cols)):
        v = fn(dtype, *xs)
        if result_dtype == "int32":
            v = checked_int(v, i)
        elif result_dtype == "float32":
            v = f32(v)
        else:
            v = 1 if v else 0
        data.append(v)
    return Tensor(result_dtype, shape, data)


def fdiv(a, b):
    """IEEE 754 division of doubles: x/0 is ±inf or NaN instead of ZeroDivisionError."""
    if b == 0:
        if a == 0 or a != a:
            return math.nan
        return math.copysign(INF, a) * math.copysign(1.0, b)
    return a / b


def int_divisor(b):
    if b == 0:
        raise OpError("arg 1: integer division by zero")
    return b


def floor_div(dtype, a, b):
    if dtype == "int32":
        return a // int_divisor(b)
    q = fdiv(a, b)
    return math.floor(q) if math.isfinite(q) else q


def mod(dtype, a, b):
    if dtype == "int32":
        return a % int_divisor(b)
    if b == 0 or not math.isfinite(a) or b != b:
        return math.nan
    r = math.fmod(a, b)
    # floored modulo: the result takes the divisor's sign
    return r + b if r != 0 and (r < 0) != (b < 0) else r


def nan_aware(pick):
    return lambda _d, a, b: a if a != a else b if b != b else pick(a, b)


NUMERIC = ("float32", "int32")
FLOAT = ("float32",)
ANY = ("float32", "int32", "bool")

BINARY = {
    "add": (lambda _d, a, b: a + b, NUMERIC),
    "sub": (lambda _d, a, b: a - b, NUMERIC),
    "mul": (lambda _d, a, b: a * b, NUMERIC),
    "div": (lambda _d, a, b: fdiv(a, b), FLOAT),
    "maximum": (nan_aware(max), NUMERIC),
    "minimum": (nan_aware(min), NUMERIC),
    "squared_difference": (lambda _d, a, b: (a - b) * (a - b), NUMERIC),
    "floor_div": (floor_div, NUMERIC),
    "mod": (mod, NUMERIC),
}

COMPARISON = {
    "equal": lambda a, b: a == b,
    "not_equal": lambda a, b: a != b,
    "less": lambda a, b: a < b,
    "less_equal": lambda a, b: a <= b,
    "greater": lambda a, b: a > b,
    "greater_equal": lambda a, b: a >= b,
}


def flog(x):
    return -INF if x == 0 else math.nan if x < 0 or x != x else math.log(x)


def fsqrt(x):
    return math.nan if x < 0 or x != x else math.sqrt(x)


def fexp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def fround(x):
    # half to even, keeping the sign of zero (-0.5 -> -0)
    return math.copysign(float(round(x)), x) if math.isfinite(x) else x


def sign(x):
    return x if x != x else (x > 0) - (x < 0)


UNARY = {
    "neg": (lambda x: -x, NUMERIC),
    "abs": (abs, NUMERIC),
    "square": (lambda x: x * x, NUMERIC),
    "sign": (sign, NUMERIC),
    "exp": (fexp, FLOAT),
    "log": (flog, FLOAT),
    "log1p": (lambda x: flog(1 + x) if x != -1 else -INF, FLOAT),
    "sqrt": (fsqrt, FLOAT),
    "rsqrt": (lambda x: fdiv(1.0, fsqrt(x)), FLOAT),
    "relu": (lambda x: x if x != x else max(x, 0.0), FLOAT),
    "sigmoid": (lambda x: 1 / (1 + fexp(-x)) if x == x else x, FLOAT),
    "tanh": (math.tanh, FLOAT),
    "floor": (lambda x: math.floor(x) if math.isfinite(x) else x, FLOAT),
    "ceil": (lambda x: math.ceil(x) if math.isfinite(x) else x, FLOAT),
    "round": (fround, FLOAT),
}


def normalize_axis(axis, rank):
    if not isinstance(axis, int) or not -rank <= axis < max(rank, 1):
        raise OpError(f"attr axis: {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def reduce(x, attrs, allowed, fn, identity, out_dtype=None):
    """Reduces x over attrs.axes (default all), fn(list of elements) -> value; identity for no elements."""
    if x.dtype not in allowed:
        raise OpError(f"arg 0: dtype {x.dtype} is not one of {', '.join(allowed)}")
    axes = attrs.get("axes")
    axes = list(range(x.rank)) if axes is None else sorted({normalize_axis(a, x.rank) for a in axes})
    keep = attrs.get("keepdims", False)
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
    kept = [i for i in range(x.rank) if i not in axes]
    kept_shape = [x.shape[i] for i in kept]
    groups = [[] for _ in range(product(kept_shape))]
    st = strides(x.shape)
    kst = strides(kept_shape)
    for flat, v in enumerate(x.data):
        g = sum(((flat // st[i]) % x.shape[i]) * kst[k] for k, i in enumerate(kept))
        groups[g].append(v)
    dtype = out_dtype or x.dtype
    data = []
    for i, g in enumerate(groups):
        v = fn(g) if g else identity(x.dtype)
        data.append(checked_int(v, i) if dtype == "int32" else f32(v) if dtype == "float32" else int(bool(v)))
    return Tensor(dtype, out_shape, data)


def f32_sum(values):
    """Sums float32 values one by one, each partial sum rounded to float32, like a float accumulator."""
    s = 0.0
    for v in values:
        s = f32(s + v)
    return s


def float_or_int_sum(values):
    return sum(values) if isinstance(values[0], int) else f32_sum(values)


def product_of(values):
    p = 1 if isinstance(values[0], int) else 1.0
    for v in values:
        p = p * v if isinstance(p, int) else f32(p * v)
    return p


def nan_max(values):
    return math.nan if any(v != v for v in values) else max(values)


def nan_min(values):
    return math.nan if any(v != v for v in values) else min(values)


REDUCTIONS = {
    "reduce_sum": (NUMERIC, float_or_int_sum, lambda d: 0),
    "reduce_prod": (NUMERIC, product_of, lambda d: 1),
    "reduce_max": (NUMERIC, nan_max, lambda d: INT32_MIN if d == "int32" else -INF),
    "reduce_min": (NUMERIC, nan_min, lambda d: INT32_MAX if d == "int32" else INF),
    "reduce_mean": (FLOAT, lambda g: f32_sum(g) / len(g), lambda d: math.nan),
    "reduce_any": (("bool",), any, lambda d: 0),
    "reduce_all": (("bool",), all, lambda d: 1),
}


def const_element(dtype, v):
    if dtype == "float32":
        if v in ("inf", "-inf"):
            return math.copysign(INF, -1.0 if v == "-inf" else 1.0)
        return f32(float(v))
    if dtype == "int32":
        return checked_int(int(v))
    return 1 if v else 0


def const(attrs):
    dtype, shape, value = attrs["dtype"], attrs["shape"], attrs["value"]
    n = product(shape)
    values = value if isinstance(value, list) else [value] * n
    if len(values) != n:
        raise OpError(f"attr value: {len(values)} values for shape {shape}")
    return Tensor(dtype, shape, [const_element(dtype, v) for v in values])


def cast(x, dtype):
    if dtype == "bool":
        return Tensor("bool", x.shape, [1 if v != 0 else 0 for v in x.data])
    if dtype == "float32":
        return Tensor("float32", x.shape, [f32(float(v)) for v in x.data])
    if x.dtype != "float32":
        return Tensor("int32", x.shape, list(x.data))
    out = []
    for i, v in enumerate(x.data):
        if v != v:
            out.append(0)  # unspecified by the docs; 0 is what both TensorFlow.js backends give
        elif math.isinf(v):
            raise OpError(f"int32 overflow: element {i} of the result is {v}", "EVAL_INT_OVERFLOW")
        else:
            out.append(checked_int(math.trunc(v), i))
    return Tensor("int32", x.shape, out)


def one_hot(x, attrs):
    if x.dtype != "int32":
        raise OpError(f"arg 0: dtype {x.dtype} is not int32")
    depth = attrs["depth"]
    on, off = f32(float(attrs.get("on_value", 1))), f32(float(attrs.get("off_value", 0)))
    data = []
    for v in x.data:
        data.extend(on if v == k else off for k in range(depth))
    return Tensor("float32", (*x.shape, depth), data)


def reshape(x, shape):
    shape = list(shape)
    if shape.count(-1) > 1:
        raise OpError("attr shape: more than one -1")
    if -1 in shape:
        known = product(d for d in shape if d != -1)
        if known == 0 or product(x.shape) % known:
            raise OpError(f"attr shape: {shape} does not fit {product(x.shape)} elements")
        shape[shape.index(-1)] = product(x.shape) // known
    if product(shape) != product(x.shape):
        raise OpError(f"attr shape: {shape} holds {product(shape)} elements, arg 0 has {product(x.shape)}")
    return Tensor(x.dtype, shape, x.data)


def expand_dims(x, axis):
    rank = x.rank + 1
    axis = normalize_axis(axis, rank)
    return Tensor(x.dtype, (*x.shape[:axis], 1, *x.shape[axis:]), x.data)


def squeeze(x, axes):
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {normalize_axis(a, x.rank) for a in axes}
    if any(x.shape[a] != 1 for a in axes):
        raise OpError(f"attr axes: a dimension of {list(x.shape)} there is not 1")
    return Tensor(x.dtype, [d for i, d in enumerate(x.shape) if i not in axes], x.data)


def clip(x, attrs):
    lo, hi = attrs["min"], attrs["max"]
    if x.dtype == "int32":
        return Tensor("int32", x.shape, [min(max(v, lo), hi) for v in x.data])
    if x.dtype != "float32":
        raise OpError(f"arg 0: dtype {x.dtype} is not float32 or int32")
    return Tensor("float32", x.shape, [v if v != v else f32(min(max(v, lo), hi)) for v in x.data])


def where(c, a, b):
    if c.dtype != "bool":
        raise OpError(f"arg 0: dtype {c.dtype} is not bool")
    same_dtype([a, b], ANY)
    shape = broadcast_shape([c.shape, a.shape, b.shape])
    cs, xs, ys = (broadcast_data(t, shape) for t in (c, a, b))
    return Tensor(a.dtype, shape, [x if k else y for k, x, y in zip(cs, xs, ys)])


def logical(fn):
    return lambda args, _attrs: elementwise(args, lambda _d, *xs: fn(*xs), ("bool",))


def run_op(name, args, attrs):
    """Runs one tensor op; raises OpError (the interpreter adds the node) or ClientError."""
    if name in BINARY:
        fn, allowed = BINARY[name]
        return elementwise(args[:2], fn, allowed)
    if name in UNARY:
        fn, allowed = UNARY[name]
        return elementwise(args[:1], lambda _d, x: fn(x), allowed)
    if name in COMPARISON:
        fn = COMPARISON[name]
        return elementwise(args[:2], lambda _d, a, b: fn(a, b), ANY, "bool")
    if name in REDUCTIONS:
        allowed, fn, identity = REDUCTIONS[name]
        return reduce(args[0], attrs, allowed, fn, identity)
    if name in SIMPLE:
        return SIMPLE[name](args, attrs)
    raise ClientError("EVAL_ERROR", f"unsupported op {name}")


SIMPLE = {
    "const": lambda _a, attrs: const(attrs),
    "zeros_like": lambda a, _: Tensor(a[0].dtype, a[0].shape, [0.0 if a[0].dtype == "float32" else 0] * len(a[0].data)),
    "ones_like": lambda a, _: Tensor(a[0].dtype, a[0].shape, [1.0 if a[0].dtype == "float32" else 1] * len(a[0].data)),
    "logical_and": logical(lambda a, b: a and b),
    "logical_or": logical(lambda a, b: a or b),
    "logical_not": logical(lambda a: not a),
    "where": lambda a, _: where(*a[:3]),
    "clip_by_value": lambda a, attrs: clip(a[0], attrs),
    "cast": lambda a, attrs: cast(a[0], attrs["dtype"]),
    "one_hot": lambda a, attrs: one_hot(a[0], attrs),
    "dim": lambda a, attrs: Tensor("int32", (), [a[0].shape[normalize_axis(attrs["axis"], a[0].rank)]]),
    "size": lambda a, _: Tensor("int32", (), [len(a[0].data)]),
    "reshape": lambda a, attrs: reshape(a[0], attrs["shape"]),
    "expand_dims": lambda a, attrs: expand_dims(a[0], attrs["axis"]),
    "squeeze": lambda a, attrs: squeeze(a[0], attrs.get("axes")),
}

SUPPORTED_OPS = sorted([*BINARY, *UNARY, *COMPARISON, *REDUCTIONS, *SIMPLE])
