"""Targets: edge emulation applied and read back in the worker, out-of-memory cases, and targets a machine lacks.

Every run of limits and out-of-memory cases here goes through ``benchharness run`` and the ``process`` launcher, so
each case's limits are set in a worker of its own and read back there, both by the target and, independently, by
the test backend.  The runs of targets a machine lacks are inline: the runner skips those before any launcher.
"""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

import numpy as np
import pytest
from benchharness_cpu.memory import cgroup_place, method_unavailable, parse_size

from benchharness.api import MemoryLimit, Workspace
from benchharness.cli import main
from benchharness.errors import BenchError
from benchharness.results import load_results
from benchharness.runner import failed_before
from benchharness.worker import oom_killed, out_of_memory

ALLOWED = sorted(os.sched_getaffinity(0))
FAST = "metrics: [latency]\nmeasure: {min_samples: 20, max_time: 0.1, timeout: 30, warmup: {max_time: 0.05}}\n"
MiB = 1 << 20
needs_cgroup = pytest.mark.skipif(
    cgroup_place() is None, reason="no writable cgroup with the memory controller on this machine"
)


def suite_text(backends: str, targets: str, name: str = "t") -> str:
    return f"name: {name}\nmodels: [{{source: dummy, name: m}}]\nbackends:\n{backends}\ntargets:\n{targets}\n{FAST}"


def run(suite: Path, out: Path, *extra: str) -> tuple[int, list]:
    code = main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", *extra])
    (path,) = out.glob("*.json")
    return code, load_results(path).cases


def by_label(cases: list, axis: str = "backend") -> dict:
    return {getattr(c.config.axes(), axis): c for c in cases}


# ----------------------------------------------------------------------------- applied and read back


def test_edge_pins_cores_limits_threads_and_caps_memory_as_read_back_in_the_worker(write_suite, tmp_path):
    core = ALLOWED[-1]
    suite = write_suite(
        suite_text(
            "  - {name: scripted, report_limits: true}",
            f"  - {{name: edge, cores: [{core}], threads: 3, memory: 1g, memory_method: rlimit}}",
        )
    )
    before = (os.sched_getaffinity(0), resource.getrlimit(resource.RLIMIT_AS))
    code, cases = run(suite, tmp_path / "out")
    assert code == 0, cases[0].error
    (case,) = cases
    target = case.runtime.target
    # What the target read back in the worker after setting it.
    assert target.device == "cpu" and target.cores == [core] and target.threads == 3
    assert target.memory == MemoryLimit(limit_bytes=1 << 30, method="RLIMIT_AS")
    assert target.details["kind"] == "resource-constrained host"
    assert target.details["requested"] == {"cores": [core], "threads": 3, "memory": "1g", "memory_method": "rlimit"}
    assert target.details["env"]["OMP_NUM_THREADS"] == target.details["env"]["MKL_NUM_THREADS"] == "3"
    assert target.details["thread_affinities"] == [[core]]  # every thread, not only the one that called apply
    # What the backend itself found in force in the same worker, after loading.
    seen = case.runtime.backend
    assert seen["affinity"] == [core] and seen["rlimit_as"] == 1 << 30 and seen["threads"] == 3
    assert seen["thread_affinities"] == [[core]]
    assert seen["env"] == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    assert (os.sched_getaffinity(0), resource.getrlimit(resource.RLIMIT_AS)) == before  # only the worker


def test_edge_profiles_set_what_they_name(write_suite, tmp_path):
    suite = write_suite(
        suite_text(
            "  - {name: scripted, report_limits: true}",
            "  - {name: edge-1core}\n  - {name: edge-2core-2g, memory_method: rlimit}",
        )
    )
    code, cases = run(suite, tmp_path / "out")
    one, two = by_label(cases, "target")["edge-1core"], by_label(cases, "target")["edge-2core-2g"]
    assert one.status == "ok" and one.runtime.target.cores == ALLOWED[:1] and one.runtime.target.threads == 1
    assert one.runtime.target.memory is None and one.runtime.backend["affinity"] == ALLOWED[:1]
    assert one.runtime.target.details["profile"] == "edge-1core"
    if len(ALLOWED) < 2:
        assert two.status == "skipped" and code == 0
        return
    assert two.status == "ok", two.error
    assert two.runtime.target.cores == ALLOWED[:2] and two.runtime.target.threads == 2
    assert two.runtime.target.memory.limit_bytes == 2 << 30 and two.runtime.backend["rlimit_as"] == 2 << 30


