"""The OpenVINO backend and IR source: parity with torch and ONNX Runtime, IR models, options, devices, async requests."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from benchharness.cli import main
from benchharness.errors import BenchError, SuiteError
from benchharness.results import load_results
from benchharness.testing import build_case, loaded_context, run_case

ov = pytest.importorskip("openvino")

#: f32 inference on three frameworks: the zoo models' logits (magnitude up to ~5) differed by at most 4.2e-6.
ATOL = 1e-4
RTOL = 1e-4
ZOO = {"source": "zoo", "width": 0.5, "input_size": 64, "num_classes": 10}
QUICK = "measure: {min_samples: 10, max_time: 0.2, target_ci: 0.05, warmup: {max_time: 0.2}}\n"


def only(outputs: dict[str, np.ndarray]) -> np.ndarray:
    (value,) = outputs.values()
    return value


def outputs_of(backend: dict, model: dict, **kwargs) -> tuple[dict[str, np.ndarray], dict]:  # type: ignore[type-arg]
    """One inference of ``model`` on ``backend`` in this process: named outputs and runtime info."""
    with loaded_context(model=model, backend=backend, **kwargs) as ctx:
        return ctx.backend.to_numpy(ctx.backend.infer(ctx.feed)), ctx.backend.runtime_info()


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("arch", ["mobilenet_v2", "shufflenet_v2"])
def test_outputs_match_torch_and_onnxruntime_at_f32(arch: str) -> None:
    """The same seeded inputs through torch eager, and its ONNX export through ORT and OpenVINO."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    model = {**ZOO, "arch": arch}
    reference, _ = outputs_of({"name": "torch", "threads": 1}, model, batch=2)
    ort, _ = outputs_of({"name": "onnxruntime", "threads": 1}, model, batch=2)
    ours, info = outputs_of({"name": "openvino", "threads": 1}, model, batch=2)
    assert info["precision"] == "f32"
    assert list(ours) == list(ort)  # the ONNX graph's output names, as ONNX Runtime gives them
    assert only(ours).shape == (2, 10)
    np.testing.assert_allclose(only(ours), only(reference), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(only(ort), only(reference), rtol=RTOL, atol=ATOL)
    assert not np.allclose(only(ours), 0)


def test_bf16_precision_is_applied_and_leaves_the_f32_tolerance() -> None:
    """Where the CPU computes in bf16, asking for it changes the logits by more than the f32 tolerance."""
    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16")
    model = {**ZOO, "arch": "mobilenet_v2"}
    f32, _ = outputs_of({"name": "openvino", "threads": 1}, model)
    bf16, info = outputs_of({"name": "openvino", "threads": 1, "precision": "bf16"}, model)
    assert info["precision"] == "bf16"
    assert not np.allclose(only(bf16), only(f32), rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- IR models


def odd_ir(path: Path) -> Path:
    """An IR shaped like real users' models, saved with ``openvino.save_model``.

    ``tokens`` i64 [?, ?], ``scale`` a f32 scalar, ``state`` f32 [?, 2, ?] with a constant weight;
    outputs ``summed`` = sum(tokens, axis 1) * scale and ``next_state`` = state * w + scale.
    """
    import openvino.opset13 as ops

    tokens = ops.parameter(ov.PartialShape([-1, -1]), ov.Type.i64, name="tokens")
    scale = ops.parameter(ov.PartialShape([]), ov.Type.f32, name="scale")
    state = ops.parameter(ov.PartialShape([-1, 2, -1]), ov.Type.f32, name="state")
    for param, name in ((tokens, "tokens"), (scale, "scale"), (state, "state")):
        param.output(0).set_names({name})
    summed = ops.multiply(ops.convert(ops.reduce_sum(tokens, ops.constant(np.int64(1))), "f32"), scale)
    weight = ops.constant(np.array([[0.5], [2.0]], dtype=np.float32))  # [2, 1]: per channel
    next_state = ops.add(ops.multiply(state, weight), scale)
    summed.output(0).set_names({"summed"})
    next_state.output(0).set_names({"next_state"})
    model = ov.Model([summed, next_state], [tokens, scale, state], "odd")
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path


def test_ir_source_describes_dynamic_dims_scalars_and_types(tmp_path: Path) -> None:
    from benchharness_openvino import IrFileOptions, IrFileSource

    from benchharness.api import ModelContext

    odd_ir(tmp_path / "odd.xml")
    ctx = ModelContext(base_dir=tmp_path, cache_dir=tmp_path / "cache", seed=0)
    signature = IrFileSource().describe(IrFileOptions(path="odd.xml"), ctx)
    assert signature.format == "openvino-ir"
    assert [i.model_dump(exclude_none=True) for i in signature.inputs] == [
        {"name": "tokens", "shape": ["batch", "tokens.1"], "dtype": "int64"},
        {"name": "scale", "shape": [], "dtype": "float32"},
        {"name": "state", "shape": ["batch", 2, "state.2"], "dtype": "float32"},
    ]
    assert [o.model_dump(exclude_none=True) for o in signature.outputs] == [
        {"name": "summed", "shape": ["summed.0"], "dtype": "float32"},
        {"name": "next_state", "shape": ["next_state.0", 2, "next_state.2"], "dtype": "float32"},
    ]
    assert signature.parameters == 2  # the float weight; the integer axis constant is not a weight
    assert signature.details == {
        "file_bytes": (tmp_path / "odd.xml").stat().st_size + (tmp_path / "odd.bin").stat().st_size,
        "weights_file": "odd.bin",
        "weights_bytes": (tmp_path / "odd.bin").stat().st_size,
    }


def test_ir_model_runs_with_its_dims_and_computes_the_right_values(tmp_path: Path) -> None:
    odd_ir(tmp_path / "odd.xml")
    model = {"source": "openvino-ir", "path": "odd.xml", "dims": {"tokens.1": 5, "state.2": 3},
             "inputs": [{"name": "tokens", "range": [0, 10]}, {"name": "scale", "value": 0.5}]}  # fmt: skip
    with loaded_context(model=model, backend="openvino", batch=2, base_dir=tmp_path) as ctx:
        outputs = ctx.backend.to_numpy(ctx.backend.infer(ctx.feed))
        info = ctx.backend.runtime_info()
        tokens, state = ctx.inputs["tokens"], ctx.inputs["state"]
    assert info["reshaped"] == {"tokens": [2, 5], "state": [2, 2, 3]}  # the scalar is static already
    assert list(outputs) == ["summed", "next_state"]
    np.testing.assert_allclose(outputs["summed"], tokens.sum(axis=1) * 0.5, rtol=1e-6)
    np.testing.assert_allclose(outputs["next_state"], state * np.array([0.5, 2.0]).reshape(2, 1) + 0.5, rtol=1e-6)

    result = run_case(model=model, backend="openvino", batch=2, metrics=["latency", "model_size"], base_dir=tmp_path)
    assert result.runtime.model.format == "openvino-ir"
    assert "converted_by" not in result.runtime.model.info  # read as it is, no conversion
    size = (tmp_path / "odd.xml").stat().st_size + (tmp_path / "odd.bin").stat().st_size
    assert result.metrics["model_size"].details["bytes"] == size


def test_onnx_exported_to_ir_gives_the_onnx_outputs(tmp_path: Path) -> None:
    """A zoo model's ONNX export, saved as IR (f32 weights): the IR source runs it to the same logits."""
    pytest.importorskip("torch")
    model = {**ZOO, "arch": "mobilenet_v2"}
    with loaded_context(model=model, backend={"name": "openvino", "threads": 1}) as ctx:
        from_onnx = ctx.backend.to_numpy(ctx.backend.infer(ctx.feed))
        inputs = ctx.inputs
        ov.save_model(ov.Core().read_model(str(ctx.artifact.path)), str(tmp_path / "m.xml"), compress_to_fp16=False)
    ir_model = {"source": "openvino-ir", "path": "m.xml"}
    with loaded_context(model=ir_model, backend={"name": "openvino", "threads": 1}, base_dir=tmp_path) as ctx:
        np.testing.assert_array_equal(ctx.inputs["input"], inputs["input"])
        from_ir = ctx.backend.to_numpy(ctx.backend.infer(ctx.feed))
        assert ctx.artifact.format == "openvino-ir"
    assert list(from_ir) == list(from_onnx)
    np.testing.assert_allclose(only(from_ir), only(from_onnx), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.onnx", b"<net/>", "not an OpenVINO IR model: expected the .xml file (with its .bin beside it)"),
        ("m.xml", b"garbage", "not an OpenVINO IR model: no <net> element at its start"),
        ("m.xml", b"<?xml version='1.0'?><html></html>", "not an OpenVINO IR model: no <net> element at its start"),
    ],
)
def test_not_an_ir_is_one_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    from benchharness_openvino.graph import describe_ir

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BenchError) as err:
        describe_ir(path)
    assert str(err.value) == f"{path}: {message}"


