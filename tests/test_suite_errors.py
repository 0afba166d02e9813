"""Every kind of bad suite gives one exact `file:line path: message` line per problem, never a traceback.

The requirement: every suite error names the file, the line, the field's path
and what was expected; unknown plugin names list the known ones with "did you
mean"; YAML syntax errors, empty files, non-mapping documents and missing files
get the same one-line style; the CLI exits with code 2.

Suites are written into ``tmp_path``; the expected lines use ``{p}`` for the
suite's path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from conftest import ONNX_SUITE, write_onnx
from conftest import write_suite_and_model as write

from benchharness.cli import main
from benchharness.errors import SuiteError
from benchharness.plugins import PluginHost
from benchharness.suite import load_suite

# Lines 1-6 of most suites below; additions start on line 7.
BASE = ONNX_SUITE

SUITE_FIELDS = (
    "backends, baseline, batch_sizes, compressions, description, exclude, include, measure, metrics, "
    "models, name, scenarios, targets"
)
ORT_FIELDS = (
    "execution_mode, graph_optimization_level, inter_op_threads, io_binding, label, name, providers, session_config, "
    "tensorrt, threads"
)
DTYPES = "'float32', 'float16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8' or 'bool'"


@pytest.fixture(scope="module")
def host() -> PluginHost:
    """The built-in plugins only: installed third-party plugins must not change the known-name lists."""
    return PluginHost(autoload=False)


def problems_of(path: Path, host: PluginHost) -> list[str]:
    with pytest.raises(SuiteError) as info:
        load_suite(path, host)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def expect(path: Path, lines: list[str]) -> list[str]:
    return [line.replace("{p}", str(path)) for line in lines]


def known(host: PluginHost, kind: str, scenarios: tuple[str, ...] = ("latency",)) -> str:
    """The names an unknown-name message lists; a metric may also be an observer or an output of the suite's scenarios."""
    names = set(host.items[kind])
    if kind == "metrics":
        names |= set(host.items["observers"])
        names |= {out for name in scenarios for out in host.items["scenarios"][name].cls.produces}
    return ", ".join(sorted(names))


# ------------------------------------------------------------------ the file itself


def test_missing_file(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "nope.yaml"
    assert problems_of(path, host) == [f"{path}: no such file"]


def test_directory(tmp_path: Path, host: PluginHost) -> None:
    assert problems_of(tmp_path, host) == [f"{tmp_path}: is a directory, expected a YAML file"]


@pytest.mark.parametrize(
    "text",
    ["", "\n\n   \n", "# a suite\n# nothing here yet\n", "---\n", "# c\n---\n# d\n...\n"],
    ids=["empty", "blank-lines", "only-comments", "bare-document-marker", "comments-and-markers"],
)
def test_empty_file(tmp_path: Path, host: PluginHost, text: str) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, host) == [f"{path}:1: the file is empty, expected a mapping (a suite)"]


SYNTAX_CASES = {
    "unclosed-bracket": (
        """\
        name: s
        models: [a, b
        backends: []
        """,
        "{p}:3: YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence that starts on line 2)",
    ),
    "unclosed-brace-at-end": (
        """\
        name: s
        models: {a: 1
        """,
        "{p}:3: YAML syntax error: expected ',' or '}', but got '<stream end>' "
        "(while parsing a flow mapping that starts on line 2)",
    ),
    "unclosed-quote": (
        """\
        name: "abc
        models: x
        """,
        "{p}:3: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar that starts on line 1)",
    ),
    "bad-indentation-in-list-item": (
        """\
        name: s
        models:
          - source: onnx
           path: m.onnx
        """,
        "{p}:4: YAML syntax error: expected <block end>, but found '<block mapping start>' "
        "(while parsing a block collection that starts on line 3)",
    ),
    "indented-key": (
        """\
        name: s
          models: x
        """,
        "{p}:2: YAML syntax error: mapping values are not allowed here",
    ),
    "tab-indentation": (
        "name: s\n\tmodels: x\n",
        "{p}:2: YAML syntax error: found character '\\t' that cannot start any token",
    ),
    "undefined-alias": (
        """\
        name: s
        models: *nowhere
        """,
        "{p}:2: YAML syntax error: found undefined alias 'nowhere'",
    ),
    "control-character": (
        "name: s\nmodels: \x07\n",
        "{p}:2: YAML syntax error: unacceptable character #x0007: special characters are not allowed",
    ),
}


