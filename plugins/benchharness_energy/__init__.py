"""The ``energy`` observer: joules per inference over a scenario's measured phase, with the meter that gave them.

Meters, in the order ``meter: auto`` tries them: ``rapl`` (the powercap
tree's package and DRAM counters), ``nvml`` (the GPU's total-energy counter;
only on a ``cuda`` target, where it is tried first, since on a GPU case the
GPU is the device doing the inference), then ``cpu-time-model`` (an estimate
from this process's CPU time).  A meter that cannot measure is skipped with
its reason, recorded in ``details.fallbacks``.

Counters are read in ``start`` and ``stop`` only, never inside the timed loop.
The one exception is RAPL, whose counters wrap: when the case may run longer
than half a wrap at the packages' power limits, a thread reads them every
quarter of a wrap (minutes apart) and the figure records it.  ``start`` may first
measure an idle baseline with the same meter (``idle_s`` seconds of sleep),
which ``stop`` subtracts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, NonNegativeFloat, PositiveFloat

from benchharness.api import CaseContext, MetricValue, Observer, Options
from benchharness.hookspecs import hookimpl
from benchharness.stats import preload
from benchharness_energy.meters import CpuTimeModel, Meter, MeterUnavailable, NvmlMeter
from benchharness_energy.rapl import RaplMeter

__all__ = ["Energy", "EnergyOptions", "choose_meter"]

METERS = ("rapl", "nvml", "cpu-time-model")


class EnergyOptions(Options):
    """Options of the ``energy`` observer."""

    meter: Literal["auto", "rapl", "nvml", "cpu-time-model"] = Field(
        "auto",
        description="auto: rapl, then nvml (first, on a cuda target), then cpu-time-model; a named meter that "
        "cannot measure fails the figure.",
    )
    tdp_w: PositiveFloat | None = Field(
        None, description="TDP per CPU package in watts, for cpu-time-model; default: a table by CPU model, else 85."
    )
    idle_s: NonNegativeFloat = Field(
        1.0,
        le=60,
        description="Seconds of idle measured before the measured phase, whose power rapl and nvml subtract; 0: none.",
    )
    powercap_root: str = Field("/sys/class/powercap", description="Where the RAPL zones are.")


def meter_order(meter: str, device: str) -> tuple[str, ...]:
    """The meters to try, in order, for the ``meter`` option on a target of ``device``."""
    if meter != "auto":
        return (meter,)
    return ("nvml", "rapl", "cpu-time-model") if device == "cuda" else METERS


def open_meter(name: str, options: EnergyOptions, target: Any, clock: Callable[[], float]) -> Meter:
    """Open meter ``name`` for a case on ``target`` (its :class:`TargetContext`); :class:`MeterUnavailable` if not."""
    if name == "rapl":
        return RaplMeter(Path(options.powercap_root), clock)
    if name == "nvml":
        if target.device != "cuda":
            raise MeterUnavailable(f"nvml: the case's target is {target.device}, not cuda")
        return NvmlMeter(int(target.details.get("index", 0)))
    return CpuTimeModel(options.tdp_w)


def choose_meter(
    options: EnergyOptions, target: Any, clock: Callable[[], float] = time.perf_counter
) -> tuple[Meter, list[str]]:
    """The first meter that can measure this case, and why each one before it could not.

    Raises :class:`MeterUnavailable` when a meter named by ``options.meter``
    cannot measure (``auto`` always ends with the CPU-time model, which can).
    """
    skipped: list[str] = []
    order = meter_order(options.meter, target.device)
    for name in order:
        try:
            return open_meter(name, options, target, clock), skipped
        except MeterUnavailable as exc:
            if len(order) == 1:
                raise
            skipped.append(str(exc))
    raise MeterUnavailable("; ".join(skipped))


class Energy(Observer):
    """Joules per inference item over the measured phase, from the first meter that works (see the module)."""

    name = "energy"
    unit = "mJ"
    description = "energy per inference item over the measured phase: rapl, nvml or cpu-time-model (an estimate)"
    Options: ClassVar[type[BaseModel]] = EnergyOptions

    def __init__(self, options: BaseModel) -> None:
        super().__init__(options)
        #: The clock and the sleep the observer uses; tests replace them.
        self.clock: Callable[[], float] = time.perf_counter
        self.sleep: Callable[[float], None] = time.sleep
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._thread_error: BaseException | None = None

    def start(self, ctx: CaseContext) -> None:
        """Choose the meter, measure the idle baseline, start a RAPL reader thread if needed, read the counters."""
        options: EnergyOptions = self.options  # type: ignore[assignment]
        self.ctx = ctx
        # The sampling loop imports scipy for its CI check (stats.preload) after the phase has begun: over a second
        # of CPU that is no inference's.  Done here, outside the phase, that import costs the figure nothing.
        preload(ctx.settings.ci_level)
        self.meter, self.fallbacks = choose_meter(options, ctx.backend.target, self.clock)
        self.reader = self._start_reader(ctx)
        try:
            self.idle = self._idle_baseline(options.idle_s)
            self.first = self.meter.read()
        except BaseException:
            self._stop_reader()  # stop() is not called after a failed start
            raise
        self.t0 = self.clock()

    def _idle_baseline(self, seconds: float) -> dict[str, Any]:
        """Watts the meter reads while this process sleeps ``seconds``, or why none was measured."""
        if not self.meter.reads_idle_power:
            return {"measured": False, "reason": "not needed: the model counts only this process's CPU time"}
        if seconds == 0:
            return {"measured": False, "reason": "idle_s is 0"}
        before, t0 = sum(self.meter.read().values()), self.clock()
        self.sleep(seconds)
        joules, elapsed = sum(self.meter.read().values()) - before, self.clock() - t0
        return {
            "measured": True,
            "watts": joules / elapsed if elapsed > 0 else 0.0,
            "seconds": elapsed,
            "method": "the same meter over a sleep of this process right before the measured phase",
        }

    def _start_reader(self, ctx: CaseContext) -> dict[str, Any] | None:
        """Start a thread polling the RAPL counters when the case may outlast their safe read interval."""
        if not isinstance(self.meter, RaplMeter):
            return None
        safe, timeout = self.meter.safe_interval_s, ctx.settings.timeout
        if timeout <= safe:
            return {"period_s": None, "reason": f"the case ends within measure.timeout ({timeout:g} s)"}
        period = safe / 2
        self._thread = threading.Thread(target=self._poll, args=(self.meter, period), name="energy-rapl", daemon=True)
        self._thread.start()
        reason = f"the case may run measure.timeout ({timeout:g} s), longer than {safe:.4g} s"
        return {"period_s": period, "reason": reason}

    def _poll(self, meter: RaplMeter, period: float) -> None:
        """The reader thread: poll every ``period`` seconds until stopped."""
        try:
            while not self._halt.wait(period):
                meter.poll()
        except Exception as exc:  # noqa: BLE001 - handed to stop(), which fails the figure with it
            self._thread_error = exc

    def _stop_reader(self) -> None:
        """End the reader thread, if one runs."""
        if self._thread is not None:
            self._halt.set()
            self._thread.join()
            self._thread = None

    def stop(self) -> MetricValue:
        """Read the counters again and return millijoules per item, with the totals and how they were obtained."""
        self._stop_reader()
        if self._thread_error is not None:
            raise self._thread_error
        last = self.meter.read()
        seconds = self.clock() - self.t0
        if isinstance(self.meter, RaplMeter) and self.meter.longest_gap_s > self.meter.safe_interval_s:
            raise RuntimeError(
                f"rapl: the counters were read {self.meter.longest_gap_s:.4g} s apart, more than "
                f"{self.meter.safe_interval_s:.4g} s (half a wrap at their power limit): they may have wrapped "
                "more than once"
            )
        domains = {label: last[label] - self.first[label] for label in last}
        gross = sum(domains.values())
        idle_joules = self.idle["watts"] * seconds if self.idle["measured"] else 0.0
        net = gross - idle_joules
        items = self.ctx.measured_items
        details: dict[str, Any] = {
            "meter": self.meter.name,
            "estimate": self.meter.estimate,
            "joules": max(net, 0.0),
            "gross_joules": gross,
            "idle_joules": idle_joules,
            "seconds": seconds,
            "watts": gross / seconds if seconds > 0 else None,
            "net_watts": net / seconds if seconds > 0 else None,
            "items": items,
            "joules_per_item": max(net, 0.0) / items if items else None,
            "idle": self.idle,
            "domains": domains,
            "fallbacks": self.fallbacks,
            **self.meter.facts(),
        }
        if self.reader is not None:
            details["reader_thread"] = self.reader
        if net < 0:
            details["below_idle_baseline"] = True  # the phase drew no more than idle: the figure is 0
        method = f"{self.meter.name}: {self.meter.describe()}"
        if self.idle["measured"]:
            method += f", idle baseline of {self.idle['watts']:.3g} W subtracted"
        if items is None:
            method += "; no figure per inference: the scenario did not count its items"
        elif items == 0:
            method += "; no figure per inference: the scenario counted no items"
        return MetricValue(
            value=max(net, 0.0) / items * 1000 if items else None,
            unit=self.unit,
            method=method,
            details=details,
        )


@hookimpl
def benchharness_register_observers(register):  # type: ignore[no-untyped-def]
    """Register the energy observer."""
    register(Energy)
