"""Plugin discovery, isolation of broken plugins, the registry and lazy framework imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchharness import __version__
from benchharness.cli import main
from benchharness.errors import BenchError
from benchharness.plugins import BUILTIN_PLUGINS, PluginHost
from benchharness.results import Provenance, load_results

PLUGIN_DIR = Path(__file__).parent / "plugins"
BUILTINS = [name for name, _ in BUILTIN_PLUGINS]


def fake_distribution(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> Path:
    """An installed distribution as importlib.metadata sees it: a .dist-info folder on sys.path."""
    # The folder name is normalised (no '-'), as pip writes it; importlib.metadata splits it at the first '-'.
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {module}" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[benchharness]\n{lines}\n")
    return root


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two third-party plugins installed through entry points: a working one and a broken one."""
    root = fake_distribution(
        tmp_path / "site", "benchharness-fake", "1.2.3", {"fake": "bh_testplugin", "broken": "bh_broken_import"}
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return root


def test_builtins_load_first_and_explicitly():
    host = PluginHost(autoload=False)
    assert [p.name for p in host.plugins] == BUILTINS
    assert all(p.origin == "builtin" and p.error is None and p.version == __version__ for p in host.plugins)
    assert host.items["backends"]["torch"].plugin.name == "torch"
    assert {"cpu"} <= set(host.names("targets"))
    assert host.names("scenarios") == ["latency", "throughput"]
    assert host.names("launchers") == ["inline", "process", "ray"]
    assert {"model_size"} <= set(host.names("metrics"))
    assert set(host.names("reporters")) >= {"table", "markdown", "csv", "json"}


def test_third_party_plugin_is_discovered_and_broken_one_only_warns(third_party):
    warnings: list[str] = []
    host = PluginHost(warn=warnings.append)
    fake = next(p for p in host.plugins if p.name == "fake")
    assert (fake.version, fake.origin, fake.module) == ("1.2.3", "entry point (benchharness-fake)", "bh_testplugin")
    provided = host.get("backends", "scripted")
    assert provided.provenance() == Provenance(kind="backends", name="scripted", plugin="fake", version="1.2.3")
    assert set(host.names("datasets")) == {"ramp", "digits", "npz", "image-folder"}
    assert warnings == [
        "benchharness: warning: plugin 'broken' failed to import: ImportError: this plugin is broken on purpose"
    ]
    # Everything else still loaded, and the built-ins came first.
    assert [p.name for p in host.plugins][: len(BUILTINS)] == BUILTINS
    assert {"torch", "onnxruntime"} <= set(host.names("backends"))


def test_autoload_can_be_disabled_but_builtins_and_p_still_load(third_party, monkeypatch):
    monkeypatch.setenv("BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    host = PluginHost()
    assert [p.name for p in host.plugins] == BUILTINS
    host = PluginHost(["bh_testplugin"])
    extra = next(p for p in host.plugins if p.name == "bh_testplugin")
    assert (extra.origin, extra.version) == ("-p", "9.9.9")
    assert "scripted" in host.names("backends")


def test_failing_hook_only_costs_that_hook():
    warnings: list[str] = []
    host = PluginHost(["bh_broken_hook"], warn=warnings.append)
    assert warnings == [
        "benchharness: warning: plugin 'bh_broken_hook' hook benchharness_register_backends failed: "
        "RuntimeError: backend hook exploded"
    ]
    assert "answer" in host.names("metrics")
    assert "torch" in host.names("backends")


def test_misspelt_hook_is_reported_and_plugin_dropped():
    warnings: list[str] = []
    host = PluginHost(["bh_misspelt"], warn=warnings.append)
    assert len(warnings) == 1
    assert warnings[0].startswith("benchharness: warning: plugin 'bh_misspelt' invalid: unknown hook")
    assert "benchharness_register_backend" in warnings[0]
    assert not host.pm.has_plugin("bh_misspelt")


def test_name_clash_is_refused_and_bad_register_call_warns():
    warnings: list[str] = []
    host = PluginHost(["bh_clash"], warn=warnings.append)
    assert host.get("backends", "torch").plugin.name == "torch"
    assert (
        "benchharness: warning: plugin 'bh_clash': backend 'torch' refused: the name is already provided by "
        "built-in plugin 'torch'"
    ) in warnings
    assert (
        "benchharness: warning: plugin 'bh_clash': reporter \"'not a class'\" refused: register() takes a subclass "
        "of benchharness.api.Reporter, got 'not a class'"
    ) in warnings
    clash = next(p for p in host.plugins if p.name == "bh_clash")
    assert [(r.kind, r.name) for r in clash.refused] == [("backends", "torch"), ("reporters", "'not a class'")]


@pytest.fixture
def shadow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package installed with an entry point named 'clash' (sorts before 'onnxruntime') shadowing it."""
    root = fake_distribution(tmp_path / "site", "benchharness-shadow", "0.1", {"clash": "bh_shadow"})
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return root


def test_an_entry_point_cannot_shadow_a_builtin_backend(shadow, write_suite, tmp_path, capsys):
    from conftest import write_onnx

    write_onnx(tmp_path / "m.onnx")
    suite = write_suite(
        """
        name: shadow
        models: [{source: onnx, path: m.onnx}]
        backends: [{name: onnxruntime}]
        metrics: [latency, harmless]
        measure: {max_time: 0.2, min_time: 0.05, warmup: {max_time: 0.1}}
        """
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    refusal = (
        "benchharness: warning: plugin 'clash': backend 'onnxruntime' refused: the name is already provided by "
        "built-in plugin 'onnxruntime'"
    )
    assert refusal in err.splitlines()
    (case,) = load_results(next(out.glob("*.json"))).cases
    assert case.status == "ok"  # the shadowing backend would have raised in load
    assert case.runtime.backend["framework"] == "onnxruntime"
    used = {p.kind: (p.plugin, p.version) for p in case.provenance}
    assert used["backends"] == ("onnxruntime", __version__)
    assert used["metrics"] == ("clash", "0.1")  # the plugin's other items still work
    assert main(["plugins", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["clash"]["refused"] == [
        {
            "kind": "backend",
            "name": "onnxruntime",
            "reason": "the name is already provided by built-in plugin 'onnxruntime'",
        }
    ]
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out
    assert "refused: the name is already provided by built-in plugin 'onnxruntime'" in table


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("bh_order", "hook benchharness_register_backends uses tryfirst"),
        ("bh_wrapper", "hook benchharness_register_metrics uses wrapper"),
    ],
)
def test_call_order_markers_are_refused_not_ignored(module, message):
    warnings: list[str] = []
    host = PluginHost([module], autoload=False, warn=warnings.append)
    info = next(p for p in host.plugins if p.name == module)
    assert info.error.startswith(f"invalid: {message}: call-order markers are not supported")
    assert not host.pm.has_plugin(module)
    assert host.get("backends", "onnxruntime").plugin.name == "onnxruntime"
    assert warnings == [f"benchharness: warning: plugin {module!r} {info.error}"]


def test_registration_checks_what_each_class_must_declare():
    warnings: list[str] = []
    host = PluginHost(["bh_badclasses"], autoload=False, warn=warnings.append)
    plugin = next(p for p in host.plugins if p.name == "bh_badclasses")
    reasons = {r.name: r.reason for r in plugin.refused}
    assert reasons == {
        "no-formats": "NoFormats declares no 'formats'",
        "formats-a-string": "FormatsAString 'formats' must be a non-empty tuple of strings, got 'onnx'",
        "half-done": "NotImplemented_ does not implement infer, prepare, to_numpy",
        "wrong-signature": "WrongSignature load(self) does not take the arguments (self, artifact)",
        "reserved-name": "ReservedName Options declares 'name', a reserved option name (the suite entry's own key)",
        "reserved-label": (
            "ReservedLabel Options declares 'label', a reserved option name (the entry's label in case ids)"
        ),
        "loose-options": "LooseOptions Options must forbid unknown keys (subclass benchharness.api.Options)",
        "no-unit": "NoUnit declares no 'unit'",
        "a/b": "Slashed name 'a/b' contains '/', which separates the parts of case ids",
        "inputs-option": (
            "SourceWithInputsOption Options declares 'inputs', a reserved option name (the suite entry's own key)"
        ),
    }
    assert host.get("backends", "good").plugin.name == "bh_badclasses"  # the good one registered
    assert len(warnings) == len(reasons)


def test_unknown_name_lists_known_ones():
    host = PluginHost(autoload=False)
    with pytest.raises(BenchError) as err:
        host.get("backends", "onnxrt")
    assert str(err.value).startswith("unknown backend 'onnxrt'")
    assert "known: onnxruntime, openvino, torch" in str(err.value)


def test_registering_and_unregistering_a_plugin_object():
    import bh_testplugin

    host = PluginHost(autoload=False)
    assert "scripted" not in host.names("backends")
    host.register_object(bh_testplugin, name="in-process")
    assert host.get("backends", "scripted").plugin.name == "in-process"
    host.unregister("in-process")
    assert "scripted" not in host.names("backends")
    assert "in-process" not in [p.name for p in host.plugins]
    assert "scripted" not in PluginHost(autoload=False).names("backends")  # no global state survives


def test_unavailable_backend_is_listed_with_install_hint(capsys):
    assert main(["plugins", "--json", "-p", "bh_testplugin"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    items = {i["name"]: i for i in records["bh_testplugin"]["provides"]}
    assert items["needs-missing"]["available"] is False
    assert items["needs-missing"]["unavailable_reason"] == (
        "needs benchharness_missing_framework: pip install benchharness-missing-framework"
    )
    assert items["scripted"]["available"] is True
    assert records["torch"]["origin"] == "builtin"
    assert main(["plugins", "-p", "bh_testplugin"]) == 0
    table = capsys.readouterr().out
    assert "unavailable (needs benchharness_missing_framework: pip install benchharness-missing-framework)" in table


def test_every_hook_kind_works_in_a_run(write_suite, tmp_path, capsys):
    import bh_testplugin

    suite = write_suite(
        """
        name: kinds
        models: [{source: dummy, name: m}]
        compressions: [[tag, tag]]
        backends: [{name: scripted2}, {name: needs-missing}]
        targets: [{name: virtual, threads: 5}]
        scenarios: [latency, {name: fixed, iterations: 7}]
        metrics: [latency, phase_time]
        measure: {min_samples: 20, max_time: 0.1, warmup: {max_time: 0.05}}
        """
    )
    out = tmp_path / "out"
    bh_testplugin.PAYLOADS.clear()
    args = ["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--format", "count"]
    assert main([*args, "--launcher", "recording"]) == 1
    assert capsys.readouterr().out.strip() == "4 cases"
    results = load_results(next(out.glob("*.json")))
    ok, fixed, missing, _ = results.cases
    assert ok.case_id == "m/tag+tag/scripted2/virtual/latency/b1" and ok.status == "ok"
    assert ok.launcher == "recording" and len(bh_testplugin.PAYLOADS) == 4
    assert ok.runtime.target.model_dump() == {
        "device": "cpu",
        "threads": 5,
        "cores": None,
        "memory": None,
        "details": {"env": "5"},
    }
    assert ok.runtime.backend["threads"] == 5
    assert ok.runtime.model.info["tagged"] == 2
    assert ok.runtime.model.info["converted_by"] == "dummy-to-dummy2"
    assert ok.runtime.model.info["conversion_cache_hit"] is False
    assert set(ok.metrics) == {"latency", "throughput", "phase_time"}
    assert fixed.case_id == "m/tag+tag/scripted2/virtual/fixed/b1" and fixed.status == "ok"
    assert fixed.metrics["calls"].value == 7 and len(fixed.metrics["mean_call"].samples) == 7
    assert fixed.metrics["phase_time"].value > 0
    kinds = {p.kind for p in ok.provenance}
    assert kinds == {"targets", "backends", "model_sources", "compressions", "converters", "scenarios", "observers"}
    assert missing.status == "error"
    assert missing.error == (
        "backend 'needs-missing' is unavailable: needs benchharness_missing_framework: "
        "pip install benchharness-missing-framework"
    )
    # The second run, in worker processes, converts nothing: the cache is keyed by content hash.
    assert main(args) == 1
    second = max(out.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert load_results(second).cases[0].runtime.model.info["conversion_cache_hit"] is True
    assert load_results(second).cases[0].launcher == "process"


LAZY_CHECK = """
import sys
from benchharness.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "onnxruntime", "openvino", "onnx") if m in sys.modules)
print("HEAVY", heavy, "CODE", code)
"""


@pytest.mark.parametrize("args", [["plugins"], ["plugins", "--json"], ["validate", "suites/mobile.yaml"], ["schema"]])
def test_commands_do_not_import_frameworks(args):
    root = Path(__file__).parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", LAZY_CHECK, *args], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert "HEAVY [] CODE 0" in proc.stdout, proc.stdout + proc.stderr


def test_help_imports_neither_frameworks_nor_pydantic():
    code = "import sys\nfrom benchharness.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    code += "print('LOADED', sorted(m for m in ('torch', 'onnxruntime', 'pydantic', 'numpy') if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr


def test_converters_chain_along_the_shortest_path():
    """No converter turns dummy into dummy3, but two in a row do; each is recorded."""
    import types

    import bh_testplugin
    from bh_stubs import NullBackend

    from benchharness.api import Converter, hookimpl
    from benchharness.testing import run_case

    class Dummy2ToDummy3(Converter):
        name = "dummy2-to-dummy3"
        source_formats = ("dummy2",)
        target_format = "dummy3"
        suffix = ".d3"

        def convert(self, artifact, out_path):  # type: ignore[no-untyped-def]
            out_path.write_text("d3:" + artifact.path.read_text())

    class TakesDummy3(NullBackend):
        name = "takes-dummy3"
        formats = ("dummy3",)

    chain = types.ModuleType("bh_chain")
    chain.benchharness_register_converters = hookimpl(lambda register: register(Dummy2ToDummy3))  # type: ignore[attr-defined]
    chain.benchharness_register_backends = hookimpl(lambda register: register(TakesDummy3))  # type: ignore[attr-defined]
    result = run_case(model={"source": "dummy", "name": "m"}, backend="takes-dummy3", plugins=[bh_testplugin, chain])
    assert result.runtime.model.format == "dummy3"
    assert result.runtime.model.info["conversions"] == ["dummy-to-dummy2", "dummy2-to-dummy3"]
    assert [p.name for p in result.provenance if p.kind == "converters"] == ["dummy-to-dummy2", "dummy2-to-dummy3"]