def test_an_ir_without_its_weights_is_one_line_in_validate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # type: ignore[type-arg]
    odd_ir(tmp_path / "odd.xml")
    (tmp_path / "odd.bin").unlink()
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nmodels:\n  - {source: openvino-ir, path: odd.xml}\nbackends: [{name: openvino}]\n")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{suite}:3 models[0].path: {tmp_path / 'odd.xml'}: not a readable OpenVINO IR model: "
        "Empty weights data in bin file or bin file cannot be found!"
    )


# --------------------------------------------------------------------------- options and devices


def test_options_reach_compile_model_and_are_read_back() -> None:
    model = {**ZOO, "arch": "squeezenet"}
    backend = {"name": "openvino", "threads": 1, "hint": "latency", "precision": "f32", "streams": 1}
    with loaded_context(model=model, backend=backend, threads=2) as ctx:
        info = ctx.backend.runtime_info()
        assert ctx.backend.concurrency(None) == info["optimal_requests"] == 1
    assert info["framework"] == "openvino" and info["version"] == ov.get_version()
    assert info["execution_devices"] == ["CPU"]
    assert info["device_names"] == {"CPU": ov.Core().get_property("CPU", "FULL_DEVICE_NAME")}
    assert (info["hint"], info["streams"], info["threads"], info["precision"]) == ("latency", 1, 1, "f32")

    backend = {"name": "openvino", "hint": "throughput", "streams": 2, "requests": 3}
    with loaded_context(model=model, backend=backend, threads=2) as ctx:
        info = ctx.backend.runtime_info()
        assert ctx.backend.concurrency(None) == 3  # the requests option
        assert ctx.backend.concurrency(5) == 5  # the scenario's own choice wins
    assert (info["hint"], info["streams"], info["threads"], info["requests_hint"]) == ("throughput", 2, 2, 3)


