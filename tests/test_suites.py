"""The suites shipped in suites/ validate, and the CI smoke suite runs end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.plan import expand
from benchharness.plugins import PluginHost
from benchharness.results import load_results
from benchharness.suite import load_suite

SUITES = sorted((Path(__file__).parents[1] / "suites").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_shipped_suite_is_valid(path):
    loaded = load_suite(path, PluginHost(autoload=False))
    assert expand(loaded)


def test_mobile_suite_covers_the_zoo_on_both_backends():
    loaded = load_suite(Path(__file__).parents[1] / "suites" / "mobile.yaml", PluginHost(autoload=False))
    cases = expand(loaded)
    assert {c.model.options["arch"] for c in cases} == {"mobilenet_v2", "shufflenet_v2", "squeezenet", "resnet"}
    assert {c.backend.name for c in cases} == {"torch", "onnxruntime", "openvino"}
    assert all(c.target.options["threads"] <= 2 for c in cases)


def test_smoke_suite_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    smoke = Path(__file__).parents[1] / "suites" / "smoke.yaml"
    # In this process: the suite is what is checked here, not worker isolation (two workers would import torch);
    # tests/test_digits.py runs a zoo model on torch and, exported, on ONNX Runtime in workers.
    assert main(["run", str(smoke), "-o", str(tmp_path), "-q", "--launcher", "inline"]) == 0
    results = load_results(next(tmp_path.glob("smoke-*.json")))
    assert [c.status for c in results.cases] == ["ok", "ok"]
    torch_case, ort_case = results.cases
    assert torch_case.runtime.backend["threads"] == ort_case.runtime.backend["threads"] == 1
    # Both backends ran the same weights: the ONNX file was exported from the torch model.
    assert ort_case.runtime.model.info["converted_by"] == "torch-onnx"
    assert (
        torch_case.metrics["model_size"].details["parameters"] == ort_case.metrics["model_size"].details["parameters"]
    )
    table = capsys.readouterr().out
    assert "fastest" in table and "speedup vs backend=torch" in table


def test_json_schema_accepts_shipped_suites_and_knows_plugin_options(capsys):
    import json

    import jsonschema
    import yaml

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in SUITES:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    suite = yaml.safe_load(SUITES[0].read_text())
    suite["backends"][0]["channels_lst"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(suite, schema)
    backends = {v["properties"]["name"]["const"] for v in schema["properties"]["backends"]["items"]["oneOf"]}
    assert backends == {"torch", "onnxruntime", "openvino"}
