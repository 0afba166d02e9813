"""The runner end to end with the framework-free test plugin: isolation, failures, interrupt and resume.

Tests of isolation, failures and interrupts run each case in a worker process (the default launcher); the others
pass ``--launcher inline`` (``INLINE``), which records the same results without starting a worker per case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.errors import BenchError
from benchharness.results import SCHEMA_VERSION, load_results

PLUGIN_DIR = Path(__file__).parent / "plugins"
INLINE = ("--launcher", "inline")

FAST = """
measure:
  min_samples: 20
  max_time: 0.2
  timeout: {timeout}
  warmup: {{max_time: 0.1}}
"""


def suite_text(backends: str, timeout: float = 20, extra: str = "") -> str:
    return (
        "name: t\n"
        "models: [{source: dummy, name: m}]\n"
        f"backends:\n{backends}\n"
        "metrics: [latency, throughput, model_size]\n" + FAST.format(timeout=timeout) + extra
    )


def only_result(out: Path) -> Path:
    files = list(out.glob("*.json"))
    assert len(files) == 1, files
    return files[0]


def test_failures_are_recorded_and_the_run_goes_on(write_suite, tmp_path, capsys):
    suite = write_suite(
        suite_text(
            "  - {name: scripted, label: crash, mode: crash}\n"
            "  - {name: scripted, label: hang, mode: hang}\n"
            "  - {name: scripted, label: error, mode: error}\n"
            "  - {name: scripted, label: abort, mode: abort}\n"
            "  - {name: scripted, label: fine, mode: ok, sleep_us: 50}",
            timeout=6,  # generous: the other cases must start and finish within it on a loaded CI box
        )
    )
    out = tmp_path / "out"
    code = main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q"])
    assert code == 1  # some cases failed
    results = load_results(only_result(out))
    status = {c.case_id.split("/")[2]: c for c in results.cases}
    assert [c.case_id.split("/")[2] for c in results.cases] == ["crash", "hang", "error", "abort", "fine"]
    crash = status["crash"]
    assert crash.status == "crashed"
    assert crash.runtime.signal == "SIGSEGV"
    assert crash.error == "worker killed by signal SIGSEGV"
    # faulthandler left the Python stack in the log: the plugin's load() is in it.
    assert "Fatal Python error: Segmentation fault" in crash.traceback
    assert 'bh_testplugin.py", line' in crash.traceback and "in load" in crash.traceback
    # What was known when it died is kept: the stage, the target, the model and its resolved inputs.
    assert crash.runtime.stage == "backend"
    assert crash.runtime.target.threads >= 1
    assert crash.runtime.model.content_hash == "dummy-4"
    assert [i.model_dump(exclude_none=True) for i in crash.runtime.model.inputs] == [
        {"name": "x", "shape": [1, 4], "dtype": "float32"}
    ]
    assert status["hang"].status == "timeout"
    assert status["hang"].error == "no result after 6 s; the worker was killed"
    assert status["hang"].runtime.stage == "scenario"
    error = status["error"]
    assert error.status == "error"
    assert error.error == "RuntimeError: scripted failure while loading"
    assert "Traceback" in error.traceback
    assert error.runtime.stage == "backend" and error.runtime.model.format == "dummy"
    assert status["abort"].status == "crashed"
    assert status["abort"].error == "worker exited with code 3 and no result"
    fine = status["fine"]
    assert fine.status == "ok"
    latency = fine.metrics["latency"]
    assert latency.summary.count == len(latency.samples) >= 20
    assert latency.value == pytest.approx(latency.summary.median / 1e6)
    assert 50_000 <= latency.summary.median  # it busy-waits 50 µs
    assert fine.metrics["throughput"].value == pytest.approx(1e3 / latency.value)
    assert fine.metrics["model_size"].details["bytes"] == 16
    assert results.complete
    captured = capsys.readouterr()
    assert "fine" in captured.out and "crashed" in captured.out and "timeout" in captured.out
    assert "4 of 5 cases failed" in captured.err


def test_results_round_trip_and_show(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text("  - {name: scripted, mode: ok}", extra="batch_sizes: [1, 2]\n"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--format", "json", *INLINE]) == 0
    path = only_result(out)
    raw = json.loads(path.read_text())
    results = load_results(path)
    assert json.loads(results.model_dump_json()) == raw
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["suite"]["hash"] and raw["suite"]["data"]["name"] == "t"
    assert raw["machine"]["cores_logical"] >= 1 and raw["machine"]["python"]
    assert {p["name"] for p in raw["plugins"]} >= {"bh_testplugin", "cpu", "metrics"}
    case = results.cases[0]
    assert case.case_id == "m/none/scripted/cpu/latency/b1"
    assert {p.kind: p.plugin for p in case.provenance}["backends"] == "bh_testplugin"
    assert {p.kind: p.version for p in case.provenance}["backends"] == "9.9.9"
    assert case.runtime.backend["threads"] == case.runtime.target.threads >= 1
    assert case.config.model.inputs[0].shape == ["batch", 4]  # the plan's resolved inputs, kept symbolic
    printed = json.loads(capsys.readouterr().out)
    assert [row["batch"] for row in printed] == [1, 2]
    assert main(["show", str(path), "--format", "csv", "-p", "bh_testplugin"]) == 0
    csv_lines = capsys.readouterr().out.strip().splitlines()
    assert csv_lines[0].startswith("model,backend,batch,status,latency median (ms)")
    assert len(csv_lines) == 3


def test_results_of_another_schema_version_are_refused(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema_version": 99, "cases": []}))
    with pytest.raises(BenchError) as err:
        load_results(path)
    assert str(err.value) == (
        f"{path}: results schema version 99 is not supported; this benchharness reads versions 1 to "
        f"{SCHEMA_VERSION} (a newer benchharness wrote it?)"
    )
    path.write_text("{not json")
    with pytest.raises(BenchError, match=r"old.json:1: not a results file: invalid JSON"):
        load_results(path)


def test_interrupted_run_keeps_finished_cases_and_resumes(write_suite, tmp_path):
    # The last case hangs until resumed (with BH_RESUMED set), so the run cannot end before the interrupt however
    # slowly this test's polling runs on a loaded machine.
    backends = "\n".join(f"  - {{name: scripted, label: b{i}, mode: ok, sleep_us: 200}}" for i in range(3))
    backends += "\n  - {name: scripted, label: b3, mode: ok, sleep_us: 200, hang_unless_env: BH_RESUMED}"
    suite = write_suite(
        "name: t\nmodels: [{source: dummy, name: m}]\n"
        f"backends:\n{backends}\n"
        "measure: {min_samples: 20, max_time: 0.2, target_ci: 0.00001, warmup: {max_time: 0.1}}\n"
    )
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "benchharness", "run", str(suite), "-p", "bh_testplugin", "-o", str(out)]
    # SIGINT as a terminal delivers it: a test run in the background of a script inherits it ignored, and
    # Python then installs no KeyboardInterrupt handler.
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    path = None
    while time.monotonic() < deadline:
        files = list(out.glob("*.json")) if out.exists() else []
        if files and json.loads(files[0].read_text())["cases"]:
            path = files[0]
            break
        time.sleep(0.05)
    assert path is not None, "no case finished in time"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    interrupted = load_results(path)
    done = [c.case_id for c in interrupted.cases]
    assert 1 <= len(done) < 4
    assert not interrupted.complete
    assert f"continue with: benchharness run {suite} --resume {path}" in stderr

    env["BH_RESUMED"] = "1"
    # The resumed run's cases need no worker of their own: what is checked now is which cases it runs and keeps.
    resume = [*cmd, "--resume", str(path), "-q", *INLINE]
    resumed = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    final = load_results(path)
    assert [c.case_id for c in final.cases] == [f"m/none/b{i}/cpu/latency/b1" for i in range(4)]
    assert final.complete
    # The cases finished before the interrupt were kept, not run again.
    final_cases = {c.case_id: c for c in final.cases}
    for before in interrupted.cases:
        assert final_cases[before.case_id] == before
    assert list(out.glob("*.json")) == [path]


def test_resume_refuses_a_different_suite(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text("  - {name: scripted, mode: ok}"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *INLINE]) == 0
    path = only_result(out)
    capsys.readouterr()
    suite.write_text(suite.read_text().replace("name: t", "name: changed"))
    assert main(["run", str(suite), "-p", "bh_testplugin", "--resume", str(path), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"benchharness: error: {path}: was written for a different version of {suite} (suite hash differs); "
        "run without --resume to start a new results file"
    )


def test_a_metric_of_the_wrong_type_is_that_metrics_error(write_suite, tmp_path, capsys):
    suite = write_suite(
        suite_text("  - {name: scripted, mode: ok}").replace(
            "metrics: [latency, throughput, model_size]", "metrics: [latency, bogus, model_size]"
        )
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *INLINE]) == 1
    (case,) = load_results(only_result(out)).cases
    assert case.status == "ok"
    assert case.metric_errors == {"bogus": "metric 'bogus' failed: MetricValue: value: Input should be a valid number"}
    assert set(case.metrics) == {"latency", "throughput", "model_size"}  # the others are kept
    captured = capsys.readouterr()
    assert "bogus: metric 'bogus' failed" in captured.out  # the table's note
    assert (
        "m/none/scripted/cpu/latency/b1: bogus: metric 'bogus' failed: MetricValue: value: Input should be a valid number"
        in captured.err
    )


def test_an_unusable_output_folder_is_one_line(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text("  - {name: scripted, mode: ok}"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(blocker / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"benchharness: error: the results folder {blocker / 'out'} is not writable: Not a directory"


def test_figures_fail_one_by_one(write_suite, tmp_path):
    """A broken observer, a metric returning a float and a scenario without a measured phase cost only their figures."""
    suite = write_suite(
        "name: t\nmodels: [{source: dummy, name: m}]\nbackends: [{name: scripted}]\n"
        "scenarios: [latency, unmeasured]\n"
        "metrics: [latency, phase_time, broken_observer, plain_float, model_size]\n" + FAST.format(timeout=20)
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "inline"]) == 1
    latency, unmeasured = load_results(only_result(out)).cases
    assert latency.status == unmeasured.status == "ok"
    assert latency.launcher == "inline"
    assert latency.metric_errors == {
        "broken_observer": "observer 'broken_observer' failed in stop: RuntimeError: observer broke",
        "plain_float": "metric 'plain_float' failed: TypeError: returned float, expected MetricValue",
    }
    assert set(latency.metrics) == {"latency", "throughput", "phase_time", "model_size"}
    assert latency.metrics["phase_time"].details == {"phase_at_start": "open"}
    # The measured phase is the sampling: it lasts at least as long as the samples themselves.
    assert latency.metrics["phase_time"].value * 1e9 >= sum(latency.metrics["latency"].samples)
    assert unmeasured.metric_errors["phase_time"] == (
        "observer 'phase_time' never ran: scenario 'unmeasured' did not enter ctx.measured()"
    )
    assert set(unmeasured.metrics) == {"calls", "model_size"}


def test_the_payload_is_portable(write_suite, tmp_path, monkeypatch):
    """A worker elsewhere needs neither the parent's sys.path nor its absolute paths."""
    import bh_testplugin
    from conftest import write_onnx

    write_onnx(tmp_path / "models" / "m.onnx")
    suite = write_suite(
        "name: t\nmodels: [{source: onnx, path: models/m.onnx}]\nbackends: [{name: onnxruntime}]\n"
        + FAST.format(timeout=20)
    )
    monkeypatch.chdir(tmp_path)
    bh_testplugin.PAYLOADS.clear()
    args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(tmp_path / "out"), "-q", "--launcher", "recording"]
    assert main(args) == 0
    (payload,) = bh_testplugin.PAYLOADS
    assert str(tmp_path) not in payload and os.getcwd() not in payload
    assert not any(entry in payload for entry in sys.path if len(entry) > 1)
    data = json.loads(payload)
    assert set(data) == {"protocol", "case", "plugins"}
    assert data["plugins"] == {"extra": ["bh_testplugin"], "blocked": [], "autoload": True}
    assert data["case"]["model"]["options"] == {"path": "models/m.onnx"}


