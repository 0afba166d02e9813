"""Launchers that run cases at once or elsewhere, and what results record of where a case ran: no cluster needed.

The runner is driven by ``bh_concurrent``'s ``lifo`` launcher (every case at once, results newest first); the
ray launcher's file shipping, environment and placement helpers are checked on their own; the table and
``compare`` are checked on results given cluster nodes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from benchharness_cuda import CudaTarget
from benchharness_openvino import OpenVinoTarget
from benchharness_ray import case_files, needs_text, node_labels, satisfies
from benchharness_ray.node import mirror, worker_environment

from benchharness.api import Node
from benchharness.cli import main
from benchharness.compare import compare_results
from benchharness.machine import machine_info
from benchharness.repeats import as_process, combine
from benchharness.results import RunResults, load_results
from benchharness.table import build

SUITE = """\
name: t
models: [{source: dummy, name: m}]
backends:
  - {name: scripted, label: a}
  - {name: scripted, label: b, sleep_us: 20}
  - {name: scripted, label: c, mode: error}
targets:
  - {name: virtual, threads: 2}
  - {name: fake-npu}
metrics: [latency]
measure: {min_samples: 5, max_time: 0.05, timeout: 30, warmup: {max_time: 0.01}}
"""


@pytest.fixture(scope="module")
def lifo_run(tmp_path_factory) -> tuple[RunResults, dict]:
    import bh_concurrent

    folder = tmp_path_factory.mktemp("lifo")
    (folder / "t.yaml").write_text(SUITE)
    args = ["run", str(folder / "t.yaml"), "-p", "bh_testplugin", "-p", "bh_concurrent", "-o", str(folder / "out")]
    assert main([*args, "-q", "--launcher", "lifo", "--repeat", "2"]) == 1  # backend c fails
    return load_results(next((folder / "out").glob("*.json"))), dict(bh_concurrent.SEEN)


def test_a_concurrent_launcher_gets_every_case_at_once_and_results_keep_the_suite_order(lifo_run):
    results, seen = lifo_run
    ids = [f"m/none/{b}/{t}/latency/b1" for b in "abc" for t in ("virtual", "fake-npu")]
    assert [c.case_id for c in results.cases] == ids  # suite order, though the launcher answered newest first
    assert seen["in_flight_max"] == 6 and seen["closed"]
    # A case's next process is submitted only once its previous one is back, and only if that one ended ok.
    assert not seen["overlap"]
    by_case = {}
    for case_id, process in seen["submitted"]:
        by_case.setdefault(case_id, []).append(process)
    assert by_case == {ids[0]: [1, 2], ids[1]: [1], ids[2]: [1, 2], ids[3]: [1], ids[4]: [1], ids[5]: [1]}
    ok = {c.case_id: c for c in results.cases if c.status == "ok"}
    assert set(ok) == {ids[0], ids[2]} and all(len(c.processes) == 2 for c in ok.values())


def test_a_launcher_that_is_not_local_asks_the_target_where_the_case_runs(lifo_run):
    results, seen = lifo_run
    # The runner did not ask fake-npu here: the launcher's own machine_job made those cases skips.
    submitted = {case_id for case_id, _ in seen["submitted"]}
    assert {c.case_id for c in results.cases if c.case_id.split("/")[3] == "fake-npu"} <= submitted
    for case in results.cases[1::2]:
        assert case.status == "skipped" and case.launcher == "lifo"
        assert case.error == "no fake NPU on this machine (/dev/fake-npu0 is missing)"
    # ... and the target's environment was computed there, for the worker.
    assert seen["environments"]["m/none/a/virtual/latency/b1"] == {"BH_VIRTUAL_THREADS": "2"}
    assert (
        results.cases[4].status == "error"
        and results.cases[4].error == "process 1: RuntimeError: scripted failure while loading"
    )


def test_address_is_refused_by_a_launcher_without_it(tmp_path, capsys):
    (tmp_path / "t.yaml").write_text(SUITE)
    code = main(["run", str(tmp_path / "t.yaml"), "-p", "bh_testplugin", "-o", str(tmp_path), "--address", "h:1"])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "benchharness: error: --address: launcher 'process' takes no 'address' option"
    )
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("''", "a node label is a non-empty name without surrounding spaces, not ''"),
        ("[3]", "Input should be a valid string"),
    ],
)
def test_node_labels_are_names(tmp_path, capsys, labels, problem):
    text = SUITE.replace("  - {name: fake-npu}\n", f"  - {{name: fake-npu, node_labels: {labels}}}\n")
    (tmp_path / "t.yaml").write_text(text)
    assert main(["validate", str(tmp_path / "t.yaml"), "-p", "bh_testplugin"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"{tmp_path / 't.yaml'}:9 targets[1].node_labels") and problem in line


def test_targets_say_what_a_node_needs():
    assert CudaTarget.node_needs(CudaTarget.Options(index=1)) == {"GPU": 2}
    assert OpenVinoTarget.node_needs(OpenVinoTarget.Options(device="NPU")) == {"intel_npu": 1}
    assert OpenVinoTarget.node_needs(OpenVinoTarget.Options(device="GPU")) == {"intel_gpu": 1}
    assert OpenVinoTarget.node_needs(OpenVinoTarget.Options(device="CPU")) == {}
    assert CudaTarget.Options(node_labels="hw:h200").node_labels == ["hw:h200"]


def test_placement_reads_labels_and_amounts():
    node = {"CPU": 16.0, "GPU": 2.0, "memory": 1e9, "node:10.0.0.2": 1.0, "benchharness_slot": 1.0, "hw:h200": 1.0}
    assert node_labels(node, "benchharness_slot") == {"GPU": 2.0, "hw:h200": 1.0}
    assert satisfies(node, {"GPU": 2, "hw:h200": 0.001, "benchharness_slot": 1})
    assert not satisfies(node, {"GPU": 3}) and not satisfies(node, {"intel_npu": 1})
    assert needs_text({"hw:h200": 0.001, "GPU": 2}) == "GPU: 2, hw:h200"


def test_the_files_a_case_reads_travel_with_their_siblings(tmp_path):
    suite = tmp_path / "suite"
    (suite / "models").mkdir(parents=True)
    for name in ("net.xml", "net.bin", "other.bin"):
        (suite / "models" / name).write_bytes(name.encode())
    (tmp_path / "shared.onnx").write_bytes(b"up")
    (suite / "images" / "cat").mkdir(parents=True)
    (suite / "images" / "cat" / "1.png").write_bytes(b"png")

    class Spec:  # the two parts of a case that name files
        options = {"path": "models/net.xml", "other": ["../shared.onnx", str(tmp_path / "shared.onnx"), "digits"]}
        dataset = type("D", (), {"options": lambda self: {"root": "images"}})()

    found = case_files(type("Case", (), {"model": Spec()})(), suite)
    assert sorted(found) == ["../shared.onnx", "images/cat/1.png", "models/net.bin", "models/net.xml"]

    base = mirror(found, tmp_path / "node" / "work")
    assert (base / "models" / "net.bin").read_bytes() == b"net.bin"
    assert (base / "../shared.onnx").resolve().read_bytes() == b"up"
    assert (base / "../shared.onnx").resolve().is_relative_to(tmp_path / "node" / "work")


def test_the_case_worker_starts_without_rays_variables():
    env = {"PATH": "/bin", "RAY_JOB_ID": "1", "OMP_NUM_THREADS": "1", "PYTHONBREAKPOINT": "ray.util.rpdb.set_trace"}
    assert worker_environment({**env, "MKL_NUM_THREADS": "4"}) == {"PATH": "/bin", "MKL_NUM_THREADS": "4"}


def _node(results: RunResults, label: str, memory: int | None = None) -> Node:
    machine = results.machine.model_copy(update={"git": None, "memory_bytes": memory or results.machine.memory_bytes})
    return Node(hostname="n-" + label, node_id=label * 8, labels={f"hw:{label}": 1.0}, machine=machine)


def test_the_table_shows_the_node_only_when_cases_ran_on_more_than_one_kind_of_machine(lifo_run):
    results, _ = lifo_run
    ran = results.model_copy(update={"cases": results.cases[0:3:2]})
    same = [c.model_copy(update={"node": _node(results, "a")}) for c in ran.cases]
    assert "node" not in [c.key for c in build(ran.model_copy(update={"cases": same})).columns]
    mixed = [same[0], ran.cases[1].model_copy(update={"node": _node(results, "b")})]
    table = build(ran.model_copy(update={"cases": mixed}))
    assert [c.key for c in table.columns][[c.key for c in table.columns].index("status") + 1] == "node"
    assert [row["node"] for row in table.rows] == ["n-a [hw:a]", "n-b [hw:b]"]
    assert any(note.startswith("cases ran on 2 kinds of machine (the node column)") for note in table.notes)


def test_processes_on_different_hardware_are_labelled(lifo_run):
    results, _ = lifo_run
    case = results.cases[0]
    runs = [p.model_copy(update={"node": _node(results, "a" if p.index == 1 else "b")}) for p in case.processes]
    combined = combine(case.config, runs, case.provenance)
    assert combined.node == runs[0].node
    (warning,) = [w for w in combined.warnings if "kinds of machine" in w]
    assert warning.startswith("its processes ran on 2 kinds of machine (") and "hw:b" in warning
    same = combine(case.config, [r.model_copy(update={"node": runs[0].node}) for r in runs], case.provenance)
    assert not any("kinds of machine" in w for w in same.warnings)
    assert as_process(same, 1).node == runs[0].node


def test_compare_judges_hardware_per_case_on_a_cluster(lifo_run):
    results, _ = lifo_run
    on = lambda label, memory=None: results.model_copy(  # noqa: E731
        update={"cases": [c.model_copy(update={"node": _node(results, label, memory)}) for c in results.cases]}
    )
    other_driver = on("a").model_copy(
        update={"machine": machine_info({}, git=False).model_copy(update={"hostname": "x"})}
    )
    same = compare_results(on("a"), other_driver)
    assert not same.across_machines and not any("machine" in w for w in same.warnings)
    moved = compare_results(on("a"), on("b", memory=2**40))
    assert moved.across_machines
    (warning,) = [w for w in moved.warnings if "kinds of machine" in w]
    assert warning.startswith(
        "2 cases ran on different kinds of machine in the two runs (m/none/a/virtual/latency/b1: "
    )
    assert "1024 GiB, hw:b" in warning


def test_results_written_before_nodes_load_with_none(tmp_path):
    data = Path(__file__).parent / "data" / "results-v4-repeats.json"
    assert all(c.node is None and all(p.node is None for p in c.processes) for c in load_results(data).cases)


def test_a_version_5_file_keeps_each_cases_node():
    results = load_results(Path(__file__).parent / "data" / "results-v5-ray.json")
    ran = [c for c in results.cases if c.status != "skipped"]
    assert ran and all(c.node is not None and c.node.machine.frameworks for c in ran)
    assert {label for c in ran for label in c.node.labels} == {"hw:alpha", "hw:beta", "hw:gamma"}
    assert all(c.node is None for c in results.cases if c.status == "skipped")


def test_a_model_built_differently_on_two_nodes_is_noted(lifo_run):
    results, _ = lifo_run
    first, second = results.cases[0], results.cases[0].model_copy(deep=True)
    second.case_id = second.config.id = "m/none/a/other/latency/b1"
    second.config.target.label = "other"
    nodes = [_node(results, "a"), _node(results, "b")]
    cases = [first.model_copy(update={"node": nodes[0]}), second.model_copy(update={"node": nodes[1]})]
    assert not any("differs between nodes" in n for n in build(results.model_copy(update={"cases": cases})).notes)
    cases[1].runtime.model.content_hash = "another"
    (note,) = [n for n in build(results.model_copy(update={"cases": cases})).notes if "differs between nodes" in n]
    assert note == (
        "model m (none, a, batch 1) differs between nodes (2 content hashes): it was built on each node, so its "
        "rows compare different weights"
    )
