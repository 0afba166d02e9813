"""Tests of the example plugin, written with benchharness.testing: no suite file, everything in this process."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from benchharness.api import MetricValue
from benchharness.testing import (
    SuiteError,
    case_context,
    latency_value,
    loaded_context,
    make_metric,
    run_case,
    run_suite,
)
from pydantic import ValidationError

import benchharness_example

#: A zoo model small enough for a test: a few milliseconds per inference.
TINY = {"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 32, "num_classes": 10}
PLUGINS = [benchharness_example]


# --------------------------------------------------------------------------- the backend


def test_the_backend_runs_a_zoo_model() -> None:
    result = run_case(
        model=TINY,
        backend={"name": "torch-traced", "threads": 1},
        metrics=["latency", "throughput", "tail_ratio"],
        plugins=PLUGINS,
    )
    assert result.case_id == "mobilenet_v2-w0.25/none/torch-traced/cpu/latency/b1"
    assert result.runtime.backend == {
        "framework": "torch-traced",
        "version": torch.__version__,
        "threads": 1,
        "frozen": True,
    }
    assert ("backends", "torch-traced", "benchharness_example") in [
        (p.kind, p.name, p.plugin) for p in result.provenance
    ]
    latency = result.metrics["latency"]
    assert latency.unit == "ms" and len(latency.samples) == latency.summary.count >= 10
    assert result.metrics["tail_ratio"].value == latency.summary.p99 / latency.summary.median


def test_the_backend_without_freezing() -> None:
    result = run_case(model=TINY, backend={"name": "torch-traced", "freeze": False, "threads": 1}, plugins=PLUGINS)
    assert result.runtime.backend["frozen"] is False


def test_the_trace_computes_what_the_eager_model_does() -> None:
    with loaded_context(model=TINY, backend="torch-traced", plugins=PLUGINS, batch=2) as ctx:
        outputs = ctx.backend.to_numpy(ctx.backend.infer(ctx.feed))
        with torch.no_grad():
            eager = ctx.artifact.obj(torch.from_numpy(ctx.inputs["input"])).numpy()
    assert list(outputs) == ["output0"]
    assert outputs["output0"].shape == (2, 10)
    np.testing.assert_allclose(outputs["output0"], eager, rtol=1e-4, atol=1e-5)


def test_a_bad_backend_option_is_a_one_line_suite_error() -> None:
    with pytest.raises(SuiteError) as info:
        run_case(model=TINY, backend={"name": "torch-traced", "frozen": True}, plugins=PLUGINS)
    assert info.value.problems == [
        "backends[0].frozen: unknown field (did you mean 'freeze'?); known: freeze, label, name, threads"
    ]


# --------------------------------------------------------------------------- the metric

#: 980 calls of 1 ms and 20 of 3 ms: the median is 1 ms, p90 and p95 are 1 ms, p99 is 3 ms.
SAMPLES_NS = [1_000_000] * 980 + [3_000_000] * 20


@pytest.mark.parametrize(("percentile", "ratio"), [(99, 3.0), (95, 1.0), (90, 1.0)])
def test_the_metric_on_a_known_distribution(percentile: int, ratio: float) -> None:
    ctx = case_context(collected={"latency": latency_value(SAMPLES_NS)})
    value = make_metric(benchharness_example.TailRatio, percentile=percentile).collect(ctx)
    assert value == MetricValue(
        value=ratio,
        unit="x",
        method=f"p{percentile} / median of the latency samples",
        details={"percentile": percentile, "samples": 1000},
    )


def test_the_metric_summarizes_bare_samples() -> None:
    bare = MetricValue(value=1.0, unit="ms", samples=SAMPLES_NS)
    value = make_metric(benchharness_example.TailRatio).collect(case_context(collected={"latency": bare}))
    assert value.value == 3.0


def test_the_metric_without_latency_says_why() -> None:
    with pytest.raises(ValueError, match="^there is no 'latency' figure to read"):
        make_metric(benchharness_example.TailRatio).collect(case_context())


def test_the_metric_options() -> None:
    with pytest.raises(ValidationError, match="percentile\n  Input should be 90, 95 or 99"):
        make_metric(benchharness_example.TailRatio, percentile=50)
    bad = {"name": "tail_ratio", "percentile": 50}
    with pytest.raises(SuiteError) as info:
        run_case(model=TINY, backend="torch", metrics=["latency", bad], plugins=PLUGINS)
    assert info.value.problems == ["metrics[1].percentile: Input should be 90, 95 or 99"]


# --------------------------------------------------------------------------- the reporter


def test_the_reporter_on_a_real_run() -> None:
    results = run_suite(
        {
            "name": "bars",
            "models": [TINY],
            "backends": [{"name": "torch", "threads": 1}, {"name": "torch-traced", "threads": 1}],
            "metrics": ["latency"],
        },
        plugins=PLUGINS,
    )
    medians = [case.metrics["latency"].value for case in results.cases]
    slowest = max(medians)
    lines = benchharness_example.Bars().render(results).splitlines()
    assert lines[0] == f"median latency, ms (longest bar: {slowest:.3f} ms)"
    ids = ["mobilenet_v2-w0.25/none/torch/cpu/latency/b1", "mobilenet_v2-w0.25/none/torch-traced/cpu/latency/b1"]
    assert [line.split()[0] for line in lines[1:]] == ids
    bars = [line.split()[1] for line in lines[1:]]
    assert [len(bar) for bar in bars] == [max(1, round(40 * median / slowest)) for median in medians]
    assert max(len(bar) for bar in bars) == 40 and set("".join(bars)) == {"#"}
    assert [line.split()[2] for line in lines[1:]] == [f"{median:.3f}" for median in medians]
    assert len(lines[1].split("#")[0]) == len(ids[1]) + 2  # case ids padded to one column

    failed = results.model_copy(deep=True)
    failed.cases[1].status = "error"
    failed.cases[1].metrics = {}
    lines = benchharness_example.Bars().render(failed).splitlines()
    assert lines[0] == f"median latency, ms (longest bar: {medians[0]:.3f} ms)"
    assert lines[1].split()[1] == "#" * 40
    assert lines[2] == f"{ids[1]}  (error)"


# --------------------------------------------------------------------------- the installed package


def test_the_entry_point_lists_the_three_items() -> None:
    env = {k: v for k, v in os.environ.items() if k != "BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD"}
    out = subprocess.run(
        [sys.executable, "-m", "benchharness", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    ).stdout
    plugins = {plugin["name"]: plugin for plugin in json.loads(out)}
    mine = plugins["example"]
    assert mine["origin"] == "entry point (benchharness-example-plugin)"
    assert mine["version"] == importlib.metadata.version("benchharness-example-plugin")
    assert mine["module"] == "benchharness_example"
    assert (mine["error"], mine["refused"]) == (None, [])
    assert [(item["kind"], item["name"], item["available"]) for item in mine["provides"]] == [
        ("backend", "torch-traced", True),
        ("metric", "tail_ratio", True),
        ("reporter", "bars", True),
    ]