@pytest.mark.parametrize("text, line", SYNTAX_CASES.values(), ids=SYNTAX_CASES.keys())
def test_yaml_syntax_error(tmp_path: Path, host: PluginHost, text: str, line: str) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, host) == expect(path, [line])


def test_not_utf8(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(b"name: s\ndescription: caf\xe9\n")
    assert problems_of(path, host) == [f"{path}:2: not UTF-8 text: cannot decode byte 0xe9"]


DOCUMENT_CASES = {
    "top-level-list": (
        """\
        - name: s
        - models: []
        """,
        "{p}:1: expected a mapping at the top level, found a list",
    ),
    "top-level-list-after-comments": (
        """\
        # a suite

        - name: s
        """,
        "{p}:3: expected a mapping at the top level, found a list",
    ),
    "top-level-scalar": ("just some text\n", "{p}:1: expected a mapping at the top level, found a scalar"),
    "top-level-null": ("~\n", "{p}:1: expected a mapping at the top level, found a scalar"),
    "two-documents": (
        BASE + "---\nname: t\n",
        "{p}:8: expected one YAML document, found 2",
    ),
    "duplicate-top-level-key": (
        BASE + "name: t\n",
        "{p}:7 name: duplicate key (first on line 1)",
    ),
    "duplicate-nested-key": (
        BASE + "    threads: 1\n    threads: 2\n",
        "{p}:8 backends[0].threads: duplicate key (first on line 7)",
    ),
    "number-key": (
        BASE + "1: x\n",
        "{p}:7: key 1 is read as a number, not a string; put it in quotes",
    ),
    "null-key-in-nested-mapping": (
        BASE.replace("    path: m.onnx\n", "    path: m.onnx\n    dims: {null: 3}\n"),
        "{p}:5 models[0].dims: key null is read as null, not a string; put it in quotes",
    ),
    "list-as-key": ("? [a, b]\n: 1\n", "{p}:1: a key must be a string, not a list"),
    "merge-key": (
        BASE + "  - <<: {name: torch}\n",
        "{p}:7 backends[1]: YAML merge keys ('<<') are not supported; repeat the keys",
    ),
    "recursive-alias": (
        BASE + "include: &loop [*loop]\n",
        "{p}:7 include[0]: recursive alias: the anchored node contains itself",
    ),
    "python-tag": (
        BASE + "description: !!python/object:os.system x\n",
        "{p}:7 description: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
    ),
    "bad-int-tag": (
        BASE + "batch_sizes: [!!int one]\n",
        "{p}:7 batch_sizes[0]: invalid int 'one': invalid literal for int() with base 10: 'one'",
    ),
    "impossible-date": (
        BASE + "description: 2024-13-45\n",
        "{p}:7 description: invalid timestamp '2024-13-45': month must be in 1..12",
    ),
}


@pytest.mark.parametrize("text, line", DOCUMENT_CASES.values(), ids=DOCUMENT_CASES.keys())
def test_bad_document(tmp_path: Path, host: PluginHost, text: str, line: str) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, host) == expect(path, [line])


def test_an_alias_used_twice_is_fine(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, BASE + "batch_sizes: &sizes [1, 2]\ninclude:\n  - batch: 1\n")
    assert len(load_suite(path, host).suite.batch_sizes) == 2


# ------------------------------------------------------------------ the suite's own shape

