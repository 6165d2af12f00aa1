"""A small interpreter of IR computations (docs/ir.md, "Computations" and "Structural ops").

It follows the reference (`src/compute/interpreter.ts`): the parameter is conformed to its declared type
(checked, and its struct fields named from the declaration), nodes run in order, `fold` passes
`<acc, element>` to its function with the function's parameter names, and the run-time limits of docs/ir.md,
"Limits", apply. `value_and_grad` is not supported (no library analytics plan uses it; FedAvg's training
does): it fails clearly, as does any tensor op outside `ops.SUPPORTED_OPS`.
"""

from .errors import ClientError
from .ops import OpError, run_op
from .shuffle import reshuffled
from .values import Sequence, Struct, Tensor, conform

MAX_OPS = 10_000_000
MAX_FOLD_STEPS = 100_000
MAX_CALL_DEPTH = 32
MAX_TENSOR_ELEMENTS = 16_777_216


class Interpreter:
    """Runs computations over a plan's (or client plan's) named functions."""

    def __init__(self, functions):
        self.functions = dict(functions or {})
        self.ops = 0

    def run(self, comp, arg, label):
        self.ops = 0
        return self._evaluate(comp, arg, label, 0)

    def _evaluate(self, comp, arg, label, depth):
        if depth > MAX_CALL_DEPTH:
            raise ClientError("EVAL_LIMIT_EXCEEDED", f"{label}: calls nest deeper than {MAX_CALL_DEPTH}")
        env = {}
        param = comp.get("parameter")
        if param:
            if arg is None:
                raise ClientError("EVAL_ERROR", f"{label}: missing its parameter")
            env[param["name"]] = conform(arg, param["type"], f"{label}: parameter")
        for node in comp["nodes"]:
            self.ops += 1
            if self.ops > MAX_OPS:
                raise ClientError("EVAL_LIMIT_EXCEEDED", f"{label}: more than {MAX_OPS} ops executed")
            args = []
            for a in node.get("args", []):
                if a not in env:
                    raise ClientError("EVAL_ERROR", f'{label}: node "{node["name"]}": "{a}" is not defined')
                args.append(env[a])
            where = f'{label}: node "{node["name"]}" ({node["op"]})'
            try:
                env[node["name"]] = self._node(node, args, where, depth)
            except OpError as e:
                raise ClientError(e.code, f"{where}: {e}") from None
        if comp["result"] not in env:
            raise ClientError("EVAL_ERROR", f'{label}: result "{comp["result"]}" is not defined')
        return env[comp["result"]]

    def _fn(self, name, where):
        if name not in self.functions:
            raise ClientError("EVAL_ERROR", f'{where}: unknown function "{name}"')
        return self.functions[name]

    def _node(self, node, args, where, depth):
        op, attrs = node["op"], node.get("attrs") or {}
        if op == "struct":
            names = attrs.get("names") or [None] * len(args)
            return Struct(zip(names, args))
        if op == "field":
            s = args[0]
            if not isinstance(s, Struct):
                raise OpError("arg 0 is not a struct")
            if "name" in attrs:
                found = [v for n, v in s.fields if n == attrs["name"]]
            else:
                i = attrs["index"]
                found = [s.fields[i][1]] if 0 <= i < len(s.fields) else []
            if not found:
                raise OpError("no such field")
            return found[0]
        if op == "call":
            fn = self._fn(attrs["fn"], where)
            return self._evaluate(fn, args[0] if args else None, f"function {attrs['fn']}", depth + 1)
        if op == "fold":
            return self._fold(args, attrs, where, depth)
        if op == "repeat":
            fn, state = self._fn(attrs["fn"], where), args[0]
            for _ in range(attrs["count"]):
                state = self._evaluate(fn, state, f"function {attrs['fn']}", depth + 1)
            return state
        if op in ("value_and_grad", "random_normal"):
            raise ClientError("EVAL_ERROR", f"{where}: unsupported op {op}")
        for i, a in enumerate(args):
            if not isinstance(a, Tensor):
                raise OpError(f"arg {i} is not a tensor")
        out = run_op(op, args, attrs)
        if len(out.data) > MAX_TENSOR_ELEMENTS:
            raise ClientError(
                "EVAL_LIMIT_EXCEEDED",
                f"{where}: result has {len(out.data)} elements, more than the limit of {MAX_TENSOR_ELEMENTS}",
            )
        return out

    def _fold(self, args, attrs, where, depth):
        fn = self._fn(attrs["fn"], where)
        seq, acc = args[0], args[1]
        if not isinstance(seq, Sequence):
            raise OpError("arg 0 is not a sequence")
        epochs = attrs.get("epochs", 1)
        if len(seq.elements) * epochs > MAX_FOLD_STEPS:
            raise ClientError(
                "EVAL_LIMIT_EXCEEDED",
                f"{where}: {len(seq.elements)} elements x {epochs} epochs is more than the limit of "
                f"{MAX_FOLD_STEPS} steps",
            )
        ptype = (fn.get("parameter") or {}).get("type", {})
        fields = ptype.get("fields", []) if ptype.get("kind") == "struct" else []
        names = [f.get("name") for f in fields[:2]] + [None, None]
        for epoch in range(epochs):
            # Epoch 0 takes the batches as given; with a shuffle seed each later one reshuffles them.
            elements = seq.elements
            if epoch > 0 and "shuffle_seed" in attrs:
                elements = reshuffled(seq, attrs["shuffle_seed"], epoch, where).elements
            for element in elements:
                step = Struct([(names[0], acc), (names[1], element)])
                acc = self._evaluate(fn, step, f"function {attrs['fn']}", depth + 1)
        return acc
