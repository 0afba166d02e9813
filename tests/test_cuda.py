"""The ``cuda`` target and the backends' CUDA paths, on a machine without a GPU.

What can be checked here is checked for real: the skip with its reason where the GPU or the CUDA build is
missing (the torch and ONNX Runtime installed here are CPU builds), and the worker's plumbing (snapshots of the
device around the measured phase, the clock check, the device clock beside the host clock) with a fake NVML in
place of the driver and a scripted backend in place of a GPU framework.  The CUDA code of the torch and ONNX
Runtime backends themselves runs only on a GPU machine: docs/benchmarks.md records where and when it did.
"""

from __future__ import annotations

import json
import types

import benchharness_cuda
import pytest
from benchharness_cuda import CudaOptions, CudaTarget, _gpu_count
from benchharness_cuda.nvml import Nvml, reason_names, visible_device

from benchharness.api import TargetContext
from benchharness.cli import main
from benchharness.results import load_results

FAST = "metrics: [latency]\nmeasure: {min_samples: 20, max_time: 0.1, timeout: 30, warmup: {max_time: 0.05}}\n"


class NVMLError(Exception):
    pass


def fake_pynvml(sm_clocks: list[int], reasons: int = 0, unsupported: tuple[str, ...] = ()) -> types.ModuleType:
    """A pynvml whose GPU reports ``sm_clocks`` in turn (the last one repeats); ``unsupported`` queries raise."""
    clocks = list(sm_clocks)
    calls: list[str] = []

    def query(name, value):  # type: ignore[no-untyped-def]
        def call(*args):  # type: ignore[no-untyped-def]
            calls.append(name)
            if name in unsupported:
                raise NVMLError("Not Supported")
            return value(*args) if callable(value) else value

        return call

    def sm_or_memory(handle, which):  # type: ignore[no-untyped-def]
        if which == 1:
            return clocks.pop(0) if len(clocks) > 1 else clocks[0]
        return 2619

    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM, nvml.NVML_TEMPERATURE_GPU = 1, 2, 0
    nvml.calls = calls
    for name, value in {
        "nvmlInit": None,
        "nvmlDeviceGetHandleByIndex": lambda i: f"handle{i}",
        "nvmlDeviceGetHandleByUUID": lambda u: f"handle-{u.decode()}",
        "nvmlDeviceGetName": b"NVIDIA H200",
        "nvmlDeviceGetUUID": "GPU-1234",
        "nvmlSystemGetDriverVersion": "580.65.06",
        "nvmlSystemGetCudaDriverVersion": 13000,
        "nvmlDeviceGetMemoryInfo": types.SimpleNamespace(total=150 << 30),
        "nvmlDeviceGetPciInfo": types.SimpleNamespace(busId="00000000:19:00.0"),
        "nvmlDeviceGetMaxClockInfo": 1980,
        "nvmlDeviceGetEnforcedPowerLimit": 700000,
        "nvmlDeviceGetPersistenceMode": 1,
        "nvmlDeviceGetClockInfo": sm_or_memory,
        "nvmlDeviceGetTemperature": 41,
        "nvmlDeviceGetPowerUsage": 123456,
        "nvmlDeviceGetPerformanceState": 0,
        "nvmlDeviceGetUtilizationRates": types.SimpleNamespace(gpu=97),
        "nvmlDeviceGetCurrentClocksThrottleReasons": reasons,
    }.items():
        setattr(nvml, name, query(name, value))
    return nvml