SHAPE_CASES = {
    "unknown-top-level-field": (BASE + "bogus: 1\n", [f"{{p}}:7 bogus: unknown field; known: {SUITE_FIELDS}"]),
    "misspelt-top-level-field": (
        BASE + "batch_size: [1]\n",
        [f"{{p}}:7 batch_size: unknown field (did you mean 'batch_sizes'?); known: {SUITE_FIELDS}"],
    ),
    "missing-name": (
        """\
        # no name
        models:
          - source: onnx
            path: m.onnx
        backends:
          - name: onnxruntime
        """,
        ["{p}:2 name: Field required"],
    ),
    "missing-models": (
        """\
        name: s
        backends:
          - name: onnxruntime
        """,
        ["{p}:1 models: Field required"],
    ),
    "missing-backends": (
        """\
        name: s
        models:
          - source: onnx
            path: m.onnx
        """,
        ["{p}:1 backends: Field required"],
    ),
    "missing-backend-name": (
        """\
        name: s
        models:
          - source: onnx
            path: m.onnx
        backends:
          - threads: 2
        """,
        ["{p}:6 backends[0].name: Field required"],
    ),
    "missing-model-source": (
        """\
        name: s
        models:
          - path: m.onnx
        backends:
          - name: onnxruntime
        """,
        ["{p}:3 models[0].source: Field required"],
    ),
    "empty-models": (
        """\
        name: s
        models: []
        backends:
          - name: onnxruntime
        """,
        ["{p}:2 models: List should have at least 1 item after validation, not 0"],
    ),
    "empty-name": (BASE.replace("name: s", "name: ''"), ["{p}:1 name: String should have at least 1 character"]),
    # Found by the fuzz test: an empty name in a list of names reached PluginEntry(name='') unvalidated.
    "empty-metric-and-variant-names": (
        BASE + "metrics: [latency, '']\ncompressions: ['', [none, '']]\nscenarios: ['']\n",
        [
            "{p}:7 metrics[1]: String should have at least 1 character",
            "{p}:8 compressions[0]: String should have at least 1 character",
            "{p}:8 compressions[1][1]: String should have at least 1 character",
            "{p}:9 scenarios[0]: String should have at least 1 character",
        ],
    ),
    "batch-sizes-scalar": (BASE + "batch_sizes: one\n", ["{p}:7 batch_sizes: Input should be a valid list"]),
    "batch-sizes-word-item": (
        BASE + "batch_sizes: [1, two]\n",
        ["{p}:7 batch_sizes[1]: Input should be a valid integer, unable to parse string as an integer"],
    ),
    "batch-sizes-zero": (BASE + "batch_sizes: [0]\n", ["{p}:7 batch_sizes[0]: Input should be greater than 0"]),
    "batch-sizes-block-list": (
        BASE + "batch_sizes:\n  - 1\n  - -4\n",
        ["{p}:9 batch_sizes[1]: Input should be greater than 0"],
    ),
    "backend-entry-is-a-string": (
        BASE.replace("  - name: onnxruntime", "  - onnxruntime"),
        ["{p}:6 backends[0]: Input should be a mapping with 'name', got a string"],
    ),
    "backend-entry-is-empty": (
        BASE.replace("  - name: onnxruntime", "  -"),
        ["{p}:6 backends[0]: Input should be a mapping with 'name', got null"],
    ),
    "model-entry-is-a-string": (
        """\
        name: s
        models:
          - m.onnx
        backends:
          - name: onnxruntime
        """,
        ["{p}:3 models[0]: Input should be a mapping with 'source', got a string"],
    ),
    "measure-is-empty": (BASE + "measure:\n", ["{p}:7 measure: Input should be a mapping, got null"]),
    "scenario": (
        BASE + "scenarios: [offline]\n",
        ["{p}:7 scenarios[0]: unknown scenario 'offline'; known: latency, throughput"],
    ),
    "compression-entry-is-a-number": (
        BASE + "compressions:\n  - 3\n",
        ["{p}:8 compressions[0]: expected a compression name, a mapping with 'name', or a list of them, got a number"],
    ),
    "compression-in-a-chain-is-a-list": (
        BASE + "compressions:\n  - [none, []]\n",
        ["{p}:8 compressions[0][1]: expected a compression name or a mapping with 'name', got a list"],
    ),
    "compression-named-by-its-key": (
        BASE + "compressions:\n  - [none, {prune-channels: {amount: 0.5}}]\n",
        [
            "{p}:8 compressions[0][1]: the name goes under 'name': write {name: prune-channels, amount: 0.5}, "
            "not {prune-channels: {amount: 0.5}}"
        ],
    ),
    "backend-named-by-its-key": (
        BASE.replace("  - name: onnxruntime", "  - onnxruntime: {threads: 2}"),
        ["{p}:6 backends[0]: the name goes under 'name': write {name: onnxruntime, threads: 2}, not {onnxruntime: {threads: 2}}"],
    ),
    "metric-entry-is-a-list": (
        BASE + "metrics: [latency, [], model_size]\n",
        ["{p}:7 metrics[1]: expected a metric name or a mapping with 'name', got a list"],
    ),
    "scenario-entry-is-a-number": (
        BASE + "scenarios: [5]\n",
        ["{p}:7 scenarios[0]: expected a scenario name or a mapping with 'name', got a number"],
    ),
    "integer-too-large": (
        BASE + "batch_sizes: [1.0e+308]\n",
        ["{p}:7 batch_sizes[0]: expected an integer, got 1e+308, which is too large for one"],
    ),
    "target-ci-too-big": (
        BASE + "measure:\n  target_ci: 2\n",
        ["{p}:8 measure.target_ci: Input should be less than 1"],
    ),
    "min-samples-above-max": (
        BASE + "measure:\n  min_samples: 50\n  max_samples: 10\n",
        ["{p}:7 measure: min_samples (50) exceeds max_samples (10)"],
    ),
    "warmup-bounds": (
        BASE + "measure:\n  warmup:\n    min_iterations: 50\n    max_iterations: 10\n",
        ["{p}:8 measure.warmup: min_iterations (50) exceeds max_iterations (10)"],
    ),
    "misspelt-measure-field": (
        BASE + "measure:\n  samples: 3\n",
        [
            "{p}:8 measure.samples: unknown field (did you mean 'min_samples'?); known: ci_level, max_samples, "
            "max_time, min_samples, min_time, noisy_threshold, repeat, seed, target_ci, timeout, warmup"
        ],
    ),
    "warmup-tolerance": (
        BASE + "measure:\n  warmup: {tolerance: 1}\n",
        ["{p}:8 measure.warmup.tolerance: Input should be less than 1"],
    ),
    "misspelt-selector-field": (
        BASE + "include:\n  - modle: mobilenet*\n",
        [
            "{p}:8 include[0].modle: unknown field (did you mean 'model'?); "
            "known: backend, batch, model, scenario, target, variant"
        ],
    ),
    "selector-batch-zero": (BASE + "baseline: {batch: 0}\n", ["{p}:7 baseline.batch: Input should be greater than 0"]),
    "dims-zero": (
        BASE.replace("    path: m.onnx\n", "    path: m.onnx\n    dims: {seq: 0}\n"),
        ["{p}:5 models[0].dims.seq: Input should be greater than 0"],
    ),
}


