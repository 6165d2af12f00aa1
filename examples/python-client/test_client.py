"""Unit tests of the Python client (standard library only): python3 -m unittest test_client, from this directory.

The byte examples are those of docs/protocol.md, "The tensor bundle format".
"""

import math
import struct
import unittest

from roundhouse_client.bundle import decode_typed, read_bundle, write_bundle
from roundhouse_client.errors import ClientError
from roundhouse_client.interpreter import Interpreter
from roundhouse_client.ops import run_op
from roundhouse_client.shuffle import epoch_permutation
from roundhouse_client.values import Sequence, Struct, Tensor, bundle_name, f32, tensor_leaves
from roundhouse_client.work import read_examples_csv, run_work, to_batches

I32 = {"kind": "tensor", "dtype": "int32", "shape": []}
EMPTY = {"kind": "struct", "fields": []}

# docs/protocol.md: the federated-sum upload, U = int32 7 (68 bytes).
SUM_UPLOAD = bytes.fromhex(
    "3800000000000000"
    "7b2230223a7b226474797065223a22493332222c227368617065223a5b5d2c2264617461"
    "5f6f666673657473223a5b302c345d7d7d202020"
    "07000000"
)
# docs/protocol.md: float32 0/sum = 2.5, int32 0/count = -2, bool 0/mask = [true, false, true] (195 bytes).
THREE_DTYPES = (
    bytes.fromhex("b000000000000000")
    + b'{"0/sum":{"dtype":"F32","shape":[],"data_offsets":[0,4]},'
    + b'"0/count":{"dtype":"I32","shape":[],"data_offsets":[4,8]},'
    + b'"0/mask":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]}}'
    + b" "
    + bytes.fromhex("00002040" "feffffff" "010001")
)


def t(dtype, shape, data):
    return Tensor(dtype, shape, data)


class BundleTest(unittest.TestCase):
    def test_the_68_byte_upload_reads_and_writes_byte_for_byte(self):
        self.assertEqual(len(SUM_UPLOAD), 68)
        tensors = read_bundle(SUM_UPLOAD)
        self.assertEqual(list(tensors), ["0"])
        self.assertEqual((tensors["0"].dtype, tensors["0"].shape, tensors["0"].data), ("int32", (), [7]))
        self.assertEqual(write_bundle([("0", t("int32", [], [7]))]), SUM_UPLOAD)

    def test_the_195_byte_bundle_reads_and_writes_byte_for_byte(self):
        self.assertEqual(len(THREE_DTYPES), 195)
        tensors = read_bundle(THREE_DTYPES)
        self.assertEqual(tensors["0/sum"].data, [2.5])
        self.assertEqual(tensors["0/count"].data, [-2])
        self.assertEqual(tensors["0/mask"].data, [1, 0, 1])
        # The writer puts 4-byte tensors first, whatever order it is given.
        written = write_bundle(
            [("0/sum", t("float32", [], [2.5])), ("0/mask", t("bool", [3], [1, 0, 1])), ("0/count", t("int32", [], [-2]))]
        )
        self.assertEqual(written, THREE_DTYPES)

    def assertMalformed(self, data, text):
        with self.assertRaises(ClientError) as caught:
            read_bundle(data)
        self.assertEqual(caught.exception.code, "BUNDLE_MALFORMED")
        self.assertIn(text, caught.exception.message)

    def test_the_malformed_variants_of_the_docs_are_refused(self):
        self.assertMalformed(THREE_DTYPES[:-1] + b"\x02", "0/mask: bool element 2 is 2, not 0 or 1")
        self.assertMalformed(THREE_DTYPES[:-1], "data_offsets [8,11] run past the 10-byte data section")
        self.assertMalformed(THREE_DTYPES + b"\x00", "data bytes [11,12) belong to no tensor")

    def test_other_malformed_bundles_are_refused(self):
        def bundle(header, data=b""):
            raw = header.encode()
            return struct.pack("<Q", len(raw)) + raw + data

        self.assertMalformed(b"\x01\x00", "shorter than its 8-byte header length")
        self.assertMalformed(bundle('{"a":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}', bytes(8)), "unknown dtype")
        self.assertMalformed(bundle('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', bytes(4)), "needs 8")
        self.assertMalformed(bundle('["a"]'), 'does not start with "{"')
        self.assertMalformed(bundle('{"a":NaN}'), "not valid JSON")
        gap = '{"a":{"dtype":"I32","shape":[],"data_offsets":[4,8]}}'
        self.assertMalformed(bundle(gap, bytes(8)), "data bytes [0,4) before this tensor belong to no tensor")
        twice = '{"a":{"dtype":"I32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"I32","shape":[],"data_offsets":[4,8]}}'
        self.assertMalformed(bundle(twice, bytes(8)), "before this tensor belong to no tensor")

    def test_the_empty_bundle_is_16_bytes(self):
        self.assertEqual(write_bundle([]), bytes.fromhex("0800000000000000") + b"{}      ")

    def test_a_typed_read_names_every_problem_and_refuses_non_finite_floats(self):
        upload = {"kind": "struct", "fields": [{"type": I32}, {"type": EMPTY}, {"type": EMPTY}, {"type": EMPTY}]}
        value = decode_typed(SUM_UPLOAD, upload)
        self.assertEqual(value.fields[0][1].data, [7])
        counts = write_bundle([("counts", t("int32", [], [1]))])
        with self.assertRaises(ClientError) as caught:
            decode_typed(counts, upload)
        self.assertEqual(caught.exception.code, "BUNDLE_TYPE_MISMATCH")
        self.assertIn("0: missing; expected int32", caught.exception.message)
        self.assertIn("counts: not part of type <int32,<>,<>,<>>", caught.exception.message)
        nan = write_bundle([("w", t("float32", [2], [1.0, math.nan]))])
        w = {"kind": "struct", "fields": [{"name": "w", "type": {"kind": "tensor", "dtype": "float32", "shape": [2]}}]}
        with self.assertRaises(ClientError) as caught:
            decode_typed(nan, w)
        self.assertEqual(caught.exception.code, "BUNDLE_NOT_FINITE")