def test_the_model_cache_folder_is_used(tmp_path: Path) -> None:
    model = {**ZOO, "arch": "squeezenet"}
    backend = {"name": "openvino", "cache_dir": str(tmp_path / "ov-cache")}
    _, info = outputs_of(backend, model)
    assert info["cache_dir"] == str(tmp_path / "ov-cache")
    assert any((tmp_path / "ov-cache").iterdir())  # the compiled blob


def test_an_unavailable_device_fails_the_case_naming_the_devices() -> None:
    available = ov.Core().available_devices
    if any(d.split(".")[0] == "NPU" for d in available):
        pytest.skip("this machine has an NPU")
    for device, missing in (("NPU", "NPU"), ("HETERO:NPU,CPU", "NPU")):
        result = run_case(model={**ZOO, "arch": "squeezenet"}, backend={"name": "openvino", "device": device},
                          check=False)  # fmt: skip
        assert result.status == "error"
        assert result.error == (
            f"openvino: device {missing!r} is not available on this machine; available devices: {', '.join(available)}"
        )


def test_a_malformed_device_is_a_suite_error() -> None:
    with pytest.raises(SuiteError) as err:
        build_case(model={**ZOO, "arch": "squeezenet"}, backend={"name": "openvino", "device": "CPU 0"})
    assert str(err.value) == (
        "backends[0].device: expected a device such as CPU, GPU.1, NPU, AUTO or HETERO:GPU,CPU, got 'CPU 0'"
    )
    from benchharness_openvino import OpenVinoOptions

    assert OpenVinoOptions.model_validate({"device": " auto:gpu,cpu"}).device == "AUTO:GPU,CPU"
    assert OpenVinoOptions.model_validate({"device": "BATCH:GPU(4)"}).device == "BATCH:GPU(4)"