def _with_input(*fields: str) -> str:
    """A suite whose model has one input, ``- name: x`` on line 6, then ``fields`` from line 7."""
    lines = ["name: s", "models:", "  - source: onnx", "    path: m.onnx", "    inputs:", "      - name: x"]
    lines += [f"        {field}" for field in fields] + ["backends:", "  - name: onnxruntime"]
    return "\n".join(lines) + "\n"


SHAPE_CASES.update(
    {
        "input-dtype-typo": (
            _with_input("shape: [1, 3]", "dtype: flaot32"),
            [f"{{p}}:8 models[0].inputs[0].dtype: Input should be {DTYPES} (did you mean 'float32'?)"],
        ),
        "input-dtype-differs-from-graph": (
            _with_input("dtype: int8"),
            ["{p}:7 models[0].inputs[0].dtype: input 'x' is float32 in the model, not int8"],
        ),
        "input-shape-zero": (
            _with_input("shape: [1, 0]"),
            ["{p}:7 models[0].inputs[0].shape: dimensions must be positive integers or names, got 0"],
        ),
        "input-shape-fraction": (
            _with_input("shape: [1, 2.5]"),
            [
                "{p}:7 models[0].inputs[0].shape[1]: Input should be a valid integer, got a number with a fractional part"
            ],
        ),
        "input-value-and-range": (
            _with_input("shape: [1]", "value: 1", "range: [0, 1]"),
            ["{p}:6 models[0].inputs[0]: give either 'value' or 'range', not both"],
        ),
        "input-range-reversed": (
            _with_input("shape: [1]", "range: [1, 0]"),
            ["{p}:6 models[0].inputs[0]: range must be [low, high) with low < high, got [1.0, 0.0]"],
        ),
        "input-range-three-items": (
            _with_input("shape: [1]", "range: [0, 1, 2]"),
            ["{p}:8 models[0].inputs[0].range: Tuple should have at most 2 items after validation, not 3"],
        ),
        "input-unknown-field": (
            _with_input("shape: [1]", "dtyp: int8"),
            [
                "{p}:8 models[0].inputs[0].dtyp: unknown field (did you mean 'dtype'?); "
                "known: dtype, name, range, shape, value"
            ],
        ),
    }
)


