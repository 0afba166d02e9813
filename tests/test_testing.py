"""benchharness.testing: plugin tests without a suite file, with real plugins (the built-ins and bh_testplugin)."""

from __future__ import annotations

import os
import time
import types
from pathlib import Path

import bh_testplugin
import numpy as np
import pytest

from benchharness.api import CaseContext, Metric, MetricValue, hookimpl
from benchharness.errors import BenchError
from benchharness.suite import load_suite
from benchharness.testing import (
    QUICK_MEASURE,
    FakeBackend,
    FakeBackendOptions,
    SuiteError,
    build_case,
    case_context,
    latency_value,
    loaded_context,
    make_host,
    make_metric,
    make_observer,
    make_scenario,
    run_case,
    run_suite,
    validate_suite,
)

TINY = {"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 32, "num_classes": 10}


@pytest.fixture(scope="module")
def host():  # type: ignore[no-untyped-def]
    """The built-ins and the test plugin, registered in this process."""
    return make_host(bh_testplugin)


@pytest.mark.parametrize(
    ("backend", "fmt", "converted_by"), [("torch", "torch", None), ("onnxruntime", "onnx", "torch-onnx")]
)
def test_zoo_model_runs_on_a_builtin_backend(backend: str, fmt: str, converted_by: str | None) -> None:
    result = run_case(model=TINY, backend={"name": backend, "threads": 1})
    assert result.status == "ok"
    assert result.case_id == f"mobilenet_v2-w0.25/none/{backend}/cpu/latency/b1"
    assert result.launcher == "inline"
    assert list(result.metrics) == ["latency", "throughput"]
    assert result.metric_errors == {}
    assert result.runtime.stage == "done"
    assert result.runtime.backend["framework"] == backend
    assert result.runtime.backend["threads"] == 1
    assert result.runtime.model.format == fmt
    assert result.runtime.model.info.get("converted_by") == converted_by
    assert [(i.name, i.shape, i.dtype) for i in result.runtime.model.inputs] == [("input", [1, 3, 32, 32], "float32")]
    latency = result.metrics["latency"]
    assert latency.unit == "ms"
    assert len(latency.samples) == latency.summary.count >= QUICK_MEASURE["min_samples"]
    assert latency.value == latency.summary.median / 1e6
    assert result.metrics["throughput"].value == pytest.approx(1 / (latency.value / 1e3))
    # the quick settings: 0.2 s of sampling (stretched at most 2x until min_samples), not the default 5 s
    assert (result.config.measure.max_time, result.config.measure.warmup.max_time) == (0.2, 0.1)
    assert latency.details["sampling_time_s"] < 5.0


def test_dummy_model_with_the_scripted_backend_and_every_axis(host) -> None:  # type: ignore[no-untyped-def]
    result = run_case(
        model={"source": "dummy", "size": 3},
        backend={"name": "scripted", "sleep_us": 200},
        target={"name": "virtual", "threads": 3},
        scenario={"name": "fixed", "iterations": 7},
        metrics=["calls", "mean_call", "phase_time", "model_size"],
        compressions=["tag", "tag"],
        batch=2,
        host=host,
    )
    assert result.case_id == "dummy/tag+tag/scripted/virtual/fixed/b2"
    assert list(result.metrics) == ["calls", "mean_call", "phase_time", "model_size"]
    assert result.metrics["calls"].value == 7.0
    samples = result.metrics["mean_call"].samples
    assert len(samples) == 7 and min(samples) >= 200_000
    assert result.metrics["phase_time"].details == {"phase_at_start": "open"}
    assert result.metrics["phase_time"].value >= sum(samples) / 1e9
    assert result.metrics["model_size"].value == 12 / 1e6
    info = dict(result.runtime.model.info)
    assert [step["name"] for step in info.pop("compressions")] == ["tag", "tag"]  # each step, cached by the core
    assert info == {"size_bytes": 12, "tagged": 2}
    assert [(i.name, i.shape) for i in result.runtime.model.inputs] == [("x", [2, 3])]
    # the target's environment was set for the case, then restored
    assert result.runtime.target.details == {"env": "3"}
    assert result.runtime.backend == {"framework": "scripted", "threads": 3}
    assert "BH_VIRTUAL_THREADS" not in os.environ


def test_measure_overrides_the_quick_settings_key_by_key(host) -> None:  # type: ignore[no-untyped-def]
    result = run_case(
        model={"source": "dummy"},
        backend="scripted",
        measure={"max_time": 0.3, "warmup": {"max_time": 0.05}},
        host=host,
    )
    assert result.config.measure.max_time == 0.3
    assert result.config.measure.min_samples == QUICK_MEASURE["min_samples"]
    assert result.config.measure.warmup.max_time == 0.05
    assert result.config.measure.warmup.window == QUICK_MEASURE["warmup"]["window"]


def test_a_failing_case_raises_unless_check_is_off(host) -> None:  # type: ignore[no-untyped-def]
    args = {"model": {"source": "dummy"}, "backend": {"name": "scripted", "mode": "error"}, "host": host}
    with pytest.raises(AssertionError) as info:
        run_case(**args)
    first = str(info.value).splitlines()[0]
    assert first == "case dummy/none/scripted/cpu/latency/b1 ended error: RuntimeError: scripted failure while loading"
    assert 'bh_testplugin.py", line' in str(info.value)  # the traceback follows
    result = run_case(**args, check=False)
    assert (result.status, result.error, result.runtime.stage) == (
        "error",
        "RuntimeError: scripted failure while loading",
        "backend",
    )


def test_a_failed_figure_raises_unless_check_is_off(host) -> None:  # type: ignore[no-untyped-def]
    args = {"model": {"source": "dummy"}, "backend": "scripted", "metrics": ["latency", "plain_float"], "host": host}
    message = "metric 'plain_float' failed: TypeError: returned float, expected MetricValue"
    with pytest.raises(AssertionError, match="^case dummy/none/scripted/cpu/latency/b1: figure 'plain_float': "):
        run_case(**args)
    result = run_case(**args, check=False)
    assert result.status == "ok"
    assert result.metric_errors == {"plain_float": message}


def test_bad_options_give_the_suites_one_line_errors(tmp_path: Path, host) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SuiteError) as info:
        run_case(
            model={"source": "dummy"},
            backend={"name": "scripted", "threads": 0},
            metrics=["latency", "latncy"],
            host=host,
        )
    problems = info.value.problems
    assert problems[0] == "backends[0].threads: Input should be greater than 0"
    assert problems[1].startswith("metrics[1]: unknown metric 'latncy' (did you mean 'latency'?); known: ")
    assert str(info.value) == "\n".join(problems)
    # The same suite as a file: the same lines, after its file:line.
    path = tmp_path / "suite.yaml"
    path.write_text(
        "name: s\nmodels: [{source: dummy}]\nbackends:\n  - {name: scripted, threads: 0}\nmetrics: [latency, latncy]\n"
    )
    with pytest.raises(SuiteError) as from_file:
        load_suite(path, host)
    assert from_file.value.problems == [f"{path}:4 {problems[0]}", f"{path}:5 {problems[1]}"]


