"""Plugin discovery, isolation of broken plugins, the registry and lazy framework imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.plugins import PluginHost
from benchharness.results import load_results

PLUGIN_DIR = Path(__file__).parent / "plugins"
BUILTINS = {"compress", "cpu", "metrics", "onnxruntime", "reporters", "torch", "zoo"}


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


def test_builtins_load_through_entry_points():
    host = PluginHost()
    builtins = {p.name: p for p in host.plugins if p.origin == "builtin"}
    assert set(builtins) == BUILTINS
    assert all(p.error is None for p in builtins.values())
    assert host.items["backends"]["torch"].plugin.name == "torch"
    assert host.items["backends"]["onnxruntime"].plugin.version == builtins["onnxruntime"].version
    assert {"cpu"} <= set(host.names("targets"))
    assert {"latency", "throughput", "model_size"} <= set(host.names("metrics"))
    assert set(host.names("reporters")) >= {"table", "markdown", "csv", "json"}


def test_third_party_plugin_is_discovered_and_broken_one_only_warns(third_party):
    warnings: list[str] = []
    host = PluginHost(warn=warnings.append)
    fake = next(p for p in host.plugins if p.name == "fake")
    assert (fake.version, fake.origin, fake.module) == ("1.2.3", "entry point (benchharness-fake)", "bh_testplugin")
    provided = host.get("backends", "scripted")
    assert provided.provenance() == {"kind": "backends", "name": "scripted", "plugin": "fake", "version": "1.2.3"}
    assert set(host.names("datasets")) == {"ramp"}
    assert warnings == [
        "benchharness: warning: plugin 'broken' failed to import: ImportError: this plugin is broken on purpose"
    ]
    # Everything else still loaded.
    assert {"torch", "onnxruntime"} <= set(host.names("backends"))


def test_autoload_can_be_disabled_but_builtins_and_p_still_load(third_party, monkeypatch):
    monkeypatch.setenv("BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    host = PluginHost()
    assert {p.name for p in host.plugins} == BUILTINS
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


def test_name_clash_keeps_the_first_and_bad_register_call_warns():
    warnings: list[str] = []
    host = PluginHost(["bh_clash"], warn=warnings.append)
    assert host.get("backends", "torch").plugin.name == "torch"
    assert (
        "benchharness: warning: plugin 'bh_clash' registers backend 'torch', already provided by plugin 'torch'; "
        "keeping the first"
    ) in warnings
    assert (
        "benchharness: warning: plugin 'bh_clash' hook benchharness_register_reporters failed: TypeError: "
        "register() takes a subclass of benchharness.api.Reporter, got 'not a class'"
    ) in warnings


def test_unknown_name_lists_known_ones():
    host = PluginHost()
    with pytest.raises(Exception) as err:
        host.get("backends", "onnxrt")
    assert str(err.value).startswith("unknown backend 'onnxrt'")
    assert "known: onnxruntime, torch" in str(err.value)


def test_registering_and_unregistering_a_plugin_object():
    import bh_testplugin

    host = PluginHost()
    assert "scripted" not in host.names("backends")
    host.register_object(bh_testplugin, name="inline")
    assert host.get("backends", "scripted").plugin.name == "inline"
    host.pm.unregister(name="inline")
    fresh = PluginHost()
    assert "scripted" not in fresh.names("backends")  # no global state survives


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
    suite = write_suite(
        """
        name: kinds
        models: [{source: dummy, name: m}]
        compressions: [[tag, tag]]
        backends: [{name: scripted2}, {name: needs-missing}]
        targets: [{name: virtual, threads: 5}]
        metrics: [latency]
        measure: {min_samples: 20, max_time: 0.1, warmup: {max_time: 0.05}}
        """
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--format", "count"]) == 1
    assert capsys.readouterr().out.strip() == "2 cases"
    results = load_results(next(out.glob("*.json")))
    ok, missing = results.cases
    assert ok.case_id == "m/tag+tag/scripted2/virtual/latency/b1" and ok.status == "ok"
    assert ok.runtime["target"] == {"device": "cpu", "threads": 5, "cores": None, "env": "5"}
    assert ok.runtime["backend"]["threads"] == 5
    assert ok.runtime["model"]["tagged"] == 2
    assert ok.runtime["model"]["converted_by"] == "dummy-to-dummy2"
    assert ok.runtime["model"]["conversion_cache_hit"] is False
    assert missing.status == "error"
    assert missing.error == (
        "backend 'needs-missing' is unavailable: needs benchharness_missing_framework: "
        "pip install benchharness-missing-framework"
    )
    # The second run converts nothing: the cache is keyed by content hash.
    assert main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--format", "count"]) == 1
    second = max(out.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert load_results(second).cases[0].runtime["model"]["conversion_cache_hit"] is True


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