class NamesTest(unittest.TestCase):
    def test_tensor_names_follow_the_protocol_table(self):
        f32s = {"kind": "tensor", "dtype": "float32", "shape": []}
        mean = {
            "kind": "struct",
            "fields": [
                {"type": {"kind": "struct", "fields": [{"name": "sum", "type": f32s}, {"name": "count", "type": I32}]}},
                {"type": EMPTY},
                {"type": EMPTY},
                {"type": {"kind": "struct", "fields": [{"type": I32}, {"name": "x", "type": I32}]}},
            ],
        }
        names = [bundle_name(p) for p, _ in tensor_leaves(mean)]
        self.assertEqual(names, ["0/sum", "0/count", "3/0", "3/x"])
        self.assertEqual([bundle_name(p) for p, _ in tensor_leaves(I32)], ["value"])
        self.assertEqual(tensor_leaves(EMPTY), [])


class OpsTest(unittest.TestCase):
    def assertOverflow(self, op, *args, attrs=None):
        with self.assertRaises(Exception) as caught:
            run_op(op, list(args), attrs or {})
        self.assertEqual(getattr(caught.exception, "code", None), "EVAL_INT_OVERFLOW")

    def test_int32_results_are_exact_or_overflow_never_wrap(self):
        self.assertOverflow("add", t("int32", [], [2**31 - 1]), t("int32", [], [1]))
        self.assertOverflow("neg", t("int32", [], [-(2**31)]))
        self.assertOverflow("floor_div", t("int32", [], [-(2**31)]), t("int32", [], [-1]))
        self.assertOverflow("square", t("int32", [], [46341]))
        self.assertOverflow("cast", t("float32", [], [3e9]), attrs={"dtype": "int32"})
        self.assertOverflow("reduce_sum", t("int32", [2], [2**31 - 1, 1]))
        # intermediate wraps that cancel do not count
        ok = run_op("reduce_sum", [t("int32", [3], [2**31 - 1, 2**31 - 1, -(2**31 - 1)])], {})
        self.assertEqual(ok.data, [2**31 - 1])

    def test_floored_division_and_modulo(self):
        self.assertEqual(run_op("floor_div", [t("int32", [2], [-7, 7]), t("int32", [2], [2, -2])], {}).data, [-4, -4])
        self.assertEqual(run_op("mod", [t("int32", [3], [-7, 7, -7]), t("int32", [3], [3, -3, -3])], {}).data, [2, -2, -1])
        self.assertEqual(run_op("mod", [t("float32", [2], [-7.5, 7.5]), t("float32", [2], [2.0, -2.0])], {}).data, [0.5, -0.5])

    def test_clip_cast_round_and_one_hot(self):
        self.assertEqual(run_op("clip_by_value", [t("int32", [3], [-5, 3, 9])], {"min": 0, "max": 4}).data, [0, 3, 4])
        clipped = run_op("clip_by_value", [t("float32", [2], [0.05, 0.5])], {"min": 0.1, "max": 0.3})
        self.assertEqual(clipped.data, [f32(0.1), f32(0.3)])
        casts = run_op("cast", [t("float32", [4], [2.7, -2.7, 2.5, -0.5])], {"dtype": "int32"})
        self.assertEqual(casts.data, [2, -2, 2, 0])
        self.assertEqual(run_op("cast", [t("float32", [2], [math.nan, 0.0])], {"dtype": "bool"}).data, [1, 0])
        self.assertEqual(run_op("round", [t("float32", [4], [0.5, 1.5, 2.5, -1.5])], {}).data, [0.0, 2.0, 2.0, -2.0])
        hot = run_op("one_hot", [t("int32", [4], [-1, 0, 2, 3])], {"depth": 3})
        self.assertEqual((hot.dtype, hot.shape), ("float32", (4, 3)))
        self.assertEqual(hot.data, [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0])

    def test_float32_results_are_rounded_to_binary32(self):
        s = run_op("add", [t("float32", [], [f32(0.1)]), t("float32", [], [f32(0.2)])], {})
        self.assertEqual(s.data, [f32(f32(0.1) + f32(0.2))])
        self.assertEqual(run_op("mul", [t("float32", [], [3e38]), t("float32", [], [10.0])], {}).data, [math.inf])

    def test_an_unknown_op_fails_by_name(self):
        with self.assertRaises(ClientError) as caught:
            run_op("matmul", [t("float32", [1, 1], [1.0])] * 2, {})
        self.assertIn("unsupported op matmul", caught.exception.message)