@pytest.mark.parametrize("text, lines", SHAPE_CASES.values(), ids=SHAPE_CASES.keys())
def test_bad_suite_shape(tmp_path: Path, host: PluginHost, text: str, lines: list[str]) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, host) == expect(path, lines)


def test_shape_errors_without_plugins(tmp_path: Path) -> None:
    """The first pass needs no plugin host."""
    path = write(tmp_path, BASE + "batch_sizes: [0]\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.problems == [f"{path}:7 batch_sizes[0]: Input should be greater than 0"]


# ------------------------------------------------------------------ plugin names and options


def test_backend_threads_zero(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, BASE + "  - name: torch\n    threads: 0\n")
    assert problems_of(path, host) == [f"{path}:8 backends[1].threads: Input should be greater than 0"]


PLUGIN_OPTION_CASES = {
    "unknown-backend-option": (
        BASE + "    graph_opt_level: all\n",
        [
            "{p}:7 backends[0].graph_opt_level: unknown field (did you mean 'graph_optimization_level'?); "
            f"known: {ORT_FIELDS}"
        ],
    ),
    "backend-option-named-like-a-type": (
        BASE + "    int: 3\n",
        [f"{{p}}:7 backends[0].int: unknown field; known: {ORT_FIELDS}"],
    ),
    "bad-literal": (
        BASE + "    graph_optimization_level: max\n",
        ["{p}:7 backends[0].graph_optimization_level: Input should be 'disable', 'basic', 'extended' or 'all'"],
    ),
    "literal-typo": (
        BASE + "    execution_mode: paralel\n",
        ["{p}:7 backends[0].execution_mode: Input should be 'sequential' or 'parallel' (did you mean 'parallel'?)"],
    ),
    "threads-word": (
        BASE + "    threads: many\n",
        ["{p}:7 backends[0].threads: Input should be a valid integer, unable to parse string as an integer"],
    ),
    "session-config-key-with-brackets": (
        BASE + "    session_config: {'a[b]': 1}\n",
        ["{p}:7 backends[0].session_config.a[b]: Input should be a valid string"],
    ),
    "empty-providers": (
        BASE + "    providers: []\n",
        ["{p}:7 backends[0].providers: List should have at least 1 item after validation, not 0"],
    ),
    "target-threads-zero": (
        BASE + "targets:\n  - name: cpu\n    threads: 0\n",
        ["{p}:9 targets[0].threads: Input should be greater than 0"],
    ),
    "model-option-missing": (
        """\
        name: s
        models:
          - source: onnx
            pth: m.onnx
        backends:
          - name: onnxruntime
        """,
        [
            "{p}:3 models[0].path: Field required",
            "{p}:4 models[0].pth: unknown field (did you mean 'path'?); known: dataset, dims, inputs, name, path, source",
        ],
    ),
    "compression-option": (
        BASE + "compressions:\n  - [none, {name: none, bits: 8}]\n",
        ["{p}:8 compressions[0][1].bits: unknown field; known: label, name"],
    ),
}


@pytest.mark.parametrize("text, lines", PLUGIN_OPTION_CASES.values(), ids=PLUGIN_OPTION_CASES.keys())
def test_bad_plugin_options(tmp_path: Path, host: PluginHost, text: str, lines: list[str]) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, host) == expect(path, lines)


