"""The throughput scenario (MLPerf's Offline): requests in flight for a fixed time, checked against Little's law.

Little's law: with N requests always in flight, requests per second = N / mean request latency.
A scenario that miscounts requests, mistimes them or keeps fewer in flight than it records fails it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel

from benchharness.api import Backend, BackendOptions, ModelArtifact, hookimpl
from benchharness.results import CaseResult
from benchharness.testing import make_host, run_case

MEASURE = {"max_time": 0.6, "warmup": {"min_time": 0.1, "max_time": 0.2}}


def littles_law_error(result: CaseResult) -> float:
    """|measured requests/s - concurrency / mean latency| relative to the measured rate."""
    throughput = result.metrics["throughput"]
    latency = result.metrics["request_latency"]
    details = throughput.details
    measured = details["requests"] / details["window_s"]
    predicted = details["concurrency"] / (latency.summary.mean / 1e9)
    return abs(measured - predicted) / measured


class SleepyOptions(BackendOptions):
    ms: float = 2.0


class SleepyAsync(Backend):
    """Asynchronous requests that each take ``ms`` of wall time off the GIL, in a pool of its own threads."""

    name = "sleepy"
    formats = ("dummy",)
    asynchronous = True
    Options: ClassVar[type[BaseModel]] = SleepyOptions

    def load(self, artifact: ModelArtifact) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        return inputs

    def infer(self, feed: Any) -> Any:
        time.sleep(self.options.ms / 1e3)
        return feed

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        return dict(outputs)

    def concurrency(self, requested: int | None) -> int:
        return requested or 4

    def submit(self, feed: Any, done: Any) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.concurrency(None) * 2)

        def request() -> None:
            with self.lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            outputs = self.infer(feed)
            with self.lock:
                self.in_flight -= 1
            done(outputs)

        self.pool.submit(request)

    def wait_all(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None

    def runtime_info(self) -> dict[str, Any]:
        return {"most_in_flight": self.most_in_flight}


class BadConcurrency(SleepyAsync):
    name = "bad-concurrency"

    def concurrency(self, requested: int | None) -> int:
        return 0


class _Plugin:
    @hookimpl
    def benchharness_register_backends(self, register):  # type: ignore[no-untyped-def]
        register(SleepyAsync)
        register(BadConcurrency)


@pytest.fixture(scope="module")
def host():
    return make_host("bh_testplugin", _Plugin())


DUMMY = {"source": "dummy", "name": "m"}


def throughput_case(host, backend, requests=None, **kw) -> CaseResult:
    scenario = {"name": "throughput", **({"requests": requests} if requests else {})}
    return run_case(
        model=DUMMY,
        backend=backend,
        host=host,
        scenario=scenario,
        metrics=["throughput", "request_latency"],
        measure=MEASURE,
        **kw,
    )


@pytest.mark.parametrize("requests", [1, 3])
def test_threads_keep_the_requests_in_flight_littles_law(host, requests):
    result = throughput_case(host, {"name": "scripted", "sleep_us": 300}, requests=requests)
    details = result.metrics["throughput"].details
    assert details["concurrency"] == requests
    assert details["concurrency_mode"] == "threads calling Backend.infer"
    assert details["requests"] > 50
    assert littles_law_error(result) < 0.10
    latency = result.metrics["request_latency"]
    assert latency.unit == "ms" and len(latency.samples) == details["requests"]
    assert latency.details["p50_ms"] <= latency.details["p90_ms"] <= latency.details["p99_ms"]


def test_asynchronous_requests_are_kept_in_flight_littles_law(host):
    result = throughput_case(host, {"name": "sleepy", "ms": 2.0})
    details = result.metrics["throughput"].details
    assert details["concurrency"] == 4  # the backend's own choice, recorded
    assert details["concurrency_mode"] == "asynchronous requests (Backend.submit)"
    assert result.runtime.backend["most_in_flight"] == 4  # never more in flight than recorded
    assert littles_law_error(result) < 0.10
    # Each request sleeps 2 ms off the GIL, 4 at a time: about 2,000 requests/s at batch 1.
    assert 0.5 < result.metrics["throughput"].value / (4 / 0.002) <= 1.0


def test_items_per_second_count_the_batch(host):
    one = throughput_case(host, {"name": "sleepy", "ms": 2.0}, requests=2)
    eight = throughput_case(host, {"name": "sleepy", "ms": 2.0}, requests=2, batch=8)
    for result, batch in ((one, 1), (eight, 8)):
        details = result.metrics["throughput"].details
        assert details["batch"] == batch
        assert result.metrics["throughput"].value == pytest.approx(batch * details["requests"] / details["window_s"])


def test_a_backend_with_a_nonsense_concurrency_fails_the_case(host):
    result = run_case(
        model=DUMMY,
        backend="bad-concurrency",
        host=host,
        scenario="throughput",
        metrics=["throughput"],
        measure=MEASURE,
        check=False,
    )
    assert result.status == "error"
    assert result.error == "backend 'bad-concurrency' returned concurrency 0, not an int >= 1"


def test_onnxruntime_runs_concurrent_requests_from_threads(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    result = run_case(
        model={"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 64, "num_classes": 10},
        backend={"name": "onnxruntime", "threads": 1},
        scenario={"name": "throughput", "requests": 2},
        metrics=["throughput", "request_latency"],
        measure=MEASURE,
        cache_dir=tmp_path,
    )
    details = result.metrics["throughput"].details
    assert details["concurrency"] == 2 and details["concurrency_mode"] == "threads calling Backend.infer"
    assert littles_law_error(result) < 0.10


def test_torch_offers_throughput_through_the_batch(tmp_path):
    pytest.importorskip("torch")
    result = run_case(
        model={"source": "zoo", "arch": "mobilenet_v2", "width": 0.25, "input_size": 64, "num_classes": 10},
        backend="torch",
        scenario="throughput",
        metrics=["throughput", "request_latency"],
        measure=MEASURE,
        batch=4,
        cache_dir=tmp_path,
    )
    details = result.metrics["throughput"].details
    assert details["concurrency"] == 1 and details["batch"] == 4
    assert littles_law_error(result) < 0.10


def test_the_table_says_which_throughput_is_derived_from_one_stream(host):
    from benchharness.table import build
    from benchharness.testing import run_suite

    suite = {
        "name": "t",
        "models": [DUMMY],
        "backends": [{"name": "scripted", "sleep_us": 200}],
        "scenarios": ["latency"],
        "metrics": ["latency", "throughput"],
        "measure": MEASURE,
    }
    alone = build(run_suite(suite, host=host))
    assert "throughput, 1 stream (items/s)" in [c.header for c in alone.columns]
    assert not any(note.startswith("throughput:") for note in alone.notes)

    both = build(run_suite({**suite, "scenarios": ["latency", "throughput"]}, host=host))
    assert "throughput (items/s)" in [c.header for c in both.columns]
    assert (
        "throughput: rows of the latency scenario give batch / median latency of one stream; "
        "rows of the throughput scenario give items/s measured with requests in flight"
    ) in both.notes