def sum_plan(batch_dim=None, rng=None):
    """The library's federated-sum client plan, by hand (docs/protocol.md, "The client plan")."""
    element = {"kind": "tensor", "dtype": "int32", "shape": [batch_dim]}
    if rng:
        element["range"] = rng
    seq = {"kind": "sequence", "element": element}
    return {
        "format": "roundhouse.client-plan/v1",
        "plan_id": "p",
        "work": {
            "parameter": {"name": "arg", "type": {"kind": "struct", "fields": [{"name": "data", "type": seq}, {"name": "broadcast", "type": EMPTY}]}},
            "nodes": [
                {"name": "data_1", "op": "field", "args": ["arg"], "attrs": {"name": "data"}},
                {"name": "t2", "op": "const", "attrs": {"dtype": "int32", "shape": [], "value": 0}},
                {"name": "s3", "op": "fold", "args": ["data_1", "t2"], "attrs": {"fn": "add_batch"}},
                {"name": "b4", "op": "clip_by_value", "args": ["s3"], "attrs": {"min": -1000, "max": 1000}},
                {"name": "e5", "op": "struct"},
                {"name": "r6", "op": "struct", "args": ["b4", "e5", "e5", "e5"]},
            ],
            "result": "r6",
        },
        "functions": {
            "add_batch": {
                "parameter": {"name": "arg", "type": {"kind": "struct", "fields": [{"name": "sum", "type": I32}, {"name": "batch", "type": element}]}},
                "nodes": [
                    {"name": "sum_1", "op": "field", "args": ["arg"], "attrs": {"name": "sum"}},
                    {"name": "batch_2", "op": "field", "args": ["arg"], "attrs": {"name": "batch"}},
                    {"name": "t3", "op": "reduce_sum", "args": ["batch_2"]},
                    {"name": "sum_4", "op": "add", "args": ["sum_1", "t3"]},
                ],
                "result": "sum_4",
            }
        },
        "client_data": {"collection": "numbers", "element": element, "batch_size": 2},
        "broadcast_type": EMPTY,
        "upload_type": {"kind": "struct", "fields": [{"type": I32}, {"type": EMPTY}, {"type": EMPTY}, {"type": EMPTY}]},
    }


