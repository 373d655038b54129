"""exporters/onnx_fp16.py: the fp32 -> fp16 ONNX rewrite (the source of TensorRT 11's strongly typed fp16
engines), on a small hand-made graph and on a real model with its parity against fp32 PyTorch."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.core.artifact import ExportRequest
from exporters import onnx_fp16


def small_graph(weight_scale: float = 1.0) -> onnx.ModelProto:
    """Conv -> Clip(min, max from a Constant) -> Cast(to FLOAT) -> output, fp32 in and out."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((4, 3, 3, 3)) * weight_scale).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["lo"], value=numpy_helper.from_array(np.array(0.0, np.float32), "lo")),
        helper.make_node("Constant", [], ["hi"], value=numpy_helper.from_array(np.array(6.0, np.float32), "hi")),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
        helper.make_node("Cast", ["r"], ["logits"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [numpy_helper.from_array(w, "w")],
                              value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4, 8, 8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_rewrite_types_everything_fp16_and_keeps_fp32_io():
    src = small_graph()
    half, conv = onnx_fp16.to_fp16(src)
    onnx.checker.check_model(half, full_check=True)
    assert conv == onnx_fp16.Fp16Conversion(initializers=1, constants=2, casts_retargeted=1, clipped=0)
    assert half.graph.initializer[0].data_type == TensorProto.FLOAT16
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    ops = [n.op_type for n in half.graph.node]
    assert ops[0] == "Cast" and ops[-1] == "Cast" and ops.count("Cast") == 3
    assert not half.graph.value_info  # stale fp32 intermediate types are dropped
    inferred = onnx.shape_inference.infer_shapes(half, strict_mode=True)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    assert types["c"] == types["r"] == TensorProto.FLOAT16  # the body really computes in fp16
    assert src.graph.initializer[0].data_type == TensorProto.FLOAT  # the source is not touched
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    a, b = run(src, x), run(half, x)
    assert b.dtype == np.float32 and onnx_fp16.cosine(a, b) > 0.9999
    assert not np.array_equal(a, b)  # fp16 rounding is there, so the comparison can fail


def test_weights_beyond_fp16_range_are_saturated_and_counted():
    _, conv = onnx_fp16.to_fp16(small_graph(weight_scale=1e5))
    assert conv.clipped > 0


def test_parity_fails_on_a_different_output(tmp_path):
    half, _ = onnx_fp16.to_fp16(small_graph())
    path = tmp_path / "m.onnx"
    onnx.save(half, path)
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    good = onnx_fp16.parity(path, "input", x, run(small_graph(), x))
    assert good["passed"] and good["cosine"] >= onnx_fp16.COSINE_MIN
    bad = onnx_fp16.parity(path, "input", x, np.random.default_rng(2).standard_normal((1, 4, 8, 8)))
    assert not bad["passed"] and bad["cosine"] < 0.5


@pytest.mark.slow
def test_real_model_exports_fp16_with_parity(tmp_path):
    """mobileone_s0 -> fp32 ONNX -> fp16 ONNX; ONNX Runtime (CPU) on the fp16 graph vs fp32 PyTorch."""
    art, hit = onnx_fp16.export(ExportRequest("mobileone_s0"), tmp_path)
    assert not hit and art.target == "onnx_fp16" and art.precision == "fp16" and art.input_dtype == "float32"
    p = art.metadata["parity"]
    assert p["passed"] and p["cosine"] >= 0.999 and p["reference"] == "fp32 PyTorch" and p["top1_agrees"]
    assert p["cosine"] < 1.0  # rounding is real: a no-op conversion would give 1.0 to the last digit
    model = onnx.load(art.path)
    convs = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    assert all(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer if i.name in convs)
    again, hit = onnx_fp16.export(ExportRequest("mobileone_s0"), tmp_path)
    assert hit and again.sha256 == art.sha256
