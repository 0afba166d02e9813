"""Quantization compressions: what each puts in the graph, how close its outputs stay, calibration on the
training split, the skips of torch-only variants, an end-to-end run with accuracy, and bad options.

Tolerances.  A tiny conv net trained on digits (8x8, 1 channel) reaches ~95% test accuracy; int8 rounding moves
logits by a few percent of their range, so top-1 agreement with float32 must stay >= 95% on the test split
(it is ~99-100% here), and for the calibrated static model the largest logit change must stay under 25% of the
largest float32 logit (a per-tensor activation scale of 8 bits over a range R errs by R/255 per layer; three
layers compound, far below 25%; a broken scale or a wrong channel axis gives changes of the logits' own size).
fp16/bf16 keep 11/8 mantissa bits: their logits must agree to 1% / 5% of the largest logit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import torch_on_one_thread

from benchharness.api import CompressionContext, DatasetInputs, ModelArtifact
from benchharness.cli import main
from benchharness.results import load_results
from benchharness.signature import InputSpec

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from benchharness_compress import quantization as q  # noqa: E402

QUICK = "measure: {min_samples: 5, max_time: 0.05, warmup: {max_time: 0.02, min_iterations: 2}}\n"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    """Digits as (N, 1, 8, 8) float32 in [0, 1], split 75/25 with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, data.target, test_size=0.25, random_state=0)
    return {"train_x": xtr, "train_y": ytr, "test_x": xte, "test_y": yte}


