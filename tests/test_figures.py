"""The model's static figures: parameters, size on disk and multiply-accumulates (MACs).

Every MAC figure here is checked against arithmetic written out in the test,
against an independent count by forward hooks on the zoo's modules, or
against a published figure (torchvision's MobileNetV2 at 224 x 224).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchharness.api import BenchError, InputSpec, ModelArtifact
from benchharness.testing import case_context, make_metric, run_case

onnx = pytest.importorskip("onnx")
from benchharness_metrics.macs import count_artifact, count_onnx_model, count_torch_module  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

#: torchvision's MobileNetV2 (width 1.0, 224 x 224, 1000 classes): 300.8 M multiply-adds, as published.
PUBLISHED_MOBILENET_V2_MACS = 300.8e6


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread, restored afterwards: counts do not depend on it, and on a busy 2-core machine
    OpenMP spin-waits made the zoo's threaded forward passes and exports several times slower."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _initializer(name: str, shape: list[int], dtype: type = np.float32) -> onnx.TensorProto:
    rng = np.random.default_rng(0)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def _model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "figures", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _stack_model() -> onnx.ModelProto:
    """conv -> depthwise -> pointwise -> grouped conv -> conv transpose -> pool -> Gemm -> MatMul, batch dynamic."""
    conv = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv", kernel_shape=[3, 3], **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="depthwise", group=8, strides=[2, 2], **conv),
        helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"], name="pointwise"),
        helper.make_node("Conv", ["c3", "w4"], ["c4"], name="grouped", group=4, **conv),
        helper.make_node("Add", ["c3", "c4"], ["a4"]),
        helper.make_node("ConvTranspose", ["a4", "w5"], ["c5"], name="transpose", strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c5"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w6", "b6"], ["g"], name="gemm", transB=1),
        helper.make_node("MatMul", ["g", "w7"], ["y"], name="matmul"),
    ]
    initializers = [
        _initializer("w1", [8, 3, 3, 3]),
        _initializer("w2", [8, 1, 3, 3]),
        _initializer("w3", [16, 8, 1, 1]),
        _initializer("b3", [16]),
        _initializer("w4", [16, 4, 3, 3]),
        _initializer("w5", [16, 4, 2, 2]),
        _initializer("w6", [10, 4]),
        _initializer("b6", [10]),
        _initializer("w7", [10, 6]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])
    return _model(nodes, [x], [y], initializers)


# Hand count of _stack_model at batch N = 2, input 3 x 16 x 16:
#   conv       3 -> 8, 3x3, out 8x16x16:            2 * 8*16*16 * 3*3*3      = 110592
#   depthwise  8 -> 8, groups 8, stride 2, 8x8 out:  2 * 8*8*8 * (8/8)*3*3    =   9216
#   pointwise  8 -> 16, 1x1, out 16x8x8:             2 * 16*8*8 * 8           =  16384
#   grouped    16 -> 16, groups 4, 3x3, out 16x8x8:  2 * 16*8*8 * (16/4)*3*3  =  73728
#   transpose  16 -> 4, 2x2 stride 2, in 16x8x8:     2 * 16*8*8 * 4*2*2       =  32768  (out 4x16x16)
#   gemm       (2 x 4) @ (4 x 10):                   2 * 10 * 4               =     80
#   matmul     (2 x 10) @ (10 x 6):                  2 * 6 * 10               =    120
STACK_BY_OP = {"Conv": 110592 + 9216 + 16384 + 73728, "ConvTranspose": 32768, "Gemm": 80, "MatMul": 120}
STACK_TOTAL = 242888
#: Elements of _stack_model's weights: 216 + 72 + 128 + 16 + 576 + 256 + 40 + 10 + 60.
STACK_PARAMETERS = 1374


def test_hand_counted_stack_of_conv_depthwise_grouped_transpose_gemm_matmul():
    assert sum(STACK_BY_OP.values()) == STACK_TOTAL
    count = count_onnx_model(_stack_model(), {"x": [2, 3, 16, 16]})
    assert count.by_op == STACK_BY_OP
    assert count.total == STACK_TOTAL
    assert count.nodes == {"Conv": 4, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}
    assert count.complete and count.not_counted == {}
    assert count.free == ["Add", "Flatten", "GlobalAveragePool", "Relu"]
    # At batch 1 every figure halves: the graph's dynamic batch was fixed by the given shape.
    assert count_onnx_model(_stack_model(), {"x": [1, 3, 16, 16]}).total * 2 == STACK_TOTAL


def test_macs_metric_reports_one_item_and_the_batch_total(tmp_path):
    path = tmp_path / "stack.onnx"
    onnx.save(_stack_model(), str(path))
    artifact = ModelArtifact(
        format="onnx", content_hash="stack", path=path, inputs=[InputSpec(name="x", shape=[2, 3, 16, 16])]
    )
    ctx = case_context(artifact=artifact, batch=2)
    ctx.case.model.inputs = [InputSpec(name="x", shape=["batch", 3, 16, 16])]
    value = make_metric("macs").collect(ctx)
    assert value.unit == "M"
    assert value.value == pytest.approx(STACK_TOTAL / 2 / 1e6)
    assert value.details["per_item"] == STACK_TOTAL // 2
    assert value.details["batch_total"] == STACK_TOTAL and value.details["items"] == 2
    assert value.details["by_op"] == {op: macs // 2 for op, macs in STACK_BY_OP.items()}
    assert value.details["complete"] is True and value.details["not_counted"] == {}
    assert "lower bound" not in value.method
    # A model none of whose inputs has the batch dimension does not scale with the case's batch.
    ctx.case.model.inputs = [InputSpec(name="x", shape=[2, 3, 16, 16])]
    assert make_metric("macs").collect(ctx).details["per_item"] == STACK_TOTAL


def test_matmul_broadcasting_and_gemm_transposes():
    cases = [
        # (A shape, B shape, attributes or None for MatMul, hand count)
        ([3, 1, 5, 7], [4, 7, 2], None, 3 * 4 * 5 * 2 * 7),  # batch dims broadcast to 3 x 4; 5x7 @ 7x2
        ([7], [7, 2], None, 2 * 7),  # vector @ matrix
        ([5, 7], [7], None, 5 * 7),  # matrix @ vector
        ([7], [7], None, 7),  # dot product
        ([4, 2], [4, 3], {"transA": 1}, 2 * 3 * 4),  # Gemm, A' = A^T is 2 x 4
        ([2, 4], [3, 4], {"transB": 1}, 2 * 3 * 4),
    ]
    for a_shape, b_shape, attrs, expected in cases:
        op = "MatMul" if attrs is None else "Gemm"
        node = helper.make_node(op, ["a", "b"], ["y"], **(attrs or {}))
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape)
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        model = _model([node], [a], [y], [_initializer("b", b_shape)])
        assert count_onnx_model(model).total == expected, (a_shape, b_shape, attrs)


def test_quantized_convolutions_and_matmuls_count_as_their_float_twins():
    def scalar(name: str, value, dtype) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, dtype=dtype), name)

    quantization = [scalar("s", 0.1, np.float32), scalar("zu", 0, np.uint8), scalar("zi", 0, np.int8)]
    weights = [
        numpy_helper.from_array(np.ones([4, 2, 3, 3], dtype=np.int8), "wconv"),
        numpy_helper.from_array(np.ones([4, 2, 1, 1], dtype=np.uint8), "wint"),
        numpy_helper.from_array(np.ones([5, 2], dtype=np.int8), "wmm"),
    ]
    nodes = [
        # QLinearConv(x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero): 3x3 on 6x6 -> 4x4
        helper.make_node("QLinearConv", ["x", "s", "zu", "wconv", "s", "zi", "s", "zu"], ["qc"]),
        helper.make_node("ConvInteger", ["x", "wint"], ["ci"]),  # 1x1 on 6x6
        helper.make_node("MatMulInteger", ["a", "wmm"], ["mi"]),
        helper.make_node("QLinearMatMul", ["a", "s", "zu", "wmm", "s", "zi", "s", "zu"], ["qm"]),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2, 6, 6]),
        helper.make_tensor_value_info("a", TensorProto.UINT8, [3, 5]),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in ("qc", "ci", "mi", "qm")]
    model = _model(nodes, inputs, outputs, quantization + weights, opset=21)
    count = count_onnx_model(model)
    assert count.by_op == {
        "QLinearConv": 1 * 4 * 4 * 4 * 2 * 3 * 3,  # 1152
        "ConvInteger": 1 * 4 * 6 * 6 * 2,  # 288
        "MatMulInteger": 3 * 2 * 5,  # 30
        "QLinearMatMul": 3 * 2 * 5,
    }


def test_torch_stack_and_1d_3d_convolutions_match_hand_counts():
    torch = pytest.importorskip("torch")
    from torch import nn

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.depthwise = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
            self.pointwise = nn.Conv2d(8, 16, 1)
            self.grouped = nn.Conv2d(16, 16, 3, padding=1, groups=4)
            self.transpose = nn.ConvTranspose2d(16, 4, 2, stride=2)
            self.fc = nn.Linear(4, 10)
            self.proj = nn.Parameter(torch.randn(10, 6))
            self.conv1d = nn.Conv1d(4, 6, 3, padding=1)
            self.conv3d = nn.Conv3d(2, 3, 3, padding=1)

        def forward(self, x, seq, vol):
            h = self.pointwise(self.depthwise(torch.relu(self.conv(x))))
            h = self.transpose(h + self.grouped(h)).mean((2, 3))
            return self.fc(h) @ self.proj, self.conv1d(seq), self.conv3d(vol)

    args = [torch.randn(2, 3, 16, 16), torch.randn(1, 4, 10), torch.randn(1, 2, 4, 4, 4)]
    count = count_torch_module(Stack().eval(), args, ["x", "seq", "vol"])
    conv1d = 1 * 6 * 10 * 4 * 3  # out 6 x 10, each (4 / 1) * 3
    conv3d = 1 * 3 * 4 * 4 * 4 * 2 * 3 * 3 * 3  # out 3 x 4x4x4, each 2 * 3x3x3
    assert conv1d == 720 and conv3d == 10368
    assert count.by_op == {
        "Conv": STACK_BY_OP["Conv"] + conv1d + conv3d,
        "ConvTranspose": STACK_BY_OP["ConvTranspose"],
        "Gemm": STACK_BY_OP["Gemm"],
        "MatMul": STACK_BY_OP["MatMul"],
    }
    assert count.source == "onnx export of the torch module"


def _hook_count(module, x) -> int:
    """An independent count: forward hooks on every Conv2d and Linear module (the zoo has no other MAC layer)."""
    import torch
    from torch import nn

    total = 0

    def conv(layer, inputs, output):
        nonlocal total
        total += output.numel() * (layer.in_channels // layer.groups) * layer.kernel_size[0] * layer.kernel_size[1]

    def linear(layer, inputs, output):
        nonlocal total
        total += output.numel() * layer.in_features

    hooks = [m.register_forward_hook(conv) for m in module.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear) for m in module.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        module(x)
    for hook in hooks:
        hook.remove()
    return total


@pytest.mark.parametrize("arch", ["mobilenet_v2", "shufflenet_v2", "squeezenet", "resnet"])
def test_zoo_torch_count_equals_onnx_count_and_a_hook_count(arch, tmp_path, one_torch_thread):
    torch = pytest.importorskip("torch")
    from benchharness_torch import TorchToOnnx, module_artifact
    from benchharness_zoo.models import ARCHITECTURES

    # The raw constructor: MACs do not depend on the weights, and build_model's calibration pass takes seconds.
    module = ARCHITECTURES[arch](width=0.5, num_classes=10).eval()
    # Distinct BatchNorm statistics, as a trained model has: the exporter stores identical folded biases (all zero
    # with the default statistics) once, which would hide the folding this test checks.
    generator = torch.Generator().manual_seed(0)
    for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=generator))
    spec = InputSpec(name="x", shape=[2, 3, 64, 64])
    torch_artifact = module_artifact(module, identity=arch)
    torch_artifact.inputs = [spec]
    path = tmp_path / f"{arch}.onnx"
    TorchToOnnx().convert(torch_artifact, path)  # the very converter the onnxruntime and openvino cases use
    onnx_artifact = ModelArtifact(format="onnx", content_hash=arch, path=path, inputs=[spec])

    from_torch, from_onnx = count_artifact(torch_artifact), count_artifact(onnx_artifact)
    assert from_torch.total == from_onnx.total == _hook_count(module, torch.randn(2, 3, 64, 64))
    assert from_torch.by_op == from_onnx.by_op and set(from_onnx.by_op) == {"Conv", "Gemm"}
    assert from_onnx.complete and from_torch.complete

    # Parameters: the export folds each BatchNorm (scale and shift per channel) into its conv's one bias.
    bn_channels = sum(m.num_features for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    torch_params = make_metric("parameters").collect(case_context(artifact=torch_artifact)).details["count"]
    onnx_params = make_metric("parameters").collect(case_context(artifact=onnx_artifact)).details["count"]
    assert torch_params == sum(p.numel() for p in module.parameters())
    assert torch_params - onnx_params == bn_channels
    assert (bn_channels == 0) == (arch == "squeezenet")


def test_zoo_mobilenet_v2_at_224_matches_the_published_300_m(one_torch_thread):
    pytest.importorskip("torch")
    from benchharness_torch import module_artifact
    from benchharness_zoo.models import ARCHITECTURES

    artifact = module_artifact(ARCHITECTURES["mobilenet_v2"](width=1.0, num_classes=1000), identity="mnv2")
    artifact.inputs = [InputSpec(name="x", shape=[1, 3, 224, 224])]
    value = make_metric("macs").collect(case_context(artifact=artifact))
    # Same stages, channels (multiples of 8) and strides as torchvision's: 299.49 M in convs + 1.28 M classifier.
    assert value.details["per_item"] == 300_774_272
    assert value.details["by_op"] == {"Conv": 299_494_272, "Gemm": 1280 * 1000}
    assert abs(value.value * 1e6 - PUBLISHED_MOBILENET_V2_MACS) / PUBLISHED_MOBILENET_V2_MACS < 0.01
    assert value.details["counted_from"] == "onnx export of the torch module"


def test_ops_without_a_formula_are_listed_as_not_counted(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),  # 1 * 4 * 6*6 * 2 * 1*1 = 288
        helper.make_node("Reshape", ["c", "to_3d"], ["f"]),  # 1 x 4 x 36
        helper.make_node("Einsum", ["f", "f"], ["e"], equation="bij,bkj->bik"),
        helper.make_node("Transpose", ["f"], ["t"], perm=[0, 2, 1]),  # sequence of 36 steps of 4 features
        helper.make_node("LSTM", ["t", "lw", "lr"], ["h"], hidden_size=3),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("e", "h")]
    initializers = [
        _initializer("w", [4, 2, 1, 1]),
        numpy_helper.from_array(np.array([1, 4, 36], dtype=np.int64), "to_3d"),
        _initializer("lw", [1, 12, 4]),
        _initializer("lr", [1, 12, 3]),
    ]
    path = tmp_path / "partial.onnx"
    onnx.save(_model(nodes, [x], outputs, initializers), str(path))
    artifact = ModelArtifact(
        format="onnx", content_hash="p", path=path, inputs=[InputSpec(name="x", shape=[1, 2, 6, 6])]
    )
    value = make_metric("macs").collect(case_context(artifact=artifact))
    assert value.details["per_item"] == 288
    assert value.details["not_counted"] == {"Einsum": 1, "LSTM": 1}
    assert value.details["complete"] is False
    assert value.method.endswith("a lower bound, not counted: Einsum (1), LSTM (1)")


def test_shapes_that_cannot_be_inferred_are_a_one_line_figure_error(tmp_path):
    pytest.importorskip("onnxruntime")
    # x[..., :n], where n counts x's non-zero elements: ONNX Runtime runs it, but no shape inference can know n.
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz"]),
        helper.make_node("Shape", ["nz"], ["nz_shape"], start=1),
        helper.make_node("Slice", ["x", "zero", "nz_shape", "three"], ["cut"]),
        helper.make_node("Conv", ["cut", "w"], ["y"], name="after_the_cut"),
    ]
    initializers = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([3], dtype=np.int64), "three"),
        _initializer("w", [4, 3, 1, 1]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    onnx.save(_model(nodes, [x], [y], initializers), str(tmp_path / "cut.onnx"))
    result = run_case(
        model={"source": "onnx", "path": "cut.onnx"},
        backend="onnxruntime",
        metrics=["latency", "macs", "parameters", "model_size"],
        base_dir=tmp_path,
        check=False,
    )
    assert result.status == "ok", result.error
    error = result.metric_errors["macs"]
    assert "\n" not in error and "Traceback" not in error
    assert "cannot count MACs: onnx shape inference left the shape of Conv node 'after_the_cut'" in error
    # The other figures of the case are kept.
    assert result.metrics["parameters"].details["count"] == 12  # the conv's weights; int64 slice bounds are not
    assert result.metrics["model_size"].details["bytes"] == (tmp_path / "cut.onnx").stat().st_size


def test_input_shapes_that_contradict_the_graph_are_one_line_errors():
    with pytest.raises(BenchError, match=r"^cannot count MACs: input 'x' has rank 4 in the graph, not 3"):
        count_onnx_model(_stack_model(), {"x": [3, 16, 16]})
    with pytest.raises(BenchError, match=r"^cannot count MACs: the graph has no input 'image' \(its inputs: x\)$"):
        count_onnx_model(_stack_model(), {"image": [1, 3, 16, 16]})
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", "K"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    matmul = _model([node], [a], [y], [_initializer("b", [7, 2])])
    assert count_onnx_model(matmul, {"a": [5, 7]}).total == 5 * 2 * 7
    with pytest.raises(BenchError, match=r"^cannot count MACs: onnx shape inference failed: .*") as err:
        count_onnx_model(matmul, {"a": [5, 8]})  # K of 8 against a 7 x 2 weight
    assert "\n" not in str(err.value)


def test_a_format_without_a_graph_has_no_macs_and_no_parameters():
    ctx = case_context()  # the FakeBackend's 'fake' model: no file, no module
    with pytest.raises(BenchError, match=r"^cannot count MACs of a 'fake' model: counted formats are "):
        make_metric("macs").collect(ctx)
    value = make_metric("parameters").collect(ctx)
    assert value.value is None and value.method.startswith("unknown: a 'fake' model is not read here")


def test_parameters_of_an_onnx_file_count_weight_typed_tensors(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"]),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones(8, dtype=np.float32))),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),  # 1 x 8
        helper.make_node("Add", ["r", "k"], ["a"]),
        helper.make_node("DequantizeLinear", ["q", "scale"], ["dq"]),
        helper.make_node("Add", ["a", "dq"], ["y"]),
    ]
    initializers = [
        _initializer("w", [8, 3, 3, 3]),  # 216
        _initializer("b", [8]),  # 8
        numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape"),  # a shape: not a weight
        numpy_helper.from_array(np.arange(8, dtype=np.int8), "q"),  # 8 quantized weights
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "scale"),  # 1
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    path = tmp_path / "weights.onnx"
    onnx.save(_model(nodes, [x], [y], initializers), str(path))
    artifact = ModelArtifact(
        format="onnx", content_hash="w", path=path, inputs=[InputSpec(name="x", shape=[1, 3, 3, 3])]
    )
    value = make_metric("parameters").collect(case_context(artifact=artifact))
    assert value.details["count"] == 216 + 8 + 8 + 8 + 1
    assert value.value == pytest.approx(241 / 1e6) and value.unit == "M"


def test_model_size_counts_onnx_external_data(tmp_path):
    path = tmp_path / "external.onnx"
    onnx.save(_stack_model(), str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    artifact = ModelArtifact(
        format="onnx", content_hash="e", path=path, inputs=[InputSpec(name="x", shape=[1, 3, 16, 16])]
    )
    ctx = case_context(artifact=artifact)
    value = make_metric("model_size").collect(ctx)
    weights = tmp_path / "weights.bin"
    assert weights.stat().st_size >= 4 * STACK_PARAMETERS  # every float weight of the stack, 4 bytes each
    assert value.details["bytes"] == path.stat().st_size + weights.stat().st_size
    assert value.method == "size of external.onnx and its 1 external data file(s)"
    # Counting needs only the shapes: the external weights are not loaded.
    assert make_metric("macs").collect(ctx).details["per_item"] == STACK_TOTAL // 2
    weights.unlink()
    with pytest.raises(BenchError, match="external.onnx: external data file 'weights.bin' is missing"):
        make_metric("model_size").collect(ctx)


def test_model_size_and_parameters_of_a_torch_module_count_shared_tensors_once():
    torch = pytest.importorskip("torch")
    from benchharness_torch import module_artifact
    from torch import nn

    module = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.BatchNorm1d(4))
    module[1].weight = module[0].weight  # tied: one 4 x 4 weight
    artifact = module_artifact(module, identity="tied")
    artifact.inputs = [InputSpec(name="x", shape=[2, 4])]
    ctx = case_context(artifact=artifact)
    before = {key: tensor.clone() for key, tensor in module.state_dict().items()}
    size = make_metric("model_size").collect(ctx)
    # weight 16 + two biases 4 + 4 + BatchNorm weight, bias, running mean and var 4 each, float32; the int64 count.
    assert size.details["bytes"] == (16 + 4 + 4 + 4 * 4) * 4 + 8
    assert size.method == "bytes of the module's state_dict tensors in memory"
    assert make_metric("parameters").collect(ctx).details["count"] == 16 + 4 + 4 + 4 + 4
    assert make_metric("macs").collect(ctx).details["batch_total"] == 2 * 4 * 4 * 2  # two 4 -> 4 linears, batch 2
    after = module.state_dict()  # counting (an ONNX export) left the module as it was
    assert after.keys() == before.keys() and all(torch.equal(after[key], before[key]) for key in before)
    assert module[1].weight is module[0].weight and not module.training


def test_openvino_ir_counts_like_the_onnx_it_came_from(tmp_path):
    ov = pytest.importorskip("openvino")
    onnx_path = tmp_path / "stack.onnx"
    onnx.save(_stack_model(), str(onnx_path))
    xml = tmp_path / "stack.xml"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    spec = InputSpec(name="x", shape=[2, 3, 16, 16])
    artifact = ModelArtifact(format="openvino-ir", content_hash="ir", path=xml, inputs=[spec])
    ctx = case_context(artifact=artifact, batch=2)
    ctx.case.model.inputs = [InputSpec(name="x", shape=["batch", 3, 16, 16])]
    macs = make_metric("macs").collect(ctx)
    # The IR's batch is dynamic, as the ONNX's: it was reshaped to the case's inputs.
    assert macs.details["batch_total"] == STACK_TOTAL
    assert macs.details["counted_from"] == "openvino-ir" and macs.details["complete"], macs.details
    assert sum(macs.details["by_op"].values()) == STACK_TOTAL // 2
    onnx_artifact = ModelArtifact(format="onnx", content_hash="o", path=onnx_path, inputs=[spec])
    onnx_params = make_metric("parameters").collect(case_context(artifact=onnx_artifact)).details["count"]
    assert make_metric("parameters").collect(ctx).details["count"] == onnx_params == STACK_PARAMETERS
    size = make_metric("model_size").collect(ctx)
    assert size.details["bytes"] == xml.stat().st_size + xml.with_suffix(".bin").stat().st_size


def test_torch_and_onnxruntime_cases_report_the_same_macs_per_item():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    model = {"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 32, "num_classes": 10}
    figures = ["latency", "macs", "parameters", "model_size"]
    # One thread: counts do not depend on it, and torch's default of one per core crawled on a shared machine.
    cpu = {"name": "cpu", "threads": 1}
    on_torch = run_case(model=model, backend="torch", target=cpu, metrics=figures, batch=2)
    on_ort = run_case(model=model, backend="onnxruntime", target=cpu, metrics=figures, batch=2)
    torch_macs, ort_macs = on_torch.metrics["macs"], on_ort.metrics["macs"]
    assert torch_macs.value == ort_macs.value > 0
    assert torch_macs.details["items"] == 2 and ort_macs.details["batch_total"] == 2 * ort_macs.details["per_item"]
    assert torch_macs.details["counted_from"] == "onnx export of the torch module"
    assert ort_macs.details["counted_from"] == "onnx"
    assert on_torch.metrics["parameters"].details["count"] > on_ort.metrics["parameters"].details["count"]
