"""Every built-in model source on both built-in backends, with several, integer and scalar inputs."""

from __future__ import annotations

import numpy as np
import pytest

from benchharness.cli import main
from benchharness.errors import BenchError
from benchharness.inputs import make_inputs, resolve_shape
from benchharness.results import load_results
from benchharness.signature import InputSpec

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

QUICK = "measure: {min_samples: 10, max_time: 0.2, target_ci: 0.05, warmup: {max_time: 0.2}}\n"


def run(suite, tmp_path, launcher="inline"):
    """Run ``suite``, by default in this process (``--launcher inline``): what most tests here check is how each
    model source's inputs and conversions reach the results, not worker isolation, and a worker per case would
    import torch again each time."""
    out = tmp_path / "out"
    code = main(["run", str(suite), "-o", str(out), "-q", "--launcher", launcher])
    files = sorted(out.glob("*.json"))
    return code, load_results(files[-1])


def test_inputs_are_reproducible_and_respect_specs():
    specs = [
        InputSpec(name="ids", shape=[2, 5], dtype="int64", range=(3, 7)),
        InputSpec(name="rate", shape=[], dtype="int32", value=16000),
        InputSpec(name="x", shape=[2, 3], dtype="float16"),
        InputSpec(name="mask", shape=[2, 5], dtype="bool"),
        InputSpec(name="w", shape=[2], value=[1.5, 2.5]),
    ]
    a, b = make_inputs(specs, seed=1), make_inputs(specs, seed=1)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["ids"].dtype == np.int64 and a["ids"].min() >= 3 and a["ids"].max() < 7
    assert a["rate"].shape == () and a["rate"] == 16000 and a["rate"].dtype == np.int32
    assert a["x"].dtype == np.float16 and 0 <= a["x"].min() and a["x"].max() < 1
    assert a["mask"].dtype == np.bool_
    np.testing.assert_array_equal(a["w"], [1.5, 2.5])
    c = make_inputs(specs, seed=2)
    assert not np.array_equal(a["x"], c["x"])
    # An input's values depend on its name and the seed only.
    np.testing.assert_array_equal(make_inputs(specs[2:3], seed=1)["x"], a["x"])


def test_symbolic_dimensions():
    spec = InputSpec(name="ids", shape=["batch", "seq", 4])
    assert resolve_shape(spec, batch=3, dims={"seq": 7}) == [3, 7, 4]
    with pytest.raises(BenchError) as err:
        resolve_shape(spec, batch=3, dims={})
    assert str(err.value) == (
        "input 'ids': dimension 'seq' has no value; set it in the model's 'dims' (set: none) or use 'batch'"
    )


def test_python_source_with_integer_and_scalar_inputs(write_suite, tmp_path):
    suite = write_suite(
        """
        name: tokens
        models:
          - source: python
            factory: bh_models:token_model
            kwargs: {vocab: 50}
            inputs:
              - {name: ids, shape: [batch, seq], dtype: int64, range: [0, 50]}
              - {name: scale, shape: [], dtype: float32, value: 0.5}
            dims: {seq: 12}
        backends: [{name: torch}, {name: onnxruntime}]
        targets: [{name: cpu, threads: 1}]
        batch_sizes: [1, 3]
        """
        + QUICK
    )
    code, results = run(suite, tmp_path)
    assert code == 0, [c.error for c in results.cases]
    assert [c.case_id for c in results.cases] == [
        "token_model/none/torch/cpu/latency/b1",
        "token_model/none/torch/cpu/latency/b3",
        "token_model/none/onnxruntime/cpu/latency/b1",
        "token_model/none/onnxruntime/cpu/latency/b3",
    ]
    ort_b3 = results.cases[3]
    assert [i.model_dump(mode="json", exclude_none=True) for i in ort_b3.runtime.model.inputs] == [
        {"name": "ids", "shape": [3, 12], "dtype": "int64", "range": [0.0, 50.0]},
        {"name": "scale", "shape": [], "dtype": "float32", "value": 0.5},
    ]
    assert ort_b3.runtime.model.info["converted_by"] == "torch-onnx"
    assert ort_b3.runtime.backend["threads"] == 1
    assert ort_b3.runtime.backend["providers"] == ["CPUExecutionProvider"]
    torch_b1 = results.cases[0]
    assert torch_b1.runtime.backend["threads"] == 1
    assert torch_b1.metrics["model_size"].details["parameters"] == 50 * 16 + 16 * 4 + 4


def test_torchscript_and_onnx_file_sources(write_suite, tmp_path):
    import bh_models

    torch.manual_seed(0)
    module = bh_models.tiny_mlp().eval()
    torch.jit.save(torch.jit.script(module), str(tmp_path / "mlp.pt"))
    torch.onnx.export(
        module,
        (torch.zeros(1, 8),),
        str(tmp_path / "mlp.onnx"),
        dynamo=False,
        input_names=["features"],
        dynamic_axes={"features": {0: "N"}},
    )
    suite = write_suite(
        """
        name: files
        models:
          - {source: torchscript, path: mlp.pt, name: mlp-ts, inputs: [{name: input, shape: [batch, 8]}]}
          - {source: onnx, path: mlp.onnx, name: mlp-onnx}
        backends: [{name: torch}, {name: onnxruntime}]
        exclude: [{model: mlp-onnx, backend: torch}]
        batch_sizes: [2]
        """
        + QUICK
    )
    code, results = run(suite, tmp_path)
    assert code == 0, [c.error for c in results.cases]
    cases = {c.case_id: c for c in results.cases}
    assert list(cases) == [
        "mlp-ts/none/torch/cpu/latency/b2",
        "mlp-ts/none/onnxruntime/cpu/latency/b2",
        "mlp-onnx/none/onnxruntime/cpu/latency/b2",
    ]
    assert cases["mlp-ts/none/torch/cpu/latency/b2"].runtime.model.format == "torchscript"
    assert cases["mlp-ts/none/onnxruntime/cpu/latency/b2"].runtime.model.info["converted_by"] == "torch-onnx"
    onnx_case = cases["mlp-onnx/none/onnxruntime/cpu/latency/b2"]
    # The graph's dynamic first dimension became the batch.
    assert [i.model_dump(exclude_none=True) for i in onnx_case.runtime.model.inputs] == [
        {"name": "features", "shape": [2, 8], "dtype": "float32"}
    ]
    assert onnx_case.metrics["model_size"].details["bytes"] == (tmp_path / "mlp.onnx").stat().st_size


def test_python_source_errors_are_recorded(write_suite, tmp_path):
    suite = write_suite(
        """
        name: bad
        models:
          - {source: python, factory: bh_models:not_a_module, inputs: [{name: x, shape: [1]}]}
          - {source: python, factory: bh_models:missing, inputs: [{name: x, shape: [1]}]}
        backends: [{name: torch}]
        """
        + QUICK
    )
    # In worker processes: the factory's module must be found there too (on the worker's PYTHONPATH, not in this
    # process's sys.modules), and a python model entry reaches the worker as JSON.
    code, results = run(suite, tmp_path, launcher="process")
    assert code == 1
    assert [c.error for c in results.cases] == [
        "python source: bh_models:not_a_module returned str, not torch.nn.Module",
        "python source: cannot import 'bh_models:missing': module 'bh_models' has no attribute 'missing'",
    ]