@pytest.fixture(scope="module")
def net(digits: dict[str, np.ndarray]) -> torch.nn.Module:
    """A tiny conv net (two convs and a Linear) trained for a few seconds on the digits training split."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 10),
    )  # fmt: skip
    x, y = torch.from_numpy(digits["train_x"]), torch.from_numpy(digits["train_y"]).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    # On one thread: while other processes used the 2 cores (load 2.7), torch's two threads took 1.5-16.7 s for
    # these 80 steps and one thread 2.0-2.8 s (median ratio 3.8 over 4 interleaved rounds).
    with torch_on_one_thread():
        for _ in range(80):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(digits["test_x"])).argmax(1).numpy() == digits["test_y"]).mean()
    assert accuracy > 0.9, accuracy  # the comparisons below need a model that really classifies
    return model


def _export(module: torch.nn.Module, path: Path, batch: int, shape: tuple[int, ...] = (1, 8, 8)) -> ModelArtifact:
    torch.onnx.export(
        module, (torch.zeros(batch, *shape),), str(path), input_names=["x"], dynamo=False, opset_version=17
    )
    return ModelArtifact(
        format="onnx",
        content_hash="test",
        path=path,
        inputs=[InputSpec(name="x", shape=[batch, *shape], dtype="float32")],
    )


def _ctx(tmp_path: Path, train_x: np.ndarray, asked: list[str | None] | None = None) -> CompressionContext:
    def loader(split: str | None) -> DatasetInputs:
        if asked is not None:
            asked.append(split)
        return DatasetInputs(
            name="digits", inputs={"x": train_x}, labels=np.zeros(len(train_x)), fed="x", info={"split": split}
        )

    return CompressionContext(base_dir=tmp_path, cache_dir=tmp_path / "cache", seed=0, dataset_loader=loader)


def _apply(cls: type, artifact: ModelArtifact, ctx: CompressionContext, tmp_path: Path, **options) -> ModelArtifact:
    """Apply, then save and restore as the core does (so what is tested is what the cache holds)."""
    compression = cls()
    out = compression.apply(artifact, cls.Options(**options), ctx)
    folder = tmp_path / f"saved-{cls.name}"
    folder.mkdir(parents=True)
    return compression.restore(compression.save(out, folder), out.format, out.info)


def _ort_logits(path: Path, x: np.ndarray, batch: int) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    whole = len(x) // batch * batch
    return np.concatenate([session.run(None, {"x": x[i : i + batch]})[0] for i in range(0, whole, batch)])


def _torch_logits(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).float().numpy()


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


@pytest.mark.parametrize("batch", [1, 3])
def test_static_qdq_is_per_channel_calibrated_on_the_training_split_and_close_to_float(tmp_path, digits, net, batch):
    import onnx

    artifact = _export(net, tmp_path / "net.onnx", batch)
    asked: list[str | None] = []
    ctx = _ctx(tmp_path, digits["train_x"], asked)
    out = _apply(q.QuantizeOrtStatic, artifact, ctx, tmp_path, calibration_samples=100)
    assert asked == ["train"]
    used = 100 // batch * batch  # whole batches of the exported model
    facts = ctx.facts
    assert facts["calibration_samples"] == used and facts["calibration_batches"] == used // batch
    assert facts["calibration_split"] == "train" and facts["format"] == "QDQ" and facts["per_channel"] is True
    graph = onnx.load(str(out.path)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") == facts["quantize_linear"] > 0
    assert ops.count("DequantizeLinear") == facts["dequantize_linear"] >= ops.count("QuantizeLinear")
    # per channel: each Conv's weight is dequantized with one scale per output channel
    inits = _initializers(out.path)
    producers = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 2
    for conv, channels in zip(convs, (8, 16), strict=True):
        dq = producers[conv.input[1]]
        assert dq.op_type == "DequantizeLinear"
        assert inits[dq.input[0]].dtype == np.int8 and inits[dq.input[1]].shape == (channels,)
    ref = _ort_logits(artifact.path, digits["test_x"], batch)
    got = _ort_logits(out.path, digits["test_x"], batch)
    assert _agreement(ref, got) >= 0.95
    assert np.abs(ref - got).max() <= 0.25 * np.abs(ref).max()


def test_static_per_tensor_and_a_zoo_model_get_one_scale_per_output_channel(tmp_path, digits):
    import onnx
    from benchharness_zoo.models import build_model

    model = build_model("mobilenet_v2", width=0.25, input_size=32, num_classes=10)
    artifact = _export(model, tmp_path / "m.onnx", 2, (3, 32, 32))
    images = np.repeat(np.kron(digits["train_x"][:64], np.ones((1, 1, 4, 4), np.float32)), 3, axis=1)
    ctx = _ctx(tmp_path, images)
    out = _apply(q.QuantizeOrtStatic, artifact, ctx, tmp_path, calibration_samples=16)
    assert ctx.facts["calibration_samples"] == 16
    graph = onnx.load(str(out.path)).graph
    inits = _initializers(out.path)
    producers = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) > 10
    for conv in convs:
        dq = producers[conv.input[1]]
        weight = inits[dq.input[0]]
        assert inits[dq.input[1]].shape == (weight.shape[0],)  # one scale per output channel


def test_ort_dynamic_puts_integer_ops_in_the_graph(tmp_path, digits, net):
    artifact = _export(net, tmp_path / "net.onnx", 4)
    ctx = _ctx(tmp_path, digits["train_x"])
    out = _apply(q.QuantizeOrtDynamic, artifact, ctx, tmp_path, weight_type="qint8")
    ops = q.onnx_op_counts(out.path)
    assert ops.get("MatMulInteger", 0) == 1 and ops.get("ConvInteger", 0) == 2 and ops["DynamicQuantizeLinear"] >= 3
    assert ctx.facts["nodes_quantized"] == 3 and ctx.facts["ops"]["MatMulInteger"] == 1
    ref = _ort_logits(artifact.path, digits["test_x"], 4)
    assert _agreement(ref, _ort_logits(out.path, digits["test_x"], 4)) >= 0.95


def test_torch_dynamic_quantizes_linear_layers_and_runs_on_torch_only(tmp_path, digits, net):
    artifact = ModelArtifact(format="torch", content_hash="t", obj=net)
    ctx = _ctx(tmp_path, digits["train_x"])
    out = _apply(q.QuantizeDynamicTorch, artifact, ctx, tmp_path, dtype="qint8")
    quantized = [m for m in out.obj.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert len(quantized) == 1 == ctx.facts["layers_quantized"]
    assert quantized[0].weight().dtype == torch.qint8
    ref, got = _torch_logits(net, digits["test_x"]), _torch_logits(out.obj, digits["test_x"])
    assert _agreement(ref, got) >= 0.95
    compression = q.QuantizeDynamicTorch()
    assert compression.unsupported_backend("torch", compression.Options()) is None
    reason = compression.unsupported_backend("onnxruntime", compression.Options())
    assert "quantized::linear_dynamic" in reason
    with pytest.raises(Exception, match="linear_dynamic"):  # the reason is what really happens
        torch.onnx.export(out.obj, (torch.zeros(1, 1, 8, 8),), str(tmp_path / "x.onnx"), dynamo=False)


def test_half_and_bf16_torch_take_float32_and_stay_close(tmp_path, digits, net):
    ref = _torch_logits(net, digits["test_x"])
    for cls, tolerance in ((q.HalfTorch, 0.01), (q.Bf16Torch, 0.05)):
        ctx = _ctx(tmp_path, digits["train_x"])
        out = _apply(cls, ModelArtifact(format="torch", content_hash="t", obj=net), ctx, tmp_path)
        assert out.obj.inner[0].weight.dtype == getattr(torch, cls.dtype_name)  # restored from the pickle
        got = _torch_logits(out.obj, digits["test_x"])
        assert got.dtype == np.float32
        assert np.abs(ref - got).max() <= tolerance * np.abs(ref).max()
        assert _agreement(ref, got) >= 0.98
    assert next(net.parameters()).dtype == torch.float32  # the input model is not changed


def test_half_onnx_keeps_float32_io(tmp_path, digits, net):
    import onnx

    artifact = _export(net, tmp_path / "net.onnx", 2)
    ctx = _ctx(tmp_path, digits["train_x"])
    out = _apply(q.HalfOnnx, artifact, ctx, tmp_path)
    graph = onnx.load(str(out.path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert ctx.facts["fp16_initializers"] == 6 and ctx.facts["casts"] >= 2
    ref, got = _ort_logits(artifact.path, digits["test_x"], 2), _ort_logits(out.path, digits["test_x"], 2)
    assert np.abs(ref - got).max() <= 0.01 * np.abs(ref).max()


@pytest.fixture
def openvino_core():
    pytest.importorskip("nncf")
    ov = pytest.importorskip("openvino")
    return ov.Core()


def _ov_logits(core, path: Path, x: np.ndarray, batch: int) -> np.ndarray:
    compiled = core.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": 1})
    whole = len(x) // batch * batch
    return np.concatenate([compiled(x[i : i + batch])[0] for i in range(0, whole, batch)])


def test_nncf_quantize_gives_a_fake_quantize_ir_calibrated_on_training_data(tmp_path, digits, net, openvino_core):
    artifact = _export(net, tmp_path / "net.onnx", 2)
    asked: list[str | None] = []
    ctx = _ctx(tmp_path, digits["train_x"], asked)
    out = _apply(q.QuantizeNncf, artifact, ctx, tmp_path, subset_size=50)
    assert asked == ["train"] and ctx.facts["calibration_samples"] == 50
    assert out.path.name == "model.xml" and out.path.with_suffix(".bin").is_file()  # both files cached
    ops = q.ir_op_counts(openvino_core.read_model(str(out.path)))
    assert ops["FakeQuantize"] == ctx.facts["fake_quantize"] > 0
    ref = _ort_logits(artifact.path, digits["test_x"], 2)
    got = _ov_logits(openvino_core, out.path, digits["test_x"], 2)
    assert _agreement(ref, got) >= 0.95
    assert np.abs(ref - got).max() <= 0.25 * np.abs(ref).max()
    assert "openvino backend" in q.QuantizeNncf().unsupported_backend("onnxruntime", q.QuantizeNncf.Options())


def test_nncf_compress_weights_stores_int8_weights(tmp_path, digits, net, openvino_core):
    artifact = _export(net, tmp_path / "net.onnx", 2)
    ctx = _ctx(tmp_path, digits["train_x"])
    ref = _ort_logits(artifact.path, digits["test_x"], 2)
    # two convs and the Linear: signed weights; asymmetric: unsigned weights and their unsigned zero points
    for mode, constants in (("int8_sym", {"i8": 3}), ("int8_asym", {"u8": 6})):
        ctx = _ctx(tmp_path, digits["train_x"])
        out = _apply(q.CompressWeightsNncf, artifact, ctx, tmp_path / mode, mode=mode)
        assert ctx.facts["low_precision_constants"] == constants
        assert _agreement(ref, _ov_logits(openvino_core, out.path, digits["test_x"], 2)) >= 0.95


ZOO = (
    "  - {source: zoo, arch: resnet, width: 0.25, depth: 0.5, input_size: 32, num_classes: 10, weights: digits,"
    " dataset: {name: digits}}\n"
)


def _cases(out: Path) -> dict:
    newest = max(out.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return {c.case_id: c for c in load_results(newest).cases}


@pytest.mark.timeout(1200)  # the zoo model trains on digits here when no earlier test did: minutes on shared cores
def test_end_to_end_static_int8_records_accuracy_and_facts_and_torch_dynamic_skips_elsewhere(write_suite, tmp_path):
    suite = write_suite(
        "name: q\nmodels:\n" + ZOO
        + "compressions: [none, {name: quantize-ort-static, calibration_samples: 64}, quantize-dynamic-torch]\n"
        + "backends: [{name: onnxruntime, threads: 1}, {name: openvino, threads: 1}]\n"
        + "metrics: [latency, accuracy, fidelity]\n"
        + QUICK
    )  # fmt: skip
    # In this process (inline): what is checked is what the quantizer did and what it cost in accuracy, not worker
    # isolation (test_compression_core runs compressions in workers); a worker per case imported torch, onnxruntime
    # and openvino again each time: 4.5x as long (26.2 s and 26.3 s against 5.9 s and 5.8 s, in workers and inline
    # interleaved in one session after the zoo model was trained, load average 1.8-2.6).
    assert main(["run", str(suite), "-o", str(tmp_path / "out"), "-q", "--launcher", "inline"]) in (0, 1)
    cases = _cases(tmp_path / "out")
    static = next(c for i, c in cases.items() if "/quantize-ort-static/onnxruntime/" in i)
    assert static.case_id.startswith("resnet") and static.status == "ok", static.error
    (step,) = static.runtime.model.info["compressions"]
    assert step["format"] == "QDQ" and step["calibration_samples"] == 64 and step["calibration_split"] == "train"
    assert step["quantize_linear"] > 0
    accuracy = static.metrics["accuracy"].value
    base = next(c for i, c in cases.items() if "/none/onnxruntime/" in i).metrics["accuracy"].value
    assert 50 < base <= 100 and abs(accuracy - base) < 10, (base, accuracy)  # top-1 in percent
    assert "fidelity" in static.metrics
    for backend in ("onnxruntime", "openvino"):
        skipped = next(c for i, c in cases.items() if f"/quantize-dynamic-torch/{backend}/" in i)
        assert skipped.status == "skipped" and "quantized::linear_dynamic" in skipped.error
    json.dumps(step)  # the facts are JSON-safe


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{name: quantize-ort-static, calibrate_method: best}", "calibrate_method"),
        ("{name: quantize-ort-static, calibration_samples: 0}", "calibration_samples"),
        ("{name: compress-weights-nncf, mode: int2}", "mode"),
        ("{name: compress-weights-nncf, mode: int8_sym, group_size: 64}", "group_size applies to the int4 modes only"),
        ("{name: quantize-dynamic-torch, dtype: int4}", "dtype"),
    ],
)
def test_bad_options_are_one_line_errors(write_suite, capsys, entry, expected):
    suite = write_suite(f"name: q\nmodels:\n{ZOO}compressions: [{entry}]\nbackends: [{{name: onnxruntime}}]\n")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err, err
