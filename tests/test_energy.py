"""The ``energy`` observer: RAPL against fake powercap trees, NVML against a fake pynvml, the CPU-time model for real.

This machine has neither a readable powercap tree nor a GPU, so RAPL and NVML are exercised through fakes shaped
like the real thing (sysfs zone directories; pynvml's module functions), with a fake clock where a figure depends
on elapsed time.  The CPU-time model runs on this process's real CPU time.
"""

from __future__ import annotations

import json
import os
import time
import types
from pathlib import Path

import pytest
from benchharness_energy import Energy, choose_meter
from benchharness_energy.meters import CpuTimeModel
from benchharness_energy.rapl import RaplMeter, wrapped_delta
from benchharness_energy.tdp import DEFAULT_TDP_W, cpu_packages, tdp_for

from benchharness.api import TargetContext
from benchharness.cli import main
from benchharness.testing import FakeBackend, case_context, make_observer

#: A real Intel package counter's range (about 262 kJ) and a DRAM one's (about 65.5 kJ).
PACKAGE_RANGE = 262_143_328_850
DRAM_RANGE = 65_532_610_987
CPU = TargetContext(device="cpu", threads=1)
GPU1 = TargetContext(device="cuda", threads=1, details={"index": 1})


def write_zone(
    root: Path, dirname: str, name: str, energy_uj: int, max_range: int = PACKAGE_RANGE, **files: int
) -> Path:
    """One powercap zone directory as sysfs lays it out (``files``: constraint_* values)."""
    zone = root / dirname
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text(f"{name}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    for key, value in files.items():
        (zone / key).write_text(f"{value}\n")
    return zone


def set_energy(root: Path, dirname: str, energy_uj: int) -> None:
    (root / dirname / "energy_uj").write_text(f"{energy_uj}\n")


def add_energy(root: Path, dirname: str, joules: float) -> None:
    path = root / dirname / "energy_uj"
    path.write_text(f"{int(path.read_text()) + round(joules * 1e6)}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """A one-package Intel tree: package-0 with core and dram subzones, psys, and an MMIO copy of package-0."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type's directory: not a zone
    write_zone(
        root, "intel-rapl:0", "package-0", PACKAGE_RANGE - 1_000_000,
        constraint_0_power_limit_uw=125_000_000, constraint_1_power_limit_uw=250_000_000,
        constraint_0_max_power_uw=125_000_000,
    )  # fmt: skip
    write_zone(root, "intel-rapl:0:0", "core", 123)
    write_zone(root, "intel-rapl:0:1", "dram", 5_000_000, DRAM_RANGE)
    write_zone(root, "intel-rapl:1", "psys", 77, constraint_0_power_limit_uw=300_000_000)
    write_zone(root, "intel-rapl-mmio:0", "package-0", 42)
    return root


class FakeTime:
    """A clock and a sleep that advances it; ``during_sleep`` runs while "sleeping" (energy drawn while idle)."""

    def __init__(self, during_sleep=lambda seconds: None) -> None:  # type: ignore[no-untyped-def]
        self.now = 1000.0
        self.during_sleep = during_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.during_sleep(seconds)
        self.now += seconds


def observer(fake_time: FakeTime | None = None, **options) -> Energy:  # type: ignore[no-untyped-def]
    obs = make_observer(Energy, **options)
    assert isinstance(obs, Energy)
    if fake_time is not None:
        obs.clock, obs.sleep = fake_time.clock, fake_time.sleep
    return obs


def context(obs: Energy, target: TargetContext = CPU, timeout: float = 300.0):  # type: ignore[no-untyped-def]
    return case_context(backend=FakeBackend(target=target), observers={"energy": obs}, measure={"timeout": timeout})


# ----------------------------------------------------------------------------- RAPL


def test_rapl_sums_packages_and_dram_and_undoes_a_wrap_between_start_and_stop(powercap):
    obs = observer(powercap_root=str(powercap), idle_s=0)
    ctx = context(obs)
    with ctx.measured():
        set_energy(powercap, "intel-rapl:0", 2_000_000)  # wrapped: 1 J before the top, then 2 J
        set_energy(powercap, "intel-rapl:0:1", 7_000_000)
        for name in ("intel-rapl:0:0", "intel-rapl:1", "intel-rapl-mmio:0"):
            add_energy(powercap, name, 1000.0)  # core, psys and the MMIO copy are not summed
        ctx.count(1000)
    assert ctx.errors == {}
    energy = ctx.collected["energy"]
    details = energy.details
    assert details["domains"] == {"package-0": 3.0, "package-0/dram": 2.0}
    assert details["joules"] == 5.0 and details["items"] == 1000
    assert energy.value == pytest.approx(5.0) and energy.unit == "mJ"  # 5 J / 1000 items = 5 mJ each
    assert energy.method.startswith("rapl: RAPL energy counters of package-0, package-0/dram")
    assert details["meter"] == "rapl" and details["estimate"] is False and details["fallbacks"] == []
    assert details["idle"] == {"measured": False, "reason": "idle_s is 0"}
    # The highest limit of the package (PL2, 250 W) bounds the wrap time; the dram zone has none and takes it.
    zones = details["zones"]
    assert zones["package-0"]["max_power_source"] == "constraint_1_power_limit_uw"
    assert zones["package-0/dram"]["max_power_source"] == "the package's constraint_1_power_limit_uw"
    assert zones["package-0/dram"]["wrap_s"] == pytest.approx(DRAM_RANGE / 1e6 / 250)
    safe = DRAM_RANGE / 1e6 / 250 / 2
    assert details["safe_read_interval_s"] == pytest.approx(safe)
    # A case may run measure.timeout (300 s), more than the safe interval: a reader thread polled, and has ended.
    assert details["reader_thread"]["period_s"] == pytest.approx(safe / 2)
    assert obs._thread is None


@pytest.mark.parametrize(("phase_joules", "net_joules"), [(50.0, 30.0), (5.0, 0.0)])
def test_rapl_subtracts_the_idle_baseline(powercap, phase_joules, net_joules):
    fake = FakeTime(during_sleep=lambda seconds: add_energy(powercap, "intel-rapl:0", 10.0 * seconds))  # 10 W idle
    obs = observer(fake, powercap_root=str(powercap), idle_s=1.5)
    ctx = context(obs, timeout=60)  # shorter than the safe read interval (131 s): no reader thread
    with ctx.measured():
        add_energy(powercap, "intel-rapl:0", phase_joules)
        fake.now += 2.0
        ctx.count(100)
    details = ctx.collected["energy"].details
    assert details["idle"]["measured"] is True and details["idle"]["seconds"] == 1.5
    assert details["idle"]["watts"] == pytest.approx(10.0)
    assert details["gross_joules"] == pytest.approx(phase_joules) and details["idle_joules"] == pytest.approx(20.0)
    assert details["joules"] == pytest.approx(net_joules) and details["seconds"] == 2.0
    assert ctx.collected["energy"].value == pytest.approx(net_joules / 100 * 1000)
    assert "idle baseline of 10 W subtracted" in ctx.collected["energy"].method
    assert details["reader_thread"] == {"period_s": None, "reason": "the case ends within measure.timeout (60 s)"}
    assert details.get("below_idle_baseline", False) is (net_joules == 0.0)


def test_rapl_meter_undoes_one_wrap_per_read_and_tracks_the_read_gaps(tmp_path):
    root = tmp_path / "powercap"
    write_zone(root, "intel-rapl:0", "package-0", 900, max_range=1000, constraint_0_power_limit_uw=1_000)  # 1 mW
    fake = FakeTime()
    meter = RaplMeter(root, fake.clock)
    assert meter.safe_interval_s == pytest.approx(0.5)  # 1000 uJ at 1 mW: a wrap takes 1 s
    for value, total_uj in [(100, 200), (700, 800), (300, 1400)]:  # three reads, two of them after a wrap
        set_energy(root, "intel-rapl:0", value)
        fake.now += 0.4
        assert meter.read() == {"package-0": pytest.approx(total_uj / 1e6)}
    assert meter.longest_gap_s == pytest.approx(0.4)
    assert wrapped_delta(10, 30, 100) == 20 and wrapped_delta(90, 10, 100) == 20


def test_rapl_read_too_rarely_to_undo_wraps_fails_the_figure(tmp_path):
    root = tmp_path / "powercap"
    write_zone(root, "intel-rapl:0", "package-0", 0, max_range=10**9, constraint_0_power_limit_uw=10**7)  # 100 s
    fake = FakeTime()
    obs = observer(fake, powercap_root=str(root), idle_s=0)
    ctx = context(obs, timeout=30)  # no reader thread: the case should end in 30 s, but this phase lasts 80 s
    with ctx.measured():
        fake.now += 80.0
    assert "energy" not in ctx.collected
    assert ctx.errors["energy"] == (
        "observer 'energy' failed in stop: RuntimeError: rapl: the counters were read 80 s apart, more than 50 s "
        "(half a wrap at their power limit): they may have wrapped more than once"
    )


def _unreadable(root: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> str:
    """Spoil the fake tree ``how``; the reason the meter should give."""
    energy = root / "intel-rapl:0" / "energy_uj"
    if how == "permission":  # chmod does not stop root, who runs these tests in some containers
        real = Path.read_text

        def read_text(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.name == "energy_uj":
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", read_text)
        return (
            f"rapl: {energy}: permission denied (energy_uj is readable only by root since Linux 5.10; grant read "
            "access to use RAPL, e.g. with a udev rule)"
        )
    if how == "directory":
        energy.unlink()
        energy.mkdir()
        return f"rapl: {energy}: Is a directory"
    if how == "dangling link":
        energy.unlink()
        energy.symlink_to(root / "nowhere")
        return f"rapl: {energy}: No such file or directory"
    if how == "garbage":
        energy.write_text("n/a\n")
        return f"rapl: {energy}: not an integer: 'n/a'"
    if how == "only psys":
        for name in ("intel-rapl:0:1", "intel-rapl:0:0", "intel-rapl:0", "intel-rapl-mmio:0"):
            for file in (root / name).iterdir():
                file.unlink()
            (root / name).rmdir()
        return f"rapl: no package zone under {root} (found: psys)"
    assert how == "no tree"
    return f"rapl: no powercap tree at {root / 'missing'}"


UNREADABLE = ["permission", "directory", "dangling link", "garbage", "only psys", "no tree"]


@pytest.mark.parametrize("how", UNREADABLE)
def test_unreadable_rapl_falls_through_to_the_cpu_time_model_with_its_reason(powercap, monkeypatch, how):
    reason = _unreadable(powercap, monkeypatch, how)
    root = powercap / "missing" if how == "no tree" else powercap
    ctx = context(observer(powercap_root=str(root)))
    with ctx.measured():
        ctx.count(10)
    energy = ctx.collected["energy"]
    assert energy.details["meter"] == "cpu-time-model" and energy.method.startswith("cpu-time-model: estimate")
    assert energy.details["fallbacks"] == [reason, "nvml: the case's target is cpu, not cuda"]


@pytest.mark.parametrize("how", UNREADABLE)
def test_a_named_meter_that_cannot_measure_fails_only_its_figure(powercap, monkeypatch, how):
    reason = _unreadable(powercap, monkeypatch, how)
    root = powercap / "missing" if how == "no tree" else powercap
    ctx = context(observer(meter="rapl", powercap_root=str(root)))
    with ctx.measured():
        ctx.count(10)
    assert ctx.errors == {"energy": f"observer 'energy' failed in start: MeterUnavailable: {reason}"}


# ----------------------------------------------------------------------------- the CPU-time model


def spin_cpu(seconds: float) -> float:
    """Busy-loop until this process has used ``seconds`` more CPU time; the CPU seconds really used."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return time.process_time() - start


def test_cpu_time_model_prices_a_busy_loops_cpu_seconds_at_tdp_per_core():
    ctx = context(observer(meter="cpu-time-model", tdp_w=100.0))
    with ctx.measured():
        used = spin_cpu(0.3)
        ctx.count(1000)
    energy = ctx.collected["energy"]
    watts_per_core = 100.0 * cpu_packages() / os.cpu_count()
    assert energy.details["joules"] == pytest.approx(used * watts_per_core, rel=0.1)
    assert energy.value == pytest.approx(energy.details["joules"] / 1000 * 1000)
    assert energy.details["estimate"] is True and energy.details["meter"] == "cpu-time-model"
    assert energy.details["watts_per_core"] == pytest.approx(watts_per_core)
    assert energy.details["tdp_w"] == 100.0 and energy.details["tdp_source"] == "suite (tdp_w)"
    assert energy.method.startswith("cpu-time-model: estimate, process CPU seconds x ")
    # An idle process costs the model nothing, so no idle baseline was slept for (idle_s defaults to 1 s).
    assert energy.details["idle"]["measured"] is False


def test_cpu_time_model_of_a_sleeping_loop_is_about_zero():
    ctx = context(observer(meter="cpu-time-model", tdp_w=100.0))
    with ctx.measured():
        for _ in range(30):
            time.sleep(0.01)
        ctx.count(1000)
    watts_per_core = 100.0 * cpu_packages() / os.cpu_count()
    assert ctx.collected["energy"].details["joules"] < 0.02 * watts_per_core  # under 20 ms of CPU time


def test_tdp_comes_from_the_suite_else_the_table_else_the_default(tmp_path):
    assert tdp_for("Intel(R) Xeon(R) Platinum 8480+", 200.0) == (200.0, "suite (tdp_w)")
    assert tdp_for("Intel(R) Xeon(R) Platinum 8480+") == (350.0, "table ('Xeon Platinum 8480')")
    assert tdp_for("AMD EPYC 7763 64-Core Processor") == (280.0, "table ('EPYC 7763')")
    assert tdp_for("Intel(R) Xeon(R) Processor") == (
        DEFAULT_TDP_W,
        "default 85 W (codecarbon's for an unknown CPU; 'Intel(R) Xeon(R) Processor' is not in the table)",
    )
    two = tmp_path / "cpuinfo"
    two.write_text("processor\t: 0\nphysical id\t: 0\n\nprocessor\t: 1\nphysical id\t: 1\n")
    assert cpu_packages(two) == 2
    two.write_text("processor\t: 0\nmodel name\t: Cortex\n")
    assert cpu_packages(two) == 1
    model = CpuTimeModel(None)
    assert model.tdp_w == tdp_for(model.cpu_model)[0]
    assert model.watts_per_core == pytest.approx(model.tdp_w * cpu_packages() / os.cpu_count())


# ----------------------------------------------------------------------------- NVML


class NVMLError(Exception):
    pass


def fake_pynvml(energy_mj: dict[str, int], supported: bool = True) -> types.ModuleType:
    """A pynvml whose GPUs report ``energy_mj["now"]`` as their total energy; the handles asked for are recorded."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.handles = []

    def total_energy(handle):  # type: ignore[no-untyped-def]
        nvml.handles.append(handle)
        if not supported:
            raise NVMLError("Not Supported")
        return energy_mj["now"]

    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    nvml.nvmlDeviceGetHandleByUUID = lambda u: f"handle-{u.decode()}"
    nvml.nvmlDeviceGetTotalEnergyConsumption = total_energy
    return nvml


def test_nvml_reads_the_gpus_total_energy_and_subtracts_its_idle_baseline(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    energy_mj = {"now": 1_000_000}

    def idle(seconds: float) -> None:
        energy_mj["now"] += int(50_000 * seconds)  # 50 W while idle

    nvml = fake_pynvml(energy_mj)
    monkeypatch.setitem(__import__("sys").modules, "pynvml", nvml)
    fake = FakeTime(during_sleep=idle)
    # A readable RAPL tree is there too: on a cuda case the GPU's meter comes first.
    write_zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 0)
    ctx = context(observer(fake, powercap_root=str(tmp_path / "powercap")), target=GPU1)
    with ctx.measured():
        energy_mj["now"] += 600_000
        fake.now += 2.0
        ctx.count(1000)
    assert ctx.errors == {}
    energy = ctx.collected["energy"]
    details = energy.details
    assert set(nvml.handles) == {"handle1"}
    assert details["meter"] == "nvml" and details["estimate"] is False and details["fallbacks"] == []
    assert details["device"] == "cuda:1" and details["nvml_device"] == 1
    assert details["idle"]["watts"] == pytest.approx(50.0)
    assert details["gross_joules"] == pytest.approx(600.0) and details["joules"] == pytest.approx(500.0)
    assert energy.value == pytest.approx(500.0)  # 500 J over 1000 items: 500 mJ each
    assert energy.method == ("nvml: NVML total energy of cuda:1 (whole GPU), idle baseline of 50 W subtracted")
    assert "reader_thread" not in details


def test_nvml_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,GPU-abc")
    nvml = fake_pynvml({"now": 5})
    monkeypatch.setitem(__import__("sys").modules, "pynvml", nvml)
    meter, skipped = choose_meter(make_observer(Energy, meter="nvml").options, GPU1)
    assert meter.name == "nvml" and skipped == [] and nvml.handles == ["handle-GPU-abc"]


@pytest.mark.parametrize(
    ("pynvml", "reason"),
    [
        (None, "nvml: pynvml is not installed (pip install nvidia-ml-py  (or: pip install 'benchharness[cuda]'))"),
        (
            fake_pynvml({"now": 0}, supported=False),
            "nvml: cuda:1 gives no total energy (nvmlDeviceGetTotalEnergyConsumption: Not Supported; Volta or "
            "newer needed)",
        ),
    ],
    ids=["not installed", "not supported"],
)
def test_a_cuda_case_without_nvml_energy_falls_through_with_the_reason(monkeypatch, tmp_path, pynvml, reason):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "pynvml", pynvml)  # None: importing it raises ImportError
    ctx = context(observer(powercap_root=str(tmp_path / "none")), target=GPU1)
    with ctx.measured():
        ctx.count(1)
    details = ctx.collected["energy"].details
    assert details["meter"] == "cpu-time-model"
    assert details["fallbacks"] == [reason, f"rapl: no powercap tree at {tmp_path / 'none'}"]


# ----------------------------------------------------------------------------- per inference, and end to end


def test_a_scenario_that_does_not_count_gives_totals_but_no_figure_per_inference(powercap):
    ctx = context(observer(powercap_root=str(powercap), idle_s=0))
    with ctx.measured():
        add_energy(powercap, "intel-rapl:0", 4.0)
    energy = ctx.collected["energy"]
    assert energy.value is None and energy.details["items"] is None and energy.details["joules"] == 4.0
    assert energy.method.startswith("rapl: ")
    assert energy.method.endswith("; no figure per inference: the scenario did not count its items")


def test_bad_options_are_refused(write_suite, capsys):
    suite = write_suite(
        "name: e\nmodels: [{source: dummy, name: m}]\nbackends: [{name: scripted}]\n"
        "metrics: [latency, {name: energy, meter: rappl, idle_s: -1}]\n"
    )
    assert main(["validate", str(suite), "-p", "bh_testplugin"]) == 2
    err = capsys.readouterr().err
    assert "metrics[1].meter: Input should be 'auto', 'rapl', 'nvml' or 'cpu-time-model'" in err
    assert "metrics[1].idle_s: Input should be greater than or equal to 0" in err


def test_energy_per_inference_and_its_method_land_in_the_results_file(write_suite, tmp_path):
    suite = write_suite(
        "name: e\nmodels: [{source: dummy, name: m}]\nbackends: [{name: scripted, sleep_us: 200}]\n"
        "targets: [{name: cpu, threads: 1}]\n"
        f"metrics: [latency, {{name: energy, powercap_root: {tmp_path / 'none'}}}]\n"
        "measure: {min_samples: 20, max_time: 0.2, timeout: 60, warmup: {max_time: 0.05}}\n"
    )
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(tmp_path / "out"), "-q"]) == 0
    (path,) = (tmp_path / "out").glob("*.json")
    (case,) = json.loads(path.read_text())["cases"]
    assert case["status"] == "ok", case.get("error")
    energy = case["metrics"]["energy"]
    details = energy["details"]
    assert energy["unit"] == "mJ" and energy["method"].startswith("cpu-time-model: estimate")
    assert details["meter"] == "cpu-time-model" and details["estimate"] is True
    # The latency scenario counted one item per sample (batch 1), and the figure is per item.
    assert details["items"] == case["metrics"]["latency"]["summary"]["count"]
    assert details["joules"] > 0
    assert energy["value"] == pytest.approx(details["joules"] / details["items"] * 1000)
    assert details["fallbacks"][0] == f"rapl: no powercap tree at {tmp_path / 'none'}"
    # Each item is charged for its own CPU time (a 200 us busy-wait, plus the loop's share), not for the scipy
    # import of the first CI check, which the observer does before the phase: charged to the phase, that import
    # (over a second of CPU) made the figure about ten times this bound.
    assert details["joules_per_item"] < 2 * 200e-6 * details["watts_per_core"]