@pytest.fixture
def gpus(tmp_path, monkeypatch):
    """Two fake NVIDIA device files (plus nvidiactl, which is not a GPU); no CUDA_VISIBLE_DEVICES."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    monkeypatch.setattr(benchharness_cuda, "DEVICE_GLOB", str(dev / "nvidia[0-9]*"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return dev


# ----------------------------------------------------------------------------- is there a GPU?


def test_gpu_count_reads_the_device_files_and_cuda_visible_devices(gpus):
    assert _gpu_count({}) == (2, str(gpus / "nvidia[0-9]*"))
    assert _gpu_count({"CUDA_VISIBLE_DEVICES": "1"})[0] == 1
    assert _gpu_count({"CUDA_VISIBLE_DEVICES": "0,1"})[0] == 2
    assert _gpu_count({"CUDA_VISIBLE_DEVICES": "1,-1,0"})[0] == 1  # CUDA stops at the first invalid entry
    assert _gpu_count({"CUDA_VISIBLE_DEVICES": ""})[0] == 0
    assert _gpu_count({"CUDA_VISIBLE_DEVICES": "-1"})[0] == 0


def test_a_missing_gpu_or_index_is_the_reason_for_a_skip(gpus, monkeypatch):
    assert CudaTarget.unavailable_here(CudaOptions(index=1)) is None
    assert CudaTarget.unavailable_here(CudaOptions(index=2)) == (
        f"needs cuda:2; this machine has 2 GPU(s) ({gpus / 'nvidia[0-9]*'})"
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert CudaTarget.unavailable_here(CudaOptions()) == "no NVIDIA GPU is visible: CUDA_VISIBLE_DEVICES='-1'"
    for name in ("nvidia0", "nvidia1"):
        (gpus / name).unlink()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert CudaTarget.unavailable_here(CudaOptions()) == (
        f"no NVIDIA GPU on this machine ({gpus / 'nvidia[0-9]*'} is missing)"
    )


def test_without_a_gpu_a_cuda_suite_is_skipped_with_its_reason_and_exits_0(write_suite, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(benchharness_cuda, "DEVICE_GLOB", str(tmp_path / "nothing" / "nvidia[0-9]*"))
    suite = write_suite(
        "name: g\nmodels: [{source: dummy, name: m}]\nbackends: [{name: scripted-gpu}]\n"
        f"targets: [{{name: cuda}}, {{name: cuda, index: 1, label: 'cuda:1'}}, {{name: cpu}}]\n{FAST}"
    )
    # Inline: the skips are decided in this process, before any launcher; the cpu case needs no worker of its own.
    args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(tmp_path / "out"), "--format", "table"]
    code = main([*args, "--launcher", "inline"])
    out, err = capsys.readouterr()
    assert code == 0
    (path,) = (tmp_path / "out").glob("*.json")
    cases = {c.config.target.label: c for c in load_results(path).cases}
    reason = f"no NVIDIA GPU on this machine ({tmp_path / 'nothing' / 'nvidia[0-9]*'} is missing)"
    assert cases["cuda"].status == cases["cuda:1"].status == "skipped"
    assert cases["cuda"].error == cases["cuda:1"].error == reason
    assert cases["cpu"].status == "ok"
    assert "skipped    " in out and "no NVIDIA GPU on this machine (" in out  # the table's note (cut to fit)
    assert "2 of 3 cases skipped: " + reason + ": m/none/scripted-gpu/cuda/latency/b1 and 1 more" in err


def test_the_targets_command_lists_cuda_with_why_this_machine_lacks_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(benchharness_cuda, "DEVICE_GLOB", str(tmp_path / "nvidia[0-9]*"))
    assert main(["targets", "--json"]) == 0
    (cuda,) = [t for t in json.loads(capsys.readouterr().out) if t["name"] == "cuda"]
    assert cuda["available"] is False
    assert cuda["reason"] == f"no NVIDIA GPU on this machine ({tmp_path / 'nvidia[0-9]*'} is missing)"


# ----------------------------------------------------------------------------- NVML facts and state


def test_visible_device_maps_cuda_indices_to_nvml_devices():
    assert visible_device(1, {}) == ("index", 1)
    assert visible_device(0, {"CUDA_VISIBLE_DEVICES": "3,1"}) == ("index", 3)
    assert visible_device(1, {"CUDA_VISIBLE_DEVICES": "3, GPU-abc"}) == ("uuid", "GPU-abc")
    with pytest.raises(LookupError, match="lists no device 2"):
        visible_device(2, {"CUDA_VISIBLE_DEVICES": "0,1"})
    with pytest.raises(LookupError, match="MIG"):
        visible_device(0, {"CUDA_VISIBLE_DEVICES": "MIG-xyz"})


def test_nvml_facts_and_state_leave_out_what_the_board_does_not_support(monkeypatch):
    monkeypatch.setitem(
        __import__("sys").modules,
        "pynvml",
        fake_pynvml([1980], reasons=0x4 | 0x1 | 0x8000, unsupported=("nvmlDeviceGetPowerUsage",)),
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234")
    gpu = Nvml(0)
    assert gpu.handle == "handle-GPU-1234"
    assert gpu.facts() == {
        "nvml_device": "GPU-1234",
        "name": "NVIDIA H200",  # bytes from older pynvml, decoded
        "uuid": "GPU-1234",
        "driver_version": "580.65.06",
        "cuda_driver_version": "13.0",
        "memory_total_bytes": 150 << 30,
        "pci_bus_id": "00000000:19:00.0",
        "max_sm_clock_mhz": 1980,
        "power_limit_w": 700.0,
        "persistence_mode": True,
    }
    assert gpu.state() == {
        "sm_clock_mhz": 1980,
        "memory_clock_mhz": 2619,
        "temperature_c": 41,
        "pstate": "P0",
        "utilization_pct": 97,
        "clock_event_reasons": ["gpu_idle", "sw_power_cap", "0x8000"],
    }  # no power_w: not supported


def test_reason_names():
    assert reason_names(0) == []
    assert reason_names(0x40 | 0x20) == ["sw_thermal_slowdown", "hw_thermal_slowdown"]


# ----------------------------------------------------------------------------- a case on a (fake) GPU


def run_on_fake_gpu(write_suite, tmp_path, monkeypatch, nvml, extra=""):  # type: ignore[no-untyped-def]
    monkeypatch.setitem(__import__("sys").modules, "pynvml", nvml)
    suite = write_suite(
        "name: g\nmodels: [{source: dummy, name: m}]\nbackends: [{name: scripted-gpu, sleep_us: 100}]\n"
        f"targets: [{{name: cuda, index: 1{extra}}}]\n{FAST}"
    )
    code = main(["run", str(suite), "-p", "bh_testplugin", "-o", str(tmp_path / "out"), "-q", "--launcher", "inline"])
    (path,) = (tmp_path / "out").glob("*.json")
    (case,) = load_results(path).cases
    return code, case


def test_a_case_on_cuda_records_the_gpu_facts_and_its_state_at_each_point(gpus, write_suite, tmp_path, monkeypatch):
    code, case = run_on_fake_gpu(write_suite, tmp_path, monkeypatch, fake_pynvml([1980]))
    assert code == 0, case.error
    target = case.runtime.target
    assert target.device == "cuda" and target.details["index"] == 1 and target.details["kind"] == "CUDA GPU"
    assert target.details["gpu"]["name"] == "NVIDIA H200" and target.details["gpu"]["nvml_device"] == 1
    snapshots = target.details["snapshots"]
    assert list(snapshots) == ["applied", "measured_start", "measured_end", "end"]
    assert all(s["sm_clock_mhz"] == 1980 and s["power_w"] == 123.456 for s in snapshots.values())
    assert case.warnings == []
    # The device clock, beside the host's: one device time per sampled call, none from warm-up.
    latency = case.metrics["latency"]
    device = latency.details["device_clock"]
    count = latency.summary.count
    assert device["method"] == "call number in microseconds" and device["count"] == count
    assert device["median_ms"] == pytest.approx((count + 1) / 2 / 1000)  # the median of 1..count µs
    assert device["host_minus_device_median_ms"] == pytest.approx(latency.value - device["median_ms"])


def test_clocks_that_move_in_the_measured_phase_or_a_slowdown_warn(gpus, write_suite, tmp_path, monkeypatch):
    # applied 345 MHz (idle), measured_start 1980, measured_end 1500: the clock fell by 24% while measuring.
    code, case = run_on_fake_gpu(write_suite, tmp_path, monkeypatch, fake_pynvml([345, 1980, 1500], reasons=0x20))
    assert code == 0
    assert case.warnings == [
        "cuda:1: the SM clock went from 1980 to 1500 MHz during the measured phase: clocks were not steady "
        "(a longer warm-up, or clocks locked with nvidia-smi -lgc, steadies them)",
        "cuda:1: the GPU was slowed down during the measured phase (sw_thermal_slowdown)",
    ]
    # Within the tolerance, no warning about the clock.
    (tmp_path / "out").rename(tmp_path / "first")
    code, case = run_on_fake_gpu(
        write_suite, tmp_path, monkeypatch, fake_pynvml([345, 1980, 1500]), extra=", clock_tolerance: 0.3"
    )
    assert code == 0 and case.warnings == []


def test_without_nvml_a_cuda_case_runs_and_says_what_is_missing(gpus, write_suite, tmp_path, monkeypatch):
    code, case = run_on_fake_gpu(write_suite, tmp_path, monkeypatch, None)  # None in sys.modules: ImportError
    assert code == 0, case.error
    details = case.runtime.target.details
    assert details["gpu"] == {
        "nvml": "not installed, no GPU facts or clocks recorded: pip install nvidia-ml-py  "
        "(or: pip install 'benchharness[cuda]')"
    }
    assert "snapshots" not in details


def test_a_failing_snapshot_is_a_warning_not_a_failure(gpus, write_suite, tmp_path, monkeypatch):
    nvml = fake_pynvml([1980])
    calls = {"n": 0}

    def flaky(handle, which):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # the measured_start snapshot's SM clock
            raise RuntimeError("driver went away")
        return 1980

    nvml.nvmlDeviceGetClockInfo = flaky
    code, case = run_on_fake_gpu(write_suite, tmp_path, monkeypatch, nvml)
    assert code == 0 and case.status == "ok"
    assert case.warnings == ["target 'cuda': snapshot 'measured_start' failed: RuntimeError: driver went away"]
    assert list(case.runtime.target.details["snapshots"]) == ["applied", "measured_end", "end"]


def test_a_backend_that_cannot_use_the_device_here_skips_the_case(gpus, write_suite, tmp_path, monkeypatch):
    monkeypatch.setenv("BH_GPU_BACKEND_MISSING", "no driver")
    code, case = run_on_fake_gpu(write_suite, tmp_path, monkeypatch, fake_pynvml([1980]))
    assert code == 0
    assert case.status == "skipped" and case.error == "scripted-gpu cannot use cuda here: no driver"


# ----------------------------------------------------------------------------- the real backends' CUDA checks


CUDA = TargetContext(device="cuda", threads=1, details={"index": 0})


def test_cpu_only_onnxruntime_says_to_install_onnxruntime_gpu():
    ort = pytest.importorskip("onnxruntime")
    from benchharness_onnxruntime import OnnxRuntimeBackend

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    reason = OnnxRuntimeBackend.unavailable_on(CUDA)
    assert reason is not None and reason.startswith(f"onnxruntime {ort.__version__} here has no CUDA execution")
    assert reason.endswith("pip install onnxruntime-gpu in place of onnxruntime")
    assert OnnxRuntimeBackend.unavailable_on(TargetContext(device="cpu", threads=1)) is None


def test_torch_without_cuda_says_so():
    torch = pytest.importorskip("torch")
    from benchharness_torch import TorchBackend

    if torch.cuda.is_available():
        pytest.skip("this torch sees a GPU")
    reason = TorchBackend.unavailable_on(CUDA)
    assert reason is not None and reason.startswith(f"torch {torch.__version__}")
    assert TorchBackend.unavailable_on(TargetContext(device="cpu", threads=1)) is None


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_real_backend_on_a_gpu_this_build_cannot_use_is_skipped(backend, gpus, write_suite, tmp_path, monkeypatch):
    """The machine has a (fake) GPU, but torch and ONNX Runtime here are CPU builds: skipped, with the reason."""
    framework = pytest.importorskip(backend)
    if (
        framework.cuda.is_available()
        if backend == "torch"
        else "CUDAExecutionProvider" in framework.get_available_providers()
    ):
        pytest.skip(f"{backend} here can use CUDA")
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake_pynvml([1980]))
    suite = write_suite(
        "name: g\nmodels: [{source: zoo, arch: mobilenet_v2, width: 0.25, input_size: 32, num_classes: 10}]\n"
        f"backends: [{{name: {backend}}}]\ntargets: [{{name: cuda}}]\n{FAST}"
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q", "--launcher", "inline"]) == 0
    (case,) = load_results(next(out.glob("*.json"))).cases
    assert case.status == "skipped"
    assert "CUDA" in case.error and ("onnxruntime-gpu" in case.error or "torch" in case.error)
    assert case.runtime.target.details["gpu"]["name"] == "NVIDIA H200"  # the target applied; the backend declined