def test_unknown_backend(tmp_path: Path, host: PluginHost) -> None:
    assert {"onnxruntime", "torch"} <= set(host.items["backends"])
    path = write(tmp_path, BASE.replace("name: onnxruntime", "name: onnxruntim"))
    assert problems_of(path, host) == [
        f"{path}:6 backends[0].name: unknown backend 'onnxruntim' (did you mean 'onnxruntime'?); "
        f"known: {known(host, 'backends')}"
    ]


def test_builtin_backends_listed(tmp_path: Path, host: PluginHost) -> None:
    """With the built-in plugins only, the list is exactly theirs."""
    path = write(tmp_path, BASE + "  - name: tensorrt\n")
    assert problems_of(path, host) == [
        f"{path}:7 backends[1].name: unknown backend 'tensorrt'; known: onnxruntime, openvino, torch"
    ]


def test_unknown_target(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, BASE + "targets:\n  - name: cpuu\n")
    assert problems_of(path, host) == [
        f"{path}:8 targets[0].name: unknown target 'cpuu' (did you mean 'cpu'?); known: {known(host, 'targets')}"
    ]


@pytest.mark.parametrize(
    "entry, loc, line",
    [
        ("  - nonee", "compressions[0].name", 8),
        ("  - {name: nonee}", "compressions[0].name", 8),
        ("  - none\n  - [none, nonee]", "compressions[1][1].name", 9),
    ],
    ids=["name", "mapping", "in-a-chain"],
)
def test_unknown_compression(tmp_path: Path, host: PluginHost, entry: str, loc: str, line: int) -> None:
    path = write(tmp_path, BASE + f"compressions:\n{entry}\n")
    assert problems_of(path, host) == [
        f"{path}:{line} {loc}: unknown compression 'nonee' (did you mean 'none'?); known: {known(host, 'compressions')}"
    ]


def test_unknown_model_source(tmp_path: Path, host: PluginHost) -> None:
    assert {"onnx", "python", "torchscript"} <= set(host.items["model_sources"])
    path = write(tmp_path, BASE.replace("source: onnx", "source: onnxx"))
    assert problems_of(path, host) == [
        f"{path}:3 models[0].source: unknown model source 'onnxx' (did you mean 'onnx'?); "
        f"known: {known(host, 'model_sources')}"
    ]


def test_unknown_zoo_arch(tmp_path: Path, host: PluginHost) -> None:
    if "zoo" not in host.items["model_sources"]:
        pytest.skip("the zoo model source is not registered in this environment")
    path = write(
        tmp_path,
        """\
        name: s
        models:
          - source: zoo
            arch: mobilenet_v
        backends:
          - name: torch
        """,
    )
    archs = [
        repr(arch) for arch in get_args(host.items["model_sources"]["zoo"].cls.Options.model_fields["arch"].annotation)
    ]
    assert {"'mobilenet_v2'", "'shufflenet_v2'", "'squeezenet'", "'resnet'"} <= set(archs)
    listing = ", ".join(archs[:-1]) + " or " + archs[-1]
    assert problems_of(path, host) == [
        f"{path}:4 models[0].arch: Input should be {listing} (did you mean 'mobilenet_v2'?)"
    ]


def test_unknown_metric(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, BASE + "metrics: [latency, latncy]\n")
    assert problems_of(path, host) == [
        f"{path}:7 metrics[1]: unknown metric 'latncy' (did you mean 'latency'?); known: {known(host, 'metrics')}"
    ]


def test_metric_dependency_order(tmp_path: Path) -> None:
    host = PluginHost(["bh_testplugin"], autoload=False)
    path = write(tmp_path, BASE + "metrics:\n  - phase_share\n  - phase_time\n")
    assert problems_of(path, host) == [f"{path}:8 metrics[0]: metric 'phase_share' needs 'phase_time' listed before it"]
    # A scenario's own figures need not be listed.
    path.write_text(BASE + "metrics:\n  - phase_time\n  - phase_share\n")
    assert load_suite(path, host).suite.metrics == ["phase_time", "phase_share"]