# --------------------------------------------------------------------------- asynchronous requests


def test_submit_runs_requests_concurrently_and_calls_done_once_each() -> None:
    model = {**ZOO, "arch": "mobilenet_v2"}
    backend = {"name": "openvino", "hint": "throughput", "requests": 3}
    rng = np.random.default_rng(1)
    with loaded_context(model=model, backend=backend, threads=2) as ctx:
        b = ctx.backend
        assert b.asynchronous is True
        feeds = [b.prepare({"input": rng.random((1, 3, 64, 64), dtype=np.float32)}) for _ in range(4)]
        expected = [only(b.to_numpy(b.infer(feed))) for feed in feeds]  # infer binds each feed in turn
        assert b.concurrency(None) == 3
        got: list[tuple[int, np.ndarray, int]] = []
        lock = threading.Lock()

        def done_for(i: int):  # type: ignore[no-untyped-def]
            def done(outputs) -> None:  # type: ignore[no-untyped-def]
                with lock:
                    got.append((i, only(b.to_numpy(outputs)), threading.get_ident()))

            return done

        n = 12
        for i in range(n):
            b.submit(feeds[i % len(feeds)], done_for(i))
        b.wait_all()
        assert sorted(i for i, _, _ in got) == list(range(n))
        for i, output, _ in got:
            np.testing.assert_allclose(output, expected[i % len(feeds)], rtol=RTOL, atol=ATOL)
        assert threading.get_ident() not in {t for _, _, t in got}  # called back from OpenVINO's threads
        assert b.runtime_info()["async_requests"] == 3
        # A failing callback is raised by wait_all, after every request ran.
        calls = []

        def failing(outputs) -> None:  # type: ignore[no-untyped-def]
            calls.append(outputs)
            raise ValueError("done failed")

        for _ in range(4):
            b.submit(feeds[0], failing)
        with pytest.raises(ValueError, match="done failed"):
            b.wait_all()
        assert len(calls) == 4
        b.wait_all()  # the failure is raised once


# --------------------------------------------------------------------------- the CLI