def test_a_relative_model_path_resolves_against_base_dir(tmp_path: Path) -> None:
    from conftest import write_onnx

    write_onnx(tmp_path / "m.onnx")
    case = build_case(model={"source": "onnx", "path": "m.onnx"}, backend="onnxruntime", base_dir=tmp_path)
    assert (case.id, case.model.options) == ("m/none/onnxruntime/cpu/latency/b1", {"path": "m.onnx"})
    assert [(i.name, i.shape) for i in case.model.inputs] == [("x", ["batch", 4])]
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(BenchError, match=f"^base_dir {elsewhere} is not a folder$"):
        build_case(model={"source": "onnx", "path": "m.onnx"}, backend="onnxruntime", base_dir=elsewhere)
    elsewhere.mkdir()
    with pytest.raises(SuiteError) as info:
        build_case(model={"source": "onnx", "path": "m.onnx"}, backend="onnxruntime", base_dir=elsewhere)
    assert info.value.problems == [f"models[0].path: model file not found: {elsewhere / 'm.onnx'}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "m.onnx"]  # no temporary suite left
    assert list(elsewhere.iterdir()) == []


def test_validate_and_run_an_in_memory_suite(host) -> None:  # type: ignore[no-untyped-def]
    suite = {
        "name": "two",
        "models": [{"source": "dummy", "name": "a"}, {"source": "dummy", "name": "b", "size": 8}],
        "backends": [{"name": "scripted"}, {"name": "scripted", "label": "slow", "sleep_us": 50}],
        "exclude": [{"model": "b", "backend": "slow"}],
        "metrics": ["latency"],
    }
    ids = ["a/none/scripted/cpu/latency/b1", "a/none/slow/cpu/latency/b1", "b/none/scripted/cpu/latency/b1"]
    assert [case.id for case in validate_suite(suite, host=host)] == ids
    results = run_suite(suite, host=host)
    assert [case.case_id for case in results.cases] == ids
    assert (results.suite.name, results.complete, results.suite.path) == ("two", True, "<benchharness.testing>")
    assert host.get("reporters", "count").cls().render(results) == "3 cases"


def test_make_host_registers_modules_objects_and_names() -> None:
    host = make_host("bh_testplugin", bh_testplugin)  # the same module twice: registered once
    assert [p.name for p in host.plugins if p.origin == "registered"] == ["bh_testplugin"]
    assert host.get("backends", "scripted").cls is bh_testplugin.ScriptedBackend
    assert not any(p.origin.startswith("entry point") for p in host.plugins)
    with pytest.raises(ValueError, match="^pass either plugins or host, not both"):
        run_case(model={"source": "dummy"}, backend="scripted", plugins=[bh_testplugin], host=host)


def test_make_host_refuses_a_bad_item_loudly() -> None:
    class NoUnit(Metric):
        name = "no_unit"

        def collect(self, ctx: CaseContext) -> MetricValue:
            return MetricValue(value=1.0, unit="1")

    plugin = types.ModuleType("bh_inline_bad")

    @hookimpl
    def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
        register(NoUnit)

    plugin.benchharness_register_metrics = benchharness_register_metrics  # type: ignore[attr-defined]
    with pytest.raises(BenchError) as info:
        make_host(plugin)
    assert str(info.value) == "plugin 'bh_inline_bad': metric 'no_unit' refused: NoUnit declares no 'unit'"
    lenient = make_host(plugin, strict=False)
    assert "no_unit" not in lenient.items["metrics"]
    assert lenient.warnings == [
        "benchharness: warning: plugin 'bh_inline_bad': metric 'no_unit' refused: NoUnit declares no 'unit'"
    ]


# --------------------------------------------------------------------------- one item at a time


def test_a_metric_against_a_known_latency_distribution(host) -> None:  # type: ignore[no-untyped-def]
    latency = latency_value([250_000_000] * 4)  # 4 calls of 0.25 s
    assert (latency.value, latency.unit, latency.summary.count) == (250.0, "ms", 4)
    ctx = case_context(collected={"phase_time": MetricValue(value=2.0, unit="s"), "latency": latency})
    value = make_metric("phase_share", host=host).collect(ctx)
    assert value == MetricValue(value=0.5, unit="1")  # 1 s of calls in a 2 s phase
    assert [m.name for m in ctx.case.metrics] == ["phase_time", "latency"]


def test_a_builtin_metric_reads_the_artifact() -> None:
    from benchharness.api import ModelArtifact

    artifact = ModelArtifact(format="fake", content_hash="h", info={"size_bytes": 4_000_000, "parameters": 10})
    value = make_metric("model_size").collect(case_context(artifact=artifact))
    assert value.value == 4.0
    assert value.method == "as the model source reported it"
    assert value.details == {"bytes": 4_000_000, "parameters": 10, "format": "fake"}


def test_an_observer_around_a_real_scenario_on_the_fake_backend(host) -> None:  # type: ignore[no-untyped-def]
    backend = FakeBackend(FakeBackendOptions(delay_us=100))
    observer = make_observer("phase_time", host=host)
    ctx = case_context(backend=backend, observers={"phase_time": observer}, batch=2)
    assert ctx.inputs["x"].shape == (2, 4) and ctx.feed is not ctx.inputs
    figures = make_scenario("latency").run(ctx)
    latency = figures["latency"]
    assert backend.calls == latency.details["warmup"]["iterations"] + len(latency.samples)
    assert min(latency.samples) >= 100_000
    assert ctx.phase == "closed"
    phase = ctx.collected["phase_time"]
    assert phase.details == {"phase_at_start": "open"}
    assert phase.value >= sum(latency.samples) / 1e9
    assert figures["throughput"].value == pytest.approx(2 / (latency.value / 1e3))
    assert ctx.errors == {}


def test_an_observer_by_hand() -> None:
    observer = make_observer(bh_testplugin.PhaseClock)
    ctx = case_context(observers={"phase_time": observer})
    with ctx.measured():
        time.sleep(0.02)
    assert ctx.collected["phase_time"].value >= 0.02
    assert ctx.collected["phase_time"].method == "perf_counter_ns at start and stop"


def test_scenario_options_are_validated(host) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    fixed = make_scenario("fixed", host=host, iterations=5)
    ctx = case_context()
    assert fixed.run(ctx)["calls"].value == 5.0
    assert ctx.backend.calls == 5
    with pytest.raises(ValidationError, match="iterations\n  Input should be a valid integer"):
        make_scenario("fixed", host=host, iterations="many")
    with pytest.raises(BenchError, match="^unknown scenario 'fixd' \\(did you mean 'fixed'\\?\\)"):
        make_scenario("fixd", host=host)


def test_case_context_settings_and_given_inputs() -> None:
    inputs = {"ids": np.arange(6, dtype=np.int64).reshape(2, 3)}
    ctx = case_context(inputs=inputs, measure={"max_time": 0.5})
    assert ctx.settings.max_time == 0.5
    assert ctx.settings.min_samples == QUICK_MEASURE["min_samples"]
    assert [(i.name, i.shape, i.dtype) for i in ctx.artifact.inputs] == [("ids", [2, 3], "int64")]
    assert ctx.backend.to_numpy(ctx.backend.infer(ctx.feed))["ids"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert ctx.case.id == "model/none/fake/cpu/latency/b1"


def test_loaded_contexts_of_two_backends_compute_the_same_logits() -> None:
    with loaded_context(model=TINY, backend="torch") as eager, loaded_context(model=TINY, backend="onnxruntime") as ort:
        assert (eager.artifact.format, ort.artifact.format) == ("torch", "onnx")
        assert eager.inputs["input"].shape == (1, 3, 32, 32)
        np.testing.assert_array_equal(eager.inputs["input"], ort.inputs["input"])  # same seed, same inputs
        (torch_out,) = eager.backend.to_numpy(eager.backend.infer(eager.feed)).values()
        (ort_out,) = ort.backend.to_numpy(ort.backend.infer(ort.feed)).values()
        assert torch_out.shape == ort_out.shape == (1, 10)
        np.testing.assert_allclose(torch_out, ort_out, rtol=1e-4, atol=1e-5)
        assert ort.backend.runtime_info()["threads"] == 1
        assert make_metric("model_size").collect(ort).details["format"] == "onnx"
    assert ort.backend.session is None  # closed on exit


def test_a_loaded_context_scores_on_the_models_dataset_and_against_its_reference() -> None:
    pytest.importorskip("sklearn")
    model = {**TINY, "dataset": {"name": "digits", "limit": 40}}
    with loaded_context(model=model, backend="onnxruntime", metrics=["latency", "accuracy", "fidelity"]) as ctx:
        data = ctx.dataset()
        assert data.labels.shape == (40,) and data.inputs["input"].shape == (40, 3, 32, 32)
        accuracy = make_metric("accuracy").collect(ctx)
        assert accuracy.unit == "%" and 0 <= accuracy.value <= 100
        fidelity = make_metric("fidelity").collect(ctx)  # random weights: ONNX Runtime against torch, same answers
        assert fidelity.value == 100.0