def test_duplicate_backend_labels(tmp_path: Path, host: PluginHost) -> None:
    path = write(
        tmp_path,
        BASE + "  - name: torch\n    label: fast\n  - name: onnxruntime\n    label: fast\n  - name: onnxruntime\n",
    )
    assert problems_of(path, host) == expect(
        path,
        [
            "{p}:9 backends[2]: duplicate backend 'fast' (also backends[1]); give each a distinct 'label'",
            "{p}:11 backends[3]: duplicate backend 'onnxruntime' (also backends[0]); give each a distinct 'label'",
        ],
    )


def test_distinct_labels_are_fine(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, BASE + "    threads: 1\n  - name: onnxruntime\n    label: ort4\n    threads: 4\n")
    assert len(load_suite(path, host).suite.backends) == 2


def test_duplicate_model_names(tmp_path: Path, host: PluginHost) -> None:
    write_onnx(tmp_path / "other" / "m.onnx")
    write_onnx(tmp_path / "a.onnx")
    path = write(
        tmp_path,
        """\
        name: s
        models:
          - source: onnx
            path: m.onnx
          - source: onnx
            path: other/m.onnx
          - {source: onnx, path: a.onnx, name: m}
        backends:
          - name: onnxruntime
        """,
    )
    assert problems_of(path, host) == expect(
        path,
        [
            "{p}:5 models[1]: duplicate model 'm' (also models[0]); give each a distinct 'name'",
            "{p}:7 models[2]: duplicate model 'm' (also models[0]); give each a distinct 'name'",
        ],
    )


# ------------------------------------------------------------------ many problems at once


def test_all_shape_problems_reported_in_line_order(tmp_path: Path, host: PluginHost) -> None:
    # Fields out of their declared order: pydantic reports them in declaration order, the lines must be sorted.
    path = write(
        tmp_path,
        """\
        backends:
          - name: onnxruntime
        batch_sizes: [1, 0]
        measure:
          target_ci: 0
        models: []
        name: s
        bogus: 2
        """,
    )
    assert problems_of(path, host) == expect(
        path,
        [
            "{p}:3 batch_sizes[1]: Input should be greater than 0",
            "{p}:5 measure.target_ci: Input should be greater than 0",
            "{p}:6 models: List should have at least 1 item after validation, not 0",
            f"{{p}}:8 bogus: unknown field; known: {SUITE_FIELDS}",
        ],
    )


def test_all_plugin_problems_reported_in_line_order(tmp_path: Path, host: PluginHost) -> None:
    path = write(
        tmp_path,
        """\
        name: s
        metrics: [latncy]
        backends:
          - name: onnxruntime
            threads: -1
          - name: torchh
        models:
          - source: onnxx
            path: m.onnx
        """,
    )
    assert problems_of(path, host) == expect(
        path,
        [
            f"{{p}}:2 metrics[0]: unknown metric 'latncy' (did you mean 'latency'?); known: {known(host, 'metrics')}",
            "{p}:5 backends[0].threads: Input should be greater than 0",
            f"{{p}}:6 backends[1].name: unknown backend 'torchh' (did you mean 'torch'?); known: {known(host, 'backends')}",
            f"{{p}}:8 models[0].source: unknown model source 'onnxx' (did you mean 'onnx'?); "
            f"known: {known(host, 'model_sources')}",
        ],
    )


def test_sorted_when_the_path_has_spaces_and_colons(tmp_path: Path, host: PluginHost) -> None:
    folder = tmp_path / "my suites: v2"
    folder.mkdir()
    path = write(
        folder,
        """\
        backends:
          - name: onnxruntime
        batch_sizes: [0]
        models: []
        name: s
        """,
    )
    assert problems_of(path, host) == expect(
        path,
        [
            "{p}:3 batch_sizes[0]: Input should be greater than 0",
            "{p}:4 models: List should have at least 1 item after validation, not 0",
        ],
    )
    path = write(
        folder,
        """\
        metrics: [nope]
        backends:
          - name: onnxruntime
            threads: 0
        models:
          - {source: onnx, path: m.onnx}
        name: s
        """,
    )
    assert problems_of(path, host) == expect(
        path,
        [
            f"{{p}}:1 metrics[0]: unknown metric 'nope'; known: {known(host, 'metrics')}",
            "{p}:4 backends[0].threads: Input should be greater than 0",
        ],
    )


