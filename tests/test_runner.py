"""The runner end to end with the framework-free test plugin: isolation, failures, interrupt and resume."""

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
    assert status["crash"].status == "crashed"
    assert status["crash"].runtime["signal"] == "SIGSEGV"
    assert status["crash"].error == "worker killed by signal SIGSEGV"
    assert status["hang"].status == "timeout"
    assert status["hang"].error == "no result after 6 s; the worker was killed"
    assert status["error"].status == "error"
    assert status["error"].error == "RuntimeError: scripted failure while loading"
    assert "Traceback" in status["error"].traceback
    assert status["abort"].status == "crashed"
    assert status["abort"].error == "worker exited with code 3 and no result"
    fine = status["fine"]
    assert fine.status == "ok"
    latency = fine.metrics["latency"]
    assert latency.summary["count"] == len(latency.samples) >= 20
    assert latency.value == pytest.approx(latency.summary["median"] / 1e6)
    assert 50_000 <= latency.summary["median"] < 5_000_000  # it busy-waits 50 µs
    assert fine.metrics["throughput"].value == pytest.approx(1e3 / latency.value)
    assert fine.metrics["model_size"].details["bytes"] == 16
    assert results.complete
    captured = capsys.readouterr()
    assert "fine" in captured.out and "crashed" in captured.out and "timeout" in captured.out
    assert "4 of 5 cases failed" in captured.err


def test_results_round_trip_and_show(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text("  - {name: scripted, mode: ok}", extra="batch_sizes: [1, 2]\n"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--format", "json"]) == 0
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
    assert {p["kind"]: p["plugin"] for p in case.provenance}["backends"] == "bh_testplugin"
    assert {p["kind"]: p["version"] for p in case.provenance}["backends"] == "9.9.9"
    assert case.runtime["backend"]["threads"] == case.runtime["target"]["threads"] >= 1
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
        f"{path}: results schema version 99 is not supported; this benchharness reads version {SCHEMA_VERSION}"
    )
    path.write_text("{not json")
    with pytest.raises(BenchError, match=r"old.json:1: not a results file: invalid JSON"):
        load_results(path)


def test_interrupted_run_keeps_finished_cases_and_resumes(write_suite, tmp_path):
    backends = "\n".join(f"  - {{name: scripted, label: b{i}, mode: ok, sleep_us: 200}}" for i in range(4))
    suite = write_suite(
        "name: t\nmodels: [{source: dummy, name: m}]\n"
        f"backends:\n{backends}\n"
        "measure: {min_samples: 20, max_time: 1.0, target_ci: 0.00001, warmup: {max_time: 0.1}}\n"
    )
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "benchharness", "run", str(suite), "-p", "bh_testplugin", "-o", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

    resumed = subprocess.run(cmd + ["--resume", str(path), "-q"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    final = load_results(path)
    assert [c.case_id for c in final.cases] == [f"m/none/b{i}/cpu/latency/b1" for i in range(4)]
    assert final.complete
    # The cases finished before the interrupt were kept, not run again.
    for before in interrupted.cases:
        assert final.case(before.case_id) == before
    assert list(out.glob("*.json")) == [path]


def test_resume_refuses_a_different_suite(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text("  - {name: scripted, mode: ok}"))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q"]) == 0
    path = only_result(out)
    capsys.readouterr()
    suite.write_text(suite.read_text().replace("name: t", "name: changed"))
    assert main(["run", str(suite), "-p", "bh_testplugin", "--resume", str(path), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"benchharness: error: {path}: was written for a different version of {suite} (suite hash differs); "
        "run without --resume to start a new results file"
    )


def test_an_invalid_worker_result_is_a_recorded_error(write_suite, tmp_path):
    suite = write_suite("name: t\nmodels: [{source: dummy, name: m}]\nbackends: [{name: scripted}]\nmetrics: [bogus]\n")
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q"]) == 1
    (case,) = load_results(only_result(out)).cases
    assert case.status == "error"
    assert case.error.startswith("the worker's result is invalid: 1 validation error for CaseResult")


def test_an_unusable_output_folder_is_one_line(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text("  - {name: scripted, mode: ok}"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(blocker / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("benchharness: error: [Errno 20] Not a directory:")
    assert "\n" not in err
