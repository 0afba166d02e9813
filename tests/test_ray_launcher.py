"""The ray launcher on a real 3-node Ray cluster (``ray.cluster_utils.Cluster``, every node on this machine).

Each node is labelled with its own ``hw:`` resource and offers one ``benchharness_slot``.  The
tests run the CLI as a user would, against that cluster, and read back the results file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from conftest import write_onnx
from ray.cluster_utils import Cluster

from benchharness.cli import main
from benchharness.results import load_results

LABELS = ("hw:alpha", "hw:beta", "hw:gamma")
#: Node death is noticed within about a second (Ray's default waits up to 30 s).
FAST_HEALTH = {"health_check_period_ms": 300, "health_check_failure_threshold": 3, "health_check_initial_delay_ms": 0}
MEASURE = "measure: {warmup: {max_time: 0.05}, min_samples: 5, max_time: 0.2, timeout: 120}\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes, one slot each, labelled hw:alpha (the head), hw:beta and hw:gamma."""
    env = {
        # The nodes' workers inherit this process's environment: the session's cache, the test plugins.
        "BENCHHARNESS_CACHE": str(tmp_path_factory.getbasetemp() / "cache"),
        "BENCHHARNESS_REPEAT": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    node = {"num_cpus": 1, "include_dashboard": False}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        cluster = Cluster(
            initialize_head=True,
            head_node_args={**node, "resources": {"benchharness_slot": 1, LABELS[0]: 1}, "_system_config": FAST_HEALTH},
        )
        for label in LABELS[1:]:
            cluster.add_node(**node, resources={"benchharness_slot": 1, label: 1})
        cluster.wait_for_nodes()
        yield cluster
        cluster.shutdown()


def _suite(tmp_path: Path, body: str) -> Path:
    write_onnx(tmp_path / "models" / "m.onnx")
    path = tmp_path / "suite.yaml"
    path.write_text(body + MEASURE, encoding="utf-8")
    return path


def _results(out: Path) -> Path:
    (path,) = sorted(out.glob("*.json"))
    return path


def _when(text: str) -> float:
    return _dt.datetime.fromisoformat(text).timestamp()


MAIN_SUITE = """\
name: ray-main
models:
  - {source: dummy, name: d, size: 4}
  - {source: onnx, name: m, path: models/m.onnx}
backends:
  - {name: scripted, label: ok, sleep_us: 200}
  - {name: scripted, label: crash, mode: crash}
  - {name: onnxruntime}
targets:
  - {name: cpu, label: any, threads: 1}
  - {name: cpu, label: alpha, threads: 1, node_labels: "hw:alpha"}
  - {name: cpu, label: beta, threads: 1, node_labels: ["hw:beta"]}
  - {name: cpu, label: gamma, threads: 1, node_labels: "hw:gamma"}
  - {name: cpu, label: nowhere, threads: 1, node_labels: "hw:nowhere"}
exclude:
  - {model: m, backend: ok}
  - {model: m, backend: crash}
  - {model: d, backend: onnxruntime}
  - {backend: crash, target: alpha}
  - {backend: crash, target: beta}
  - {backend: crash, target: gamma}
  - {backend: crash, target: nowhere}
"""


def test_a_suite_runs_across_the_cluster_with_every_guarantee(cluster, tmp_path, capsys):
    suite = _suite(tmp_path, MAIN_SUITE)
    out = tmp_path / "out"
    code = main(
        ["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "ray", "--address",
         cluster.address]
    )  # fmt: skip
    table, err = capsys.readouterr()
    assert code == 1, err  # the crashing case failed; the others ran
    results = load_results(_results(out))
    assert results.complete
    by_id = {c.case_id: c for c in results.cases}
    assert len(by_id) == 11  # 5 targets x (d on ok, m on onnxruntime) + the crash on any target
    ran = [c for c in results.cases if c.status != "skipped"]
    assert len(ran) == 9

    # Every case that ran did so on a node whose labels satisfy its target's, and recorded that node's facts.
    for case in ran:
        assert case.launcher == "ray" and case.node is not None
        wanted = case.config.target.options.get("node_labels", [])
        wanted = [wanted] if isinstance(wanted, str) else wanted
        assert set(wanted) <= set(case.node.labels), (case.case_id, case.node.labels)
        assert case.node.machine.cores_logical and case.node.machine.git is None
        assert "onnxruntime" in case.node.machine.frameworks
    nodes = {c.node.node_id: c.node for c in ran}
    assert len(nodes) >= 2  # pinned targets put cases on every labelled node
    assert {label for n in nodes.values() for label in n.labels if label.startswith("hw:")} == set(LABELS)
    assert all(n.hostname for n in nodes.values())

    # No two cases held one node at once: their slot spans, recorded on the node, never overlap.
    spans = defaultdict(list)
    for case in ran:
        spans[case.node.node_id].append((_when(case.node.details["slot_start"]), _when(case.node.details["slot_end"])))
    for node_spans in spans.values():
        node_spans.sort()
        for (_, end), (start, _) in zip(node_spans, node_spans[1:]):
            assert start >= end
    # ... and each case's worker ran inside its slot.
    for case in ran:
        slot_start = _when(case.node.details["slot_start"])
        assert _when(case.started_at) >= int(slot_start)  # started_at is to the second

    # The crash was contained: recorded as crashed, with the signal, and the run went on.
    crash = by_id["d/none/crash/any/latency/b1"]
    assert crash.status == "crashed" and crash.runtime.signal == "SIGSEGV"
    assert all(c.status == "ok" for c in ran if c is not crash)

    # A label no node has: a skip with the reason, decided by the driver, never started on a node.
    for case in results.cases:
        if case.case_id.split("/")[3] == "nowhere":
            assert case.status == "skipped" and case.node is None and case.duration_s == 0.0
            assert case.error.startswith("no node of the Ray cluster has hw:nowhere (3 node(s), labelled: ")
            assert "hw:alpha" in case.error and "hw:gamma" in case.error

    # The model file went to the object store once and was fetched once by this machine, then found cached.
    onnx = [c for c in ran if c.case_id.startswith("m/")]
    assert len(onnx) == 4
    fetched = [sha for c in onnx for sha in c.node.details["fetched"]]
    cached = [sha for c in onnx for sha in c.node.details["cached"]]
    assert len(fetched) == 1 and cached == fetched * 3
    assert onnx[0].runtime.model.content_hash == fetched[0]

    # The table names the node, since cases ran on more than one kind of machine.
    header = table.splitlines()[0].split()
    assert header.index("status") + 1 == header.index("node")
    assert "[hw:beta]" in table and "kinds of machine (the node column)" in table
    assert "2 cases skipped: no node of the cluster has the target" in table


def test_repeats_stay_on_the_node_of_the_first_process(cluster, tmp_path):
    suite = _suite(
        tmp_path,
        "name: ray-repeat\nmodels:\n  - {source: dummy, size: 4}\nbackends:\n  - {name: scripted, label: a}\n"
        "  - {name: scripted, label: b, sleep_us: 10}\ntargets:\n  - {name: cpu, threads: 1}\n",
    )
    out = tmp_path / "out"
    args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "ray"]
    assert main([*args, "--address", cluster.address, "--repeat", "3"]) == 0
    results = load_results(_results(out))
    for case in results.cases:
        assert [p.index for p in case.processes] == [1, 2, 3]
        assert len({p.node.node_id for p in case.processes}) == 1
        assert case.node == case.processes[0].node
        assert not any("kinds of machine" in w for w in case.warnings)