# ------------------------------------------------------------------ through the command line

BAD = BASE + "  - name: torch\n    threads: 0\n"
BAD_LINE = "{p}:8 backends[1].threads: Input should be greater than 0"
VALID = BASE + "batch_sizes: [1, 4]\n"


@pytest.fixture
def no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the built-in plugins: a broken third-party plugin would add warning lines to stderr."""
    monkeypatch.setenv("BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.mark.usefixtures("no_autoload")
def test_cli_validate_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BAD)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == BAD_LINE.replace("{p}", str(path)) + "\n"


@pytest.mark.usefixtures("no_autoload")
@pytest.mark.parametrize(
    "text, line",
    [
        (None, "{p}: no such file"),
        ("", "{p}:1: the file is empty, expected a mapping (a suite)"),
        ("[a, b]\n", "{p}:1: expected a mapping at the top level, found a list"),
        (
            "name: [s\n",
            "{p}:2: YAML syntax error: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence that starts on line 1)",
        ),
        (BASE + "name: t\n", "{p}:7 name: duplicate key (first on line 1)"),
        (
            BASE.replace("onnxruntime", "onnxruntim"),
            "{p}:6 backends[0].name: unknown backend 'onnxruntim' (did you mean 'onnxruntime'?); known: onnxruntime, openvino, torch",
        ),
    ],
    ids=["missing", "empty", "list", "syntax", "duplicate-key", "unknown-backend"],
)
def test_cli_validate_file_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, line: str
) -> None:
    path = tmp_path / "suite.yaml" if text is None else write(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", line.replace("{p}", str(path)) + "\n")


@pytest.mark.usefixtures("no_autoload")
def test_cli_validate_many(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each file is checked; one bad file makes the exit code 2; good ones still print ok."""
    good = write(tmp_path, VALID, "good.yaml")
    bad = write(tmp_path, BAD, "bad.yaml")
    missing = tmp_path / "missing.yaml"
    assert main(["validate", str(good), str(bad), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == f"{good}: ok (2 cases)\n"
    assert err == f"{BAD_LINE.replace('{p}', str(bad))}\n{missing}: no such file\n"


@pytest.mark.usefixtures("no_autoload")
def test_cli_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, VALID)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (f"{path}: ok (2 cases)\n", "")


@pytest.mark.usefixtures("no_autoload")
def test_cli_run_bad_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BAD)
    results = tmp_path / "results"
    assert main(["run", str(path), "-o", str(results)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", BAD_LINE.replace("{p}", str(path)) + "\n")
    assert not results.exists()


@pytest.mark.usefixtures("no_autoload")
def test_cli_run_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    results = tmp_path / "results"
    assert main(["run", str(path), "-o", str(results)]) == 2
    assert capsys.readouterr() == ("", f"{path}: no such file\n")
    assert not results.exists()


def _subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "benchharness", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


def test_subprocess_validate_and_run(tmp_path: Path) -> None:
    """A real process: exact stderr, exit code 2, no traceback, nothing written."""
    bad = write(tmp_path, BAD, "bad.yaml")
    syntax = write(tmp_path, "name: s\nmodels: [a\nbackends: []\n", "syntax.yaml")
    recursive = write(tmp_path, "name: s\nx: &a [*a]\n", "recursive.yaml")
    (tmp_path / "dir").mkdir()
    proc = _subprocess("validate", bad.name, syntax.name, recursive.name, "dir", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        BAD_LINE.replace("{p}", "bad.yaml"),
        "syntax.yaml:3: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence that starts on line 2)",
        "recursive.yaml:2 x[0]: recursive alias: the anchored node contains itself",
        "dir: is a directory, expected a YAML file",
    ]
    assert "Traceback" not in proc.stdout + proc.stderr

    proc = _subprocess("run", "bad.yaml", "-o", "out", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", BAD_LINE.replace("{p}", "bad.yaml") + "\n")
    assert not (tmp_path / "out").exists()
    assert "Traceback" not in proc.stdout + proc.stderr

    write(tmp_path, VALID, "good.yaml")
    proc = _subprocess("validate", "good.yaml", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "good.yaml: ok (2 cases)\n", "")
