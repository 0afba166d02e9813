"""Built-in scenarios: ``latency``, one request at a time (MLPerf's SingleStream), and ``throughput``,
many requests in flight for a fixed time (MLPerf's Offline)."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PositiveInt

from benchharness.api import (
    Backend,
    BenchError,
    CaseContext,
    MetricValue,
    Scenario,
    ScenarioOptions,
    Summary,
    sample,
    summarize,
    warm_up,
)
from benchharness.hookspecs import hookimpl
from benchharness.stats import preload


class Latency(Scenario):
    """One synchronous inference at a time: warm up until stable, then sample until the median's CI is tight.

    The measured phase (observers running) is the sampling phase only.
    Produces ``latency`` (the distribution, raw samples kept) and
    ``throughput`` (batch / median latency: what one stream achieves).
    """

    name = "latency"
    description = "one request at a time: warm-up until stable, adaptive sampling, raw samples kept"
    produces = ("latency", "throughput")

    def run(self, ctx: CaseContext) -> dict[str, MetricValue]:
        """Time ``backend.infer(feed)``, one call per sample."""
        settings = ctx.settings
        call = functools.partial(ctx.backend.infer, ctx.feed)
        warmup = warm_up(call, settings.warmup)
        # sample() imports the statistics libraries (scipy) for its CI check: load them now, so their second of
        # CPU and tens of MB are not charged to the measured phase that observers (energy, memory) watch.
        preload(settings.ci_level)
        with ctx.measured():
            clock = ctx.backend.start_device_clock()
            try:
                sampled = sample(call, settings)
            finally:
                device_ns = ctx.backend.stop_device_clock() if clock else []
            ctx.count(len(sampled.samples_ns) * ctx.case.batch)
        summary = summarize(sampled.samples_ns, settings.ci_level)
        median_ms = summary.median / 1e6
        latency = MetricValue(
            value=median_ms,
            unit="ms",
            better="lower",
            summary=summary,
            samples=sampled.samples_ns,
            method="perf_counter_ns around each backend.infer call",
            details={
                "samples_unit": "ns",
                "noisy": summary.rel_iqr > settings.noisy_threshold,
                "rel_iqr": summary.rel_iqr,
                "ci_rel_halfwidth": summary.ci_rel_halfwidth,
                "stop_reason": sampled.stop_reason,
                "sampling_time_s": sampled.elapsed_s,
                "warmup": {"iterations": warmup.iterations, "time_s": warmup.elapsed_s, "settled": warmup.settled},
            },
        )
        if clock:
            latency.details["device_clock"] = _device_clock(clock, device_ns, summary, settings.ci_level)
        throughput = MetricValue(
            value=ctx.case.batch / (median_ms / 1e3) if median_ms else None,
            unit="items/s",
            better="higher",
            method="batch / median latency (single stream)",
        )
        return {"latency": latency, "throughput": throughput}


def _device_clock(method: str, samples_ns: list[int], host: Summary, ci_level: float) -> dict[str, Any]:
    """The device clock's view of the sampled calls, beside the host clock's: its median, spread and the gap."""
    if not samples_ns:
        return {"method": method, "error": "the backend returned no device times"}
    device = summarize(samples_ns, ci_level)
    return {
        "method": method,
        "count": device.count,
        "median_ms": device.median / 1e6,
        "p90_ms": device.p90 / 1e6,
        "ci_rel_halfwidth": device.ci_rel_halfwidth if math.isfinite(device.ci_rel_halfwidth) else None,
        "host_minus_device_median_ms": (host.median - device.median) / 1e6,
    }


class ThroughputOptions(ScenarioOptions):
    """Options of the throughput scenario."""

    requests: PositiveInt | None = Field(
        None, description="Requests kept in flight; default: the backend's choice (Backend.concurrency)."
    )


#: (start, end) of one request, ``perf_counter_ns``.
Span = tuple[int, int]


class Throughput(Scenario):
    """Many requests in flight for a fixed time: items per second, and each request's latency.

    The backend says how many requests it keeps in flight
    (``Backend.concurrency``, or the ``requests`` option): an asynchronous
    backend gets them through ``submit``, with a new request started as soon
    as one ends; any other gets that many threads, each calling ``infer`` in
    a loop.  The load runs ``measure.warmup.min_time`` seconds unmeasured,
    then ``measure.max_time`` seconds measured (observers running); a request
    is started only before the deadline, and every started request is
    waited for.  Produces ``throughput`` (batch × requests completed / the
    time from the first start to the last end) and ``request_latency`` (each
    request's start-to-end time; its summary has p50, p90 and p99), both
    recording the concurrency used.
    """

    name = "throughput"
    description = "N requests in flight for measure.max_time seconds: items/s and per-request latency (Offline)"
    produces = ("throughput", "request_latency")
    Options: ClassVar[type[BaseModel]] = ThroughputOptions

    def run(self, ctx: CaseContext) -> dict[str, MetricValue]:
        """Offer the load twice, warm-up then measured; summarise the measured requests."""
        settings = ctx.settings
        backend = ctx.backend
        concurrency = backend.concurrency(self.options.requests)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise BenchError(f"backend {ctx.case.backend.name!r} returned concurrency {concurrency!r}, not an int >= 1")
        load = _async_load if backend.asynchronous else _threaded_load
        load(backend, ctx.feed, concurrency, settings.warmup.min_time_capped)
        with ctx.measured():
            spans = load(backend, ctx.feed, concurrency, settings.max_time)
            ctx.count(len(spans) * ctx.case.batch)
        if not spans:
            raise BenchError("no request completed in the measured time")
        window_ns = max(end for _, end in spans) - min(start for start, _ in spans)
        latencies = sorted(end - start for start, end in spans)
        summary = summarize(latencies, settings.ci_level)
        mode = "asynchronous requests (Backend.submit)" if backend.asynchronous else "threads calling Backend.infer"
        details = {
            "concurrency": concurrency,
            "concurrency_mode": mode,
            "requests": len(spans),
            "window_s": window_ns / 1e9,
            "batch": ctx.case.batch,
        }
        throughput = MetricValue(
            value=len(spans) * ctx.case.batch / (window_ns / 1e9),
            unit="items/s",
            better="higher",
            method=f"batch x requests completed / wall time, {concurrency} in flight ({mode})",
            details=details,
        )
        request_latency = MetricValue(
            value=summary.median / 1e6,
            unit="ms",
            better="lower",
            summary=summary,
            samples=latencies,
            method="perf_counter_ns from each request's start to its end, under load",
            details={"samples_unit": "ns", "p50_ms": summary.median / 1e6, "p90_ms": summary.p90 / 1e6,
                     "p99_ms": summary.p99 / 1e6, **details},
        )  # fmt: skip
        return {"throughput": throughput, "request_latency": request_latency}


def _threaded_load(backend: Backend, feed: Any, concurrency: int, seconds: float) -> list[Span]:
    """``concurrency`` threads, each calling ``infer`` until the deadline; every call's span."""
    spans: list[list[Span]] = [[] for _ in range(concurrency)]
    failures: list[BaseException] = []
    start = threading.Barrier(concurrency + 1)
    deadline = [0]

    def work(mine: list[Span]) -> None:
        start.wait()
        try:
            while (t0 := time.perf_counter_ns()) < deadline[0]:
                backend.infer(feed)
                mine.append((t0, time.perf_counter_ns()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the scenario's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(mine,), daemon=True) for mine in spans]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter_ns() + int(seconds * 1e9)
    start.wait()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return [span for mine in spans for span in mine]


def _async_load(backend: Backend, feed: Any, concurrency: int, seconds: float) -> list[Span]:
    """Keep ``concurrency`` requests in flight through ``submit`` until the deadline; every request's span.

    The scenario itself waits for a free slot before taking a request's
    start time, so time spent waiting for one is not counted as latency.
    """
    spans: list[Span] = []
    failures: list[BaseException] = []
    free = threading.Semaphore(concurrency)

    def finished(started: int) -> Callable[[Any], None]:
        def done(outputs: Any) -> None:
            spans.append((started, time.perf_counter_ns()))
            free.release()

        return done

    deadline = time.perf_counter_ns() + int(seconds * 1e9)
    while True:
        free.acquire()
        t0 = time.perf_counter_ns()
        if t0 >= deadline:
            free.release()
            break
        try:
            backend.submit(feed, finished(t0))
        except BaseException as exc:  # noqa: BLE001 - waited for below, then re-raised
            failures.append(exc)
            free.release()
            break
    backend.wait_all()
    for _ in range(concurrency):  # every callback has run
        free.acquire()
    if failures:
        raise failures[0]
    return spans


@hookimpl
def benchharness_register_scenarios(register):  # type: ignore[no-untyped-def]
    """Register the latency and throughput scenarios."""
    register(Latency)
    register(Throughput)