def test_few_samples_say_so_in_the_table(write_suite, tmp_path, capsys):
    suite = write_suite(
        "name: t\nmodels: [{source: dummy, name: m}]\n"
        "backends: [{name: scripted, sleep_us: 100000}]\n"
        "measure: {min_samples: 20, max_time: 0.12, min_time: 0, warmup: {max_time: 0.01, min_time: 0}}\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *INLINE]) == 0
    (case,) = load_results(only_result(out)).cases
    count = case.metrics["latency"].summary.count
    assert count < 6  # 0.1 s calls, 0.24 s at most: never enough for a 95% CI
    table = capsys.readouterr().out
    row = table.splitlines()[2]
    assert f"{count} samples, CI unknown" in row
    assert " unknown " in row


def test_the_speedup_baseline_is_never_a_failed_case(write_suite, tmp_path, capsys):
    from benchharness.table import build

    suite = write_suite(
        suite_text(
            "  - {name: scripted, label: first, mode: error}\n"
            "  - {name: scripted, label: second, sleep_us: 200}\n"
            "  - {name: scripted, label: third, sleep_us: 100}"
        )
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *INLINE]) == 1
    results = load_results(only_result(out))
    first, second, third = build(results).rows
    assert first["speedup"] is None
    # The default baseline, the first backend, failed: the next one that ran stands in, and the note says so.
    assert second["speedup"] == pytest.approx(1.0)
    assert "speedup vs second (first error)" in second["note"]
    lat = {c.config.backend.label: c.metrics["latency"].value for c in results.cases if c.status == "ok"}
    assert third["speedup"] == pytest.approx(lat["second"] / lat["third"])
    # An explicit baseline that failed gives no ratio at all, and says why.
    results.suite.data["baseline"] = {"backend": "first"}
    rows = build(results).rows
    assert [r["speedup"] for r in rows] == [None, None, None]
    assert "baseline (backend=first) error" in rows[1]["note"]