def test_without_a_cluster_it_says_how_to_start_one(tmp_path, capsys):
    suite = _suite(
        tmp_path, "name: s\nmodels:\n  - {source: dummy}\nbackends: [{name: scripted}]\ntargets: [{name: cpu}]\n"
    )
    out = tmp_path / "out"
    code = main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "ray",
                 "--address", "127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("benchharness: error: no Ray cluster is running at 127.0.0.1:9: ")
    assert "ray start --head --resources '{\"benchharness_slot\": 1}'" in err[0]
    assert not out.exists() or not list(out.glob("*.json"))  # nothing was written, and nothing was started
    assert not ray.is_initialized()


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "plugins"), *sys.path])}
    # SIGINT as a terminal delivers it: a test run in the background of a script inherits it ignored, and
    # Python then installs no KeyboardInterrupt handler (as in test_runner's Ctrl-C test).
    return subprocess.Popen(
        [sys.executable, "-m", "benchharness", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )  # fmt: skip


def _wait_for(check, what: str, limit: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + limit
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def _saved(out: Path) -> list[dict]:
    paths = sorted(out.glob("*.json"))
    if not paths:
        return []
    try:
        return json.loads(paths[0].read_text())["cases"]
    except (ValueError, KeyError):
        return []  # caught between the rename and the read: try again


def test_ctrl_c_keeps_finished_cases_and_resume_runs_the_rest(cluster, tmp_path):
    backends = "".join(f"  - {{name: scripted, label: b{i}, sleep_us: 300}}\n" for i in range(6))
    suite = _suite(
        tmp_path,
        f"name: ray-stop\nmodels:\n  - {{source: dummy, size: 4}}\nbackends:\n{backends}targets: [{{name: cpu}}]\n",
    )
    out = tmp_path / "out"
    args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "ray"]
    proc = _cli(*args, "--address", cluster.address)
    _wait_for(lambda: len(_saved(out)) >= 2, "two finished cases")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    path = _results(out)
    kept = {c.case_id: c for c in load_results(path).cases}
    assert 2 <= len(kept) < 6 and all(c.status == "ok" for c in kept.values())
    assert f"cases saved in {path}" in err
    # Every task was cancelled: nothing holds a slot now, so the cluster takes the resumed run's cases at once.
    _wait_for(lambda: ray_slots_free(cluster.address) == 3, "every slot free again", limit=30)

    assert main([*args, "--address", cluster.address, "--resume", str(path)]) == 0
    results = load_results(path)
    assert len(results.cases) == 6 and results.complete
    for case in results.cases:
        if case.case_id in kept:
            assert case == kept[case.case_id]  # the finished ones are kept as they were, not run again


def ray_slots_free(address: str) -> float:
    """The cluster's free slots (this process joins the cluster for the question, then leaves it)."""
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        return ray.available_resources().get("benchharness_slot", 0.0)
    finally:
        ray.shutdown()


def test_a_node_lost_mid_case_fails_that_case_and_the_rest_finish(cluster, tmp_path):
    doomed = cluster.add_node(num_cpus=1, include_dashboard=False, resources={"benchharness_slot": 1, "hw:doomed": 1})
    cluster.wait_for_nodes()
    marker = tmp_path / "loaded"
    backends = "".join(f"  - {{name: scripted, label: b{i}, sleep_us: 100}}\n" for i in range(4))
    suite = _suite(
        tmp_path,
        "name: ray-lost\nmodels:\n  - {source: dummy, size: 4}\nbackends:\n"
        f"  - {{name: scripted, label: hang, mode: hang, fail_once_exists: {marker}}}\n{backends}"
        "targets:\n  - {name: cpu, threads: 1}\n  - {name: cpu, label: doomed, threads: 1, node_labels: hw:doomed}\n"
        "include:\n  - {backend: hang, target: doomed}\n  - {backend: 'b*', target: cpu}\n",
    )
    out = tmp_path / "out"
    args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "ray"]
    proc = _cli(*args, "--address", cluster.address)
    _wait_for(marker.exists, "the hanging case to load on the doomed node")
    cluster.remove_node(doomed, allow_graceful=False)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # one case failed
    results = load_results(_results(out))
    assert results.complete and len(results.cases) == 5
    lost = next(c for c in results.cases if c.case_id.split("/")[2:4] == ["hang", "doomed"])
    assert lost.status == "crashed"
    assert lost.error.startswith("node lost: Ray node ") and lost.error.endswith(" died while running the case")
    others = [c for c in results.cases if c is not lost]
    assert [c.status for c in others] == ["ok"] * 4