def test_a_suite_runs_on_openvino_through_the_cli(tmp_path: Path) -> None:
    """ONNX and IR files, both scenarios, each case in its own worker process."""
    from conftest import write_onnx

    write_onnx(tmp_path / "m.onnx")  # x [N, 4] -> Identity -> x_out
    odd_ir(tmp_path / "odd.xml")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        """\
name: ov
models:
  - {source: onnx, path: m.onnx}
  - {source: openvino-ir, path: odd.xml, dims: {tokens.1: 5, state.2: 3}}
backends:
  - {name: openvino, threads: 1}
  - {name: openvino, label: ov-tput, hint: throughput, requests: 2, threads: 2}
scenarios: [latency, throughput]
metrics: [latency, throughput, request_latency, model_size]
exclude: [{backend: ov-tput, scenario: latency}]
batch_sizes: [2]
"""
        + QUICK
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q"]) == 0
    results = load_results(next(out.glob("*.json")))
    cases = {c.case_id: c for c in results.cases}
    assert list(cases) == [
        "m/none/openvino/cpu/latency/b2",
        "m/none/openvino/cpu/throughput/b2",
        "m/none/ov-tput/cpu/throughput/b2",
        "odd/none/openvino/cpu/latency/b2",
        "odd/none/openvino/cpu/throughput/b2",
        "odd/none/ov-tput/cpu/throughput/b2",
    ]
    assert all(c.status == "ok" and c.launcher == "process" for c in results.cases), [c.error for c in results.cases]
    latency = cases["m/none/openvino/cpu/latency/b2"]
    assert latency.metrics["latency"].value > 0
    assert [i.model_dump(exclude_none=True) for i in latency.runtime.model.inputs] == [
        {"name": "x", "shape": [2, 4], "dtype": "float32"}
    ]
    backend = latency.runtime.backend
    assert (backend["framework"], backend["threads"], backend["precision"], backend["hint"]) == (
        "openvino", 1, "f32", "latency",
    )  # fmt: skip
    assert backend["reshaped"] == {"x": [2, 4]}
    for model in ("m", "odd"):
        tput = cases[f"{model}/none/ov-tput/cpu/throughput/b2"]
        assert tput.metrics["throughput"].details["concurrency"] == 2
        assert tput.metrics["throughput"].details["concurrency_mode"] == "asynchronous requests (Backend.submit)"
        assert tput.metrics["throughput"].value > 0
        assert (tput.runtime.backend["hint"], tput.runtime.backend["async_requests"]) == ("throughput", 2)
        default = cases[f"{model}/none/openvino/cpu/throughput/b2"]
        assert default.metrics["throughput"].details["concurrency"] == default.runtime.backend["optimal_requests"]
    assert cases["odd/none/openvino/cpu/latency/b2"].runtime.model.format == "openvino-ir"


def test_openvino_devices_are_targets_that_skip_where_the_machine_lacks_them(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,  # type: ignore[type-arg]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import benchharness_openvino
    from conftest import write_onnx

    # This machine's GPU and NPU, as the target looks for them: absent here, whatever the host has.
    monkeypatch.setattr(
        benchharness_openvino, "DEVICE_FILES", {"GPU": str(tmp_path / "no-gpu*"), "NPU": "/nonexistent*"}
    )
    write_onnx(tmp_path / "m.onnx")
    suite = tmp_path / "devices.yaml"
    suite.write_text(
        "name: devices\n"
        "models: [{source: onnx, path: m.onnx, name: m}]\n"
        "backends: [{name: openvino}]\n"
        "targets:\n"
        "  - {name: openvino, device: GPU, label: gpu}\n"
        "  - {name: openvino, device: NPU, label: npu}\n"
        "  - {name: openvino, device: CPU, label: ovcpu}\n"
        "metrics: [latency]\n"
        "measure: {max_time: 0.2, min_time: 0.1, min_samples: 10, warmup: {min_time: 0.05, max_time: 0.1}}\n"
    )
    assert main(["run", str(suite), "-q", "-o", str(tmp_path / "out"), "--launcher", "inline"]) == 0
    (path,) = (tmp_path / "out").glob("*.json")
    cases = {c.config.target.label: c for c in load_results(path).cases}
    assert cases["gpu"].status == "skipped"
    assert cases["gpu"].error == f"no GPU for OpenVINO on this machine ({tmp_path / 'no-gpu*'} is missing)"
    assert cases["npu"].status == "skipped"
    assert cases["ovcpu"].status == "ok"
    assert cases["ovcpu"].runtime.target.device == "openvino:CPU"
    assert cases["ovcpu"].runtime.backend["device"] == "CPU"  # the backend compiled for the target's device
    assert "2 of 3 cases skipped: " in capsys.readouterr().err


def test_a_backend_device_that_contradicts_the_target_is_an_error() -> None:
    result = run_case(
        model={"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 32, "num_classes": 10},
        backend={"name": "openvino", "device": "GPU"},
        target={"name": "openvino", "device": "CPU"},
        metrics=["latency"],
        check=False,
    )
    assert result.status == "error"
    assert result.error == (
        "openvino: the backend's device 'GPU' differs from the target's 'CPU'; "
        "leave the backend's device out to use the target's"
    )
