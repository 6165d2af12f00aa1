"""Running a client plan's `work` on one device's examples (docs/protocol.md, "How `work` is called").

Mirrors the SDK's `runWork` (src/client/work.ts): C is the broadcast decoded as `broadcast_type` (finite
floats only), D the examples cut into batches of `client_data.batch_size` in file order, `work` gets the
struct <D, C> positionally, and its result is encoded as a bundle of `upload_type`.
"""

import csv
import io
import math
import re

from .bundle import decode_typed, encode_value
from .errors import ClientError
from .interpreter import Interpreter
from .values import INT32_MAX, INT32_MIN, Sequence, Struct, Tensor, f32, format_type, product, tensor_leaves

CLIENT_PLAN_FORMAT = "roundhouse.client-plan/v1"
CLIENT_ID_COLUMN = "client_id"
DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
INTEGER = re.compile(r"^[+-]?\d+$")


def check_client_plan(plan):
    """Refuses a client plan this client does not understand (its `format`), or one missing a part."""
    if not isinstance(plan, dict) or plan.get("format") != CLIENT_PLAN_FORMAT:
        got = plan.get("format") if isinstance(plan, dict) else type(plan).__name__
        raise ClientError("CLIENT_PLAN_UNSUPPORTED", f"unknown client-plan format {got!r} (this client reads {CLIENT_PLAN_FORMAT})")
    for key in ("work", "client_data", "broadcast_type", "upload_type"):
        if key not in plan:
            raise ClientError("BAD_REQUEST", f"client plan has no {key!r}")
    return plan


def leaf_label(path):
    """How a leaf is named in CSV headers and messages: its path joined by ".", or "value"."""
    return ".".join(path) if path else "value"


def example_leaves(element):
    """The per-example view of `client_data.element`: (label, dtype, batch dim, example shape, range)."""
    out = []
    for path, t in tensor_leaves(element):
        if not t["shape"]:
            raise ClientError("DATA_INVALID", f"{leaf_label(path)}: {format_type(t)} has no leading batch dimension")
        batch_dim, *rest = t["shape"]
        if any(d is None for d in rest):
            raise ClientError("DATA_INVALID", f"{leaf_label(path)}: unknown dimension after the batch dimension")
        out.append(
            {
                "label": leaf_label(path),
                "dtype": t["dtype"],
                "batch_dim": batch_dim,
                "shape": rest,
                "range": t.get("range"),
            }
        )
    return out


def csv_columns(leaves):
    """The CSV columns of the leaves (src/data/clients-csv.ts): `path` for a scalar, `path.i` flattened."""
    cols = []
    for leaf in leaves:
        n = product(leaf["shape"])
        cols += [leaf["label"]] if not leaf["shape"] else [f"{leaf['label']}.{i}" for i in range(n)]
    return cols


def parse_cell(text, dtype):
    """One CSV cell as a value of dtype, or a string saying why it is not one (as clients-csv.ts)."""
    if dtype == "bool":
        return 0 if text == "0" else 1 if text == "1" else f"{text!r} is not 0 or 1 (bool)"
    if dtype == "int32":
        if not INTEGER.match(text):
            return f"{text!r} is not an integer (int32)"
        v = int(text)
        return v if INT32_MIN <= v <= INT32_MAX else f"{text} is out of the int32 range"
    if not DECIMAL.match(text):
        return f"{text!r} is not a number (float32)"
    v = f32(float(text))
    return v if math.isfinite(v) else f"{text} is out of the float32 range"


def read_examples_csv(text, element, source="examples.csv"):
    """One device's examples from CSV (a header of leaf columns, one example per row; a leading
    `client_id` column is allowed and ignored). Returns per-leaf flat value lists and the count."""
    leaves = example_leaves(element)
    columns = csv_columns(leaves)
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text.lstrip("\ufeff")))]
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c != "" for c in r)]
    if not rows:
        raise ClientError("DATA_INVALID", f"{source}: no header; expected {','.join(columns[:4])}")
    line, header = rows[0]
    first = 1 if header[:1] == [CLIENT_ID_COLUMN] else 0
    if header[first:] != columns:
        raise ClientError(
            "DATA_INVALID", f"{source}: row {line}: header is {','.join(header)}, expected {','.join(columns)}"
        )
    data = [[] for _ in leaves]
    count = 0
    for line, record in rows[1:]:
        if len(record) != len(header):
            raise ClientError(
                "DATA_INVALID", f"{source}: row {line}: {len(record)} cells, the header has {len(header)}"
            )
        c = first
        for k, leaf in enumerate(leaves):
            for _ in range(product(leaf["shape"])):
                v = parse_cell(record[c], leaf["dtype"])
                if isinstance(v, str):
                    raise ClientError("DATA_INVALID", f"{source}: row {line}, column {header[c]}: {v}")
                rng = leaf["range"]
                if rng is not None and not rng[0] <= v <= rng[1]:
                    raise ClientError(
                        "DATA_INVALID",
                        f"{source}: row {line}, column {header[c]}: {v} is outside the declared range "
                        f"[{rng[0]}, {rng[1]}] of {leaf['label']}",
                    )
                data[k].append(v)
                c += 1
        count += 1
    return {"count": count, "leaves": data}


def to_batches(examples, element, batch_size):
    """D: the examples in order, `batch_size` at a time; the last batch partial when every batch dimension
    is null, dropped when one is fixed (tf.data's drop_remainder)."""
    leaves = example_leaves(element)
    drop_remainder = any(leaf["batch_dim"] is not None for leaf in leaves)
    batches = []
    for start in range(0, examples["count"], batch_size):
        size = min(batch_size, examples["count"] - start)
        if drop_remainder and size < batch_size:
            break
        it = iter(range(len(leaves)))

        def build(t):
            if t["kind"] == "struct":
                return Struct((f.get("name"), build(f["type"])) for f in t["fields"])
            k = next(it)
            n = product(leaves[k]["shape"])
            values = examples["leaves"][k][start * n : (start + size) * n]
            return Tensor(t["dtype"], (size, *leaves[k]["shape"]), values)

        batches.append(build(element))
    return Sequence(batches)


def run_work(plan, broadcast, examples):
    """(U, V1, V2, V3) = work(<D, C>), encoded as the (uncompressed) upload bundle."""
    check_client_plan(plan)
    c = decode_typed(broadcast, plan["broadcast_type"])
    d = to_batches(examples, plan["client_data"]["element"], plan["client_data"]["batch_size"])
    out = Interpreter(plan.get("functions")).run(plan["work"], Struct([(None, d), (None, c)]), "work")
    return encode_value(out, plan["upload_type"])