def test_a_result_a_node_cannot_give_is_that_cases_error(cluster):
    from benchharness_ray import RayLauncher, RayOptions

    from benchharness.api import Job, WorkerPayload, Workspace

    case = load_results(Path(__file__).parent / "data" / "results-v5-ray.json").cases[0].config
    job = Job(payload=WorkerPayload(case=case), workspace=Workspace(Path("."), Path(".")), environment={}, timeout=1)
    launcher = RayLauncher(RayOptions(address=cluster.address))
    try:
        ref = ray.put({"result": "{}", "node": {"hostname": "old-box"}})  # what a node with another version sent
        result = launcher._collect(ref, job, time.perf_counter())
    finally:
        launcher.close()
    assert result.status == "error" and result.case_id == case.id and result.launcher == "ray"
    assert result.error.startswith("the result from old-box is invalid (ValidationError: ")
    assert result.error.endswith("): is the same benchharness installed?")
    assert not ray.is_initialized()


def test_a_cluster_whose_nodes_offer_no_slot_is_refused_with_the_fix(cluster):
    from benchharness_ray import RayLauncher, RayOptions

    from benchharness.api import BenchError

    with pytest.raises(BenchError) as caught:
        RayLauncher(RayOptions(address=cluster.address, slot="other_slot"))
    assert str(caught.value) == (
        f"no node of the Ray cluster at {cluster.address} offers the resource 'other_slot', so none may run a timed "
        "case: start each node with --resources '{\"other_slot\": 1}' (one case at a time per node; see "
        "docs/scale-out.md)"
    )
    assert not ray.is_initialized()  # it left the cluster