class WorkTest(unittest.TestCase):
    def test_the_docs_sum_upload_comes_out_of_work(self):
        plan = sum_plan()
        examples = read_examples_csv("value\n3\n4\n", plan["client_data"]["element"])
        self.assertEqual(run_work(plan, write_bundle([]), examples), SUM_UPLOAD)

    def test_batches_keep_a_partial_last_batch_or_drop_it(self):
        examples = {"count": 5, "leaves": [[1, 2, 3, 4, 5]]}
        element = {"kind": "tensor", "dtype": "int32", "shape": [None]}
        self.assertEqual([b.shape for b in to_batches(examples, element, 2).elements], [(2,), (2,), (1,)])
        fixed = {"kind": "tensor", "dtype": "int32", "shape": [2]}
        self.assertEqual([b.data for b in to_batches(examples, fixed, 2).elements], [[1, 2], [3, 4]])
        plan = sum_plan(batch_dim=2)
        out = read_bundle(run_work(plan, write_bundle([]), read_examples_csv("value\n1\n2\n3\n4\n5\n", plan["client_data"]["element"])))
        self.assertEqual(out["0"].data, [10])

    def test_refusals(self):
        plan = sum_plan(rng=[0, 9])
        element = plan["client_data"]["element"]
        for text, why in [
            ("value\n3\n10\n", "outside the declared range [0, 9]"),
            ("value\n3\n1.5\n", "is not an integer (int32)"),
            ("x\n3\n", "header is x, expected value"),
            ("value\n3\n2147483648\n", "out of the int32 range"),
        ]:
            with self.assertRaises(ClientError) as caught:
                read_examples_csv(text, element)
            self.assertEqual(caught.exception.code, "DATA_INVALID")
            self.assertIn(why, caught.exception.message)
        with self.assertRaises(ClientError) as caught:
            run_work(dict(plan, format="roundhouse.client-plan/v2"), write_bundle([]), {"count": 0, "leaves": [[]]})
        self.assertIn("unknown client-plan format", caught.exception.message)

    def test_fold_names_the_accumulator_and_element_from_the_function(self):
        interpreter = Interpreter({"f": sum_plan()["functions"]["add_batch"]})
        comp = {
            "nodes": [
                {"name": "s", "op": "call", "args": ["x"], "attrs": {"fn": "f"}},
            ],
            "parameter": {"name": "x", "type": {"kind": "struct", "fields": [{"type": I32}, {"type": {"kind": "tensor", "dtype": "int32", "shape": [None]}}]}},
            "result": "s",
        }
        out = interpreter.run(comp, Struct([(None, t("int32", [], [1])), (None, t("int32", [2], [2, 3]))]), "c")
        self.assertEqual(out.data, [6])


class ShuffleTest(unittest.TestCase):
    def test_the_permutations_of_ir_md(self):
        self.assertEqual(epoch_permutation(8, 7, 1), [3, 0, 6, 7, 1, 4, 2, 5])
        self.assertEqual(epoch_permutation(8, 0, 2), [4, 7, 2, 5, 0, 6, 1, 3])

    def test_fold_reshuffles_every_epoch_after_the_first(self):
        scalar = {"kind": "tensor", "dtype": "int32", "shape": []}
        batch = {"kind": "tensor", "dtype": "int32", "shape": [None]}
        # acc * 10 + the batch's one example: the digits spell the order the examples were folded in.
        step = {
            "parameter": {"name": "p", "type": {"kind": "struct", "fields": [{"name": "acc", "type": scalar}, {"name": "b", "type": batch}]}},
            "nodes": [
                {"name": "acc", "op": "field", "args": ["p"], "attrs": {"name": "acc"}},
                {"name": "b", "op": "field", "args": ["p"], "attrs": {"name": "b"}},
                {"name": "ten", "op": "const", "attrs": {"dtype": "int32", "shape": [], "value": 10}},
                {"name": "shifted", "op": "mul", "args": ["acc", "ten"]},
                {"name": "x", "op": "reduce_sum", "args": ["b"]},
                {"name": "out", "op": "add", "args": ["shifted", "x"]},
            ],
            "result": "out",
        }
        comp = {
            "parameter": {"name": "d", "type": {"kind": "sequence", "element": batch}},
            "nodes": [
                {"name": "zero", "op": "const", "attrs": {"dtype": "int32", "shape": [], "value": 0}},
                {"name": "r", "op": "fold", "args": ["d", "zero"], "attrs": {"fn": "step", "epochs": 2, "shuffle_seed": 7}},
            ],
            "result": "r",
        }
        data = Sequence([t("int32", [1], [v]) for v in (1, 2, 3, 4)])
        digits = [1, 2, 3, 4] + [[1, 2, 3, 4][i] for i in epoch_permutation(4, 7, 1)]
        self.assertEqual(Interpreter({"step": step}).run(comp, data, "c").data, [int("".join(map(str, digits)))])


if __name__ == "__main__":
    unittest.main()