@needs_cgroup
def test_edge_caps_memory_with_a_cgroup_of_its_own_and_removes_it(write_suite, tmp_path):
    suite = write_suite(
        suite_text(
            "  - {name: scripted, report_limits: true}",
            "  - {name: edge, cores: 1, memory: 300m, memory_method: cgroup}",
        )
    )
    code, (case,) = run(suite, tmp_path / "out")
    assert code == 0, case.error
    memory = case.runtime.target.memory
    assert memory.method.startswith("cgroup v") and memory.limit_bytes == 300 * MiB
    folder = Path(memory.cgroup)
    assert folder.name.startswith("benchharness-") and Path(memory.moved_from).is_dir()
    # The backend found its own process in that cgroup, and no RLIMIT_AS.
    assert any(line.endswith("/" + folder.name) for line in case.runtime.backend["cgroups"])
    assert case.runtime.backend["rlimit_as"] == resource.getrlimit(resource.RLIMIT_AS)[0]
    assert not folder.exists()  # the launcher removed it when the worker ended


# ----------------------------------------------------------------------------- out of memory


def test_cases_over_their_memory_cap_are_oom_and_the_run_goes_on(write_suite, tmp_path, capsys):
    suite = write_suite(
        suite_text(
            f"  - {{name: scripted, label: big, allocate: {2 << 30}, allocate_in: infer}}\n"
            "  - {name: scripted, label: cxx, mode: bad_alloc}\n"
            "  - {name: scripted, label: fine}",
            "  - {name: edge, cores: 1, memory: 512m, memory_method: rlimit}",
        )
    )
    code, cases = run(suite, tmp_path / "out")
    assert code == 1
    big, cxx, fine = (by_label(cases)[label] for label in ("big", "cxx", "fine"))
    assert big.status == "oom"
    assert big.error == "out of memory under the memory cap of 512 MiB (RLIMIT_AS): MemoryError"
    assert big.runtime.stage == "scenario" and "MemoryError" in big.traceback
    assert cxx.status == "oom"  # the worker aborted on an uncaught std::bad_alloc: its log says so
    assert cxx.error.startswith("out of memory under the memory cap of 512 MiB (RLIMIT_AS): the worker ended on")
    assert "std::bad_alloc" in cxx.error and cxx.runtime.signal == "SIGABRT"
    assert fine.status == "ok"
    err = capsys.readouterr().err
    assert "2 of 3 cases failed" in err and "(oom)" in err
    assert failed_before(big)  # --resume runs it again