def test_a_case_queued_for_a_lost_node_is_given_up_not_left_pending(cluster, tmp_path):
    from benchharness_ray import RayLauncher, RayOptions

    from benchharness.api import Job, WorkerPayload, Workspace
    from benchharness.plugins import PluginHost

    temp = cluster.add_node(num_cpus=1, include_dashboard=False, resources={"benchharness_slot": 1, "hw:temp": 1})
    cluster.wait_for_nodes()
    case = load_results(Path(__file__).parent / "data" / "results-v5-ray.json").cases[0].config
    case = case.model_copy(update={"target": case.target.model_copy(update={"options": {"node_labels": "hw:temp"}})})
    job = Job(
        payload=WorkerPayload(case=case), workspace=Workspace(tmp_path, tmp_path), environment={}, timeout=60,
        host=PluginHost(["bh_testplugin"]),
    )  # fmt: skip
    marker = tmp_path / "holding"
    launcher = RayLauncher(RayOptions(address=cluster.address))
    try:
        # Something else holds hw:temp's slot, so the case stays queued for that node alone.
        hold = ray.remote(lambda: (marker.touch(), time.sleep(600)))
        hold.options(num_cpus=0, resources={"benchharness_slot": 1, "hw:temp": 0.001}).remote()  # dies with the node
        _wait_for(marker.exists, "the slot to be held")
        launcher.submit(job)
        cluster.remove_node(temp, allow_graceful=False)
        done, result = launcher.next_result()
    finally:
        launcher.close()
    assert done is job and result.status == "skipped" and result.node is None
    assert result.error.startswith("no node of the Ray cluster has hw:temp (3 node(s), labelled: ")
    assert result.error.endswith(", after the node(s) that had it were lost")