def test_a_cpp_allocation_failure_in_onnxruntime_is_oom(write_suite, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    # Expand a [1, 4] input to [2**28, 4] floats: 4 GiB that ONNX Runtime's arena cannot get under a 1 GiB cap.
    shape = numpy_helper.from_array(np.array([2**28, 4], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Expand", ["x", "shape"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "big.onnx"))
    suite = write_suite(
        "name: big\nmodels: [{source: onnx, path: big.onnx}]\nbackends: [{name: onnxruntime}]\n"
        "targets: [{name: edge, cores: 1, memory: 1g, memory_method: rlimit}]\n" + FAST
    )
    code, (case,) = run(suite, tmp_path / "out")
    assert code == 1
    assert case.status == "oom", case.error
    assert case.error.startswith("out of memory under the memory cap of 1 GiB (RLIMIT_AS): ")
    assert "Failed to allocate memory" in case.error


@needs_cgroup
def test_the_kernel_oom_killer_in_the_targets_cgroup_is_oom(write_suite, tmp_path):
    suite = write_suite(
        suite_text(
            f"  - {{name: scripted, label: big, allocate: {512 * MiB}}}\n  - {{name: scripted, label: fine}}",
            "  - {name: edge, cores: 1, memory: 128m, memory_method: cgroup}",
        )
    )
    code, cases = run(suite, tmp_path / "out")
    assert code == 1
    big, fine = by_label(cases)["big"], by_label(cases)["fine"]
    assert big.status == "oom" and big.runtime.signal == "SIGKILL"
    assert big.error.startswith("the kernel's OOM killer ended the worker, which went over the memory cap of 128 MiB")
    assert big.runtime.stage == "backend"  # it died in load
    assert not Path(big.runtime.target.memory.cgroup).exists()
    assert fine.status == "ok"


def test_only_a_grown_oom_kill_count_makes_a_sigkill_an_oom(tmp_path):
    events = tmp_path / "memory.events"
    memory = MemoryLimit(
        limit_bytes=MiB, method="cgroup v2 memory.max", oom_kill_file=str(events), oom_kills_at_start=2
    )
    assert not oom_killed(memory)  # no file
    events.write_text("low 0\nhigh 0\nmax 4\noom 3\noom_kill 2\n")
    assert not oom_killed(memory)  # killed by something else (a timeout, a user)
    events.write_text("oom_kill 3\n")
    assert oom_killed(memory)
    assert not oom_killed(None) and not oom_killed(MemoryLimit(limit_bytes=MiB, method="RLIMIT_AS"))


def test_what_counts_as_out_of_memory():
    ort = "[ONNXRuntimeError] : 1 : FAIL : bfc_arena.cc:360 Failed to allocate memory for requested buffer of size 8"
    torch = "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to allocate 9"
    for exc in (MemoryError(), RuntimeError(ort), RuntimeError(torch), RuntimeError("std::bad_alloc")):
        assert out_of_memory(exc), exc
    try:
        try:
            raise MemoryError
        except MemoryError as inner:
            raise RuntimeError("the model's forward failed") from inner
    except RuntimeError as wrapped:
        assert out_of_memory(wrapped)
    assert not out_of_memory(ValueError("shapes (1, 4) and (3,) do not match"))
    assert not out_of_memory(BenchError("the inputs need 8 TiB, more than the 20 GiB of memory available"))


def test_a_memory_cap_is_refused_in_the_cli_process(write_suite, tmp_path):
    suite = write_suite(suite_text("  - {name: scripted}", "  - {name: edge, memory: 1g, memory_method: rlimit}"))
    before = resource.getrlimit(resource.RLIMIT_AS)
    code, (case,) = run(suite, tmp_path / "out", "--launcher", "inline")
    assert code == 1 and case.status == "error"
    assert "a memory cap needs a worker process of its own" in case.error
    assert resource.getrlimit(resource.RLIMIT_AS) == before


# ----------------------------------------------------------------------------- targets this machine lacks


def test_a_target_this_machine_lacks_is_a_skip_with_its_reason(write_suite, tmp_path, capsys):
    too_many = len(ALLOWED) + 1
    suite = write_suite(
        suite_text(
            "  - {name: scripted}",
            f"  - {{name: edge, cores: {too_many}, label: big-edge}}\n"
            "  - {name: fake-npu}\n"
            "  - {name: cpu, cores: [4095], label: far-core}\n"
            "  - {name: cpu, threads: 1}",
        )
    )
    code, cases = run(suite, tmp_path / "out", "--launcher", "inline")
    assert code == 0  # skips are not failures
    status = by_label(cases, "target")
    assert {k: c.status for k, c in status.items()} == {
        "big-edge": "skipped",
        "fake-npu": "skipped",
        "far-core": "skipped",
        "cpu": "ok",
    }
    reason = f"needs {too_many} cores; this machine lets it use {len(ALLOWED)}"
    assert status["big-edge"].error.startswith(reason)
    assert status["fake-npu"].error == "no fake NPU on this machine (/dev/fake-npu0 is missing)"
    assert status["far-core"].error.startswith("needs cores 4095; this machine lets it use")
    skipped = status["fake-npu"]
    assert skipped.runtime.stage is None and skipped.runtime.target is None  # no worker was started
    assert [(p.kind, p.name, p.plugin) for p in skipped.provenance] == [("targets", "fake-npu", "bh_testplugin")]
    captured = capsys.readouterr()
    rows = {line.split()[2]: line for line in captured.out.splitlines()[2:] if line.startswith("m ")}
    assert "skipped" in rows["big-edge"] and reason in rows["big-edge"]
    assert "skipped" in rows["fake-npu"] and "no fake NPU on this machine" in rows["fake-npu"]
    assert "note: 3 cases skipped: this machine lacks the target (not a failure)" in captured.out
    assert "3 of 4 cases skipped: " in captured.err and "failed" not in captured.err
    # The results file keeps them, and every reporter shows them.
    (path,) = (tmp_path / "out").glob("*.json")
    assert main(["show", str(path), "--format", "json", "-p", "bh_testplugin"]) == 0
    shown = {row["target"]: row for row in json.loads(capsys.readouterr().out)}
    assert shown["fake-npu"]["status"] == "skipped" and "no fake NPU" in shown["fake-npu"]["note"]


def test_resume_asks_again_about_skipped_cases(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text("  - {name: scripted}", "  - {name: fake-npu}\n  - {name: cpu, threads: 1}"))
    out = tmp_path / "out"
    code, cases = run(suite, out, "--launcher", "inline")
    assert code == 0 and failed_before(by_label(cases, "target")["fake-npu"])
    (path,) = out.glob("*.json")
    capsys.readouterr()
    assert main(["run", str(suite), "-p", "bh_testplugin", "--resume", str(path), "--launcher", "inline"]) == 0
    again = by_label(load_results(path).cases, "target")
    assert again["fake-npu"].status == "skipped"
    assert again["fake-npu"].warnings == [
        "run again by --resume; the earlier attempt ended skipped: no fake NPU on this machine "
        "(/dev/fake-npu0 is missing)"
    ]
    assert again["cpu"].warnings == []  # ok: not run again
    assert "[skip] m/none/scripted/cpu/latency/b1: already in the results file" in capsys.readouterr().err


def test_the_worker_skips_a_target_its_machine_lacks(write_suite, tmp_path):
    """A launcher that runs workers on other machines gets the skip from the worker, which asks again."""
    from benchharness.api import WorkerPayload
    from benchharness.plan import expand
    from benchharness.plugins import PluginHost
    from benchharness.suite import load_suite
    from benchharness.worker import run_case

    host = PluginHost(["bh_testplugin"])
    suite = write_suite(suite_text("  - {name: scripted}", f"  - {{name: edge, cores: {len(ALLOWED) + 1}}}"))
    (case,) = expand(load_suite(suite, host))
    result = run_case(WorkerPayload(case=case), Workspace(base_dir=tmp_path, cache_dir=tmp_path / "cache"), host=host)
    assert result.status == "skipped" and result.error.startswith(f"needs {len(ALLOWED) + 1} cores")
    assert result.traceback is None and result.runtime.target is None


# ----------------------------------------------------------------------------- the targets command and options


def test_targets_lists_every_target_and_whether_this_machine_has_it(capsys):
    assert main(["targets", "-p", "bh_testplugin"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["target", "on", "this", "machine", "plugin", "description"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) >= {"cpu", "edge", "edge-1core", "edge-2core-2g", "virtual", "fake-npu"}
    assert rows["edge-1core"].split()[1] == "yes" and "resource-constrained host: 1 core" in rows["edge-1core"]
    assert "no: no fake NPU on this machine (/dev/fake-npu0 is missing)" in rows["fake-npu"]
    assert main(["targets", "--json", "-p", "bh_testplugin"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["fake-npu"] == {
        "name": "fake-npu",
        "plugin": "bh_testplugin",
        "version": "9.9.9",
        "description": "an accelerator no machine has",
        "available": False,
        "reason": "no fake NPU on this machine (/dev/fake-npu0 is missing)",
    }
    assert records["cpu"]["available"] and records["cpu"]["reason"] is None
    two = records["edge-2core-2g"]
    assert two["available"] is (len(ALLOWED) >= 2), two["reason"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: edge, memory: 2x}", "targets[0].memory: '2x' is not a size"),
        ("{name: edge, memory: 1k}", "targets[0].memory: a memory cap must be at least 1 MiB"),
        ("{name: edge, cores: []}", "targets[0].cores: name at least one core"),
        ("{name: edge, cores: [0, 0]}", "targets[0].cores: a core is named twice"),
        ("{name: edge, cores: 0}", "targets[0].cores: a number of cores must be at least 1, not 0"),
        ("{name: edge, cores: [true]}", "targets[0].cores[0]: expected a number, got a boolean (true)"),
        ("{name: edge, memory: true}", "targets[0].memory: expected a number, got a boolean (true)"),
        ("{name: edge, memory_method: swap}", "targets[0].memory_method: Input should be 'auto', 'cgroup' or"),
        ("{name: edge-1core, cores: 4}", "targets[0].cores: unknown field; known: label, memory_method, name"),
    ],
)
def test_edge_options_are_checked(write_suite, capsys, entry, message):
    suite = write_suite(suite_text("  - {name: scripted}", f"  - {entry}"))
    assert main(["validate", str(suite), "-p", "bh_testplugin"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{suite}:") and message in err[0], err


def test_memory_sizes_use_binary_units():
    assert parse_size("2g") == parse_size("2GiB") == parse_size("2 GB") == 2 << 30
    assert parse_size("512m") == parse_size("512M") == 512 * MiB
    assert parse_size("1.5g") == 3 << 29 and parse_size(MiB) == MiB and parse_size("1048576") == MiB
    for bad in ("2x", "-1g", "g", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_the_edge_suite_is_valid(capsys):
    root = Path(__file__).parents[1]
    assert main(["validate", str(root / "suites" / "edge.yaml")]) == 0
    assert "suites/edge.yaml: ok (24 cases)" in capsys.readouterr().out


def test_a_version_3_file_keeps_oom_skipped_and_the_memory_cap(capsys):
    path = Path(__file__).parent / "data" / "results-v3-failures.json"  # written by failures-v3.yaml
    cases = {c.case_id: c for c in load_results(path).cases}
    assert {k: c.status for k, c in cases.items()} == {
        "m/none/fine/edge-512m/latency/b1": "ok",
        "m/none/fine/fake-npu/latency/b1": "skipped",
        "m/none/fine/edge-4096/latency/b1": "skipped",
        "m/none/big/edge-512m/latency/b1": "oom",
        "m/none/cxx/edge-512m/latency/b1": "oom",
    }
    fine = cases["m/none/fine/edge-512m/latency/b1"].runtime.target
    assert fine.memory == MemoryLimit(limit_bytes=512 * MiB, method="RLIMIT_AS")
    assert fine.details["kind"] == "resource-constrained host"
    assert main(["show", str(path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| oom " in out and "| skipped " in out and "note: 2 cases skipped" in out


def _fake_cgroup2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own: str) -> Path:
    """A cgroup v2 tree in ``tmp_path``: this process in ``own``; the module reads it as it would /sys/fs/cgroup."""
    import benchharness_cpu.memory as memory

    root = tmp_path / "cgroup"
    (root / own.strip("/")).mkdir(parents=True)
    monkeypatch.setattr(memory, "_mounts", lambda: [("/", root, "cgroup2", ["rw"])])

    def own_cgroups() -> dict[str, str]:
        # After the move, the kernel would list the folder whose cgroup.procs holds this process.
        for procs in root.rglob("cgroup.procs"):
            if procs.read_text() == str(os.getpid()):
                return {"v2": "/" + str(procs.parent.relative_to(root))}
        return {"v2": own}

    monkeypatch.setattr(memory, "own_cgroups", own_cgroups)
    return root


def test_cgroup_v2_the_worker_cgroup_goes_beside_its_own_with_memory_max(tmp_path, monkeypatch):
    """The v2 path, on a fake tree (this machine may have cgroup v1 only): where the cgroup goes and what is written."""
    from benchharness_cpu.memory import cgroup_cap

    root = _fake_cgroup2(tmp_path, monkeypatch, "/user.slice/session-1.scope")
    (root / "cgroup.subtree_control").write_text("cpu io memory pids\n")
    (root / "user.slice" / "cgroup.subtree_control").write_text("memory pids\n")
    (root / "user.slice" / "session-1.scope" / "cgroup.subtree_control").write_text("\n")  # it has processes
    place = cgroup_place()
    assert (place.version, place.parent, place.current) == (
        2,
        root / "user.slice",
        root / "user.slice" / "session-1.scope",
    )
    # What the kernel would create in the new folder; a stale folder of a process that is gone is swept.
    folder = root / "user.slice" / f"benchharness-{os.getpid()}"
    folder.mkdir()
    for name, text in (("memory.max", "max\n"), ("memory.swap.max", "max\n"), ("memory.events", "oom 0\noom_kill 0\n")):
        (folder / name).write_text(text)
    stale = root / "user.slice" / "benchharness-999999999"
    stale.mkdir()
    limit = cgroup_cap(place, 300 * MiB)
    assert limit == MemoryLimit(
        limit_bytes=300 * MiB,
        method="cgroup v2 memory.max",
        cgroup=str(folder),
        moved_from=str(root / "user.slice" / "session-1.scope"),
        oom_kill_file=str(folder / "memory.events"),
        oom_kills_at_start=0,
    )
    assert (folder / "memory.swap.max").read_text() == "0"  # no swap to hide the cap behind
    assert (folder / "cgroup.procs").read_text() == str(os.getpid())
    assert not stale.exists()
    (folder / "memory.events").write_text("oom 1\noom_kill 1\n")
    assert oom_killed(limit)


def test_cgroup_v2_without_a_folder_that_gives_children_memory_is_no_place(tmp_path, monkeypatch):
    root = _fake_cgroup2(tmp_path, monkeypatch, "/")  # a container's namespace root, with processes in it
    (root / "cgroup.subtree_control").write_text("\n")
    assert cgroup_place() is None
    reason = method_unavailable("cgroup")  # an edge target asking for a cgroup is then skipped with this
    assert reason.startswith("memory_method 'cgroup' needs a writable cgroup with the memory controller")
