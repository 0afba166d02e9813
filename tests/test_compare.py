"""``benchharness compare``: ratios, tests, verdicts, gating, warnings, the three formats and saved baselines."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.compare import (
    ONE_VALUE,
    PAIRED_ROUNDS,
    WITHIN_ONE_PROCESS,
    Comparison,
    compare_results,
    direction,
    is_time_based,
    judge,
    judge_paired,
    parse_threshold,
    render,
)
from benchharness.errors import BenchError
from benchharness.repeats import as_process, between_ci
from benchharness.results import MetricValue, RunResults, load_results

SUITE = """\
name: cmp
models: [{source: dummy, name: m}]
backends:
  - {name: scripted, label: a, sleep_us: SLEEP_A}
  - {name: scripted, label: b, sleep_us: 100}
metrics: [latency, throughput]
measure: {min_samples: 10, max_time: 0.05, min_time: 0, warmup: {max_time: 0.02, min_time: 0, min_iterations: 2}}
"""
SUMMARY_SCALED = ("min", "mean", "stdev", "median", "p90", "p95", "p99", "max", "iqr", "ci_low", "ci_high")
A, B = "m/none/a/cpu/latency/b1", "m/none/b/cpu/latency/b1"


def run(folder: Path, *extra: str, sleep_a: int = 50) -> tuple[int, Path | None]:
    """Run the two-case suite with the test plugin in this process; the exit code and the newest results file."""
    suite = folder / "cmp.yaml"
    suite.write_text(SUITE.replace("SLEEP_A", str(sleep_a)))
    out = folder / "out"
    code = main(["run", str(suite), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "inline", *extra])
    files = sorted(out.glob("*.json"), key=lambda f: f.stat().st_mtime_ns)
    return code, (files[-1] if files else None)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A real results file of a run in one process per case, and one of a run in 3 (made once for the module)."""
    made = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCHHARNESS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        for kind, repeat in (("single", "1"), ("repeat", "3")):
            code, path = run(tmp_path_factory.mktemp(kind), "--repeat", repeat)
            assert code == 0 and path is not None
            made[kind] = path
    yield made


def scaled_copy(src: Path, dst: Path, factor: float, names: tuple[str, ...] = ("latency",)) -> Path:
    """``src`` with every number of the named figures multiplied: value, summary, samples, processes, between."""
    data = json.loads(src.read_text())
    for case in data["cases"]:
        for holder in [case, *case["processes"]]:
            for name in names:
                metric = holder["metrics"].get(name)
                if metric is None:
                    continue
                metric["value"] *= factor
                if metric.get("summary"):
                    for key in SUMMARY_SCALED:
                        metric["summary"][key] *= factor
                if metric.get("samples"):
                    metric["samples"] = [s * factor for s in metric["samples"]]
                if metric.get("between"):
                    between = metric["between"]
                    between["values"] = [v * factor for v in between["values"]]
                    for key in ("ci_low", "ci_high"):
                        if between[key] is not None:
                            between[key] *= factor
    dst.write_text(json.dumps(data))
    return dst


def put(results: RunResults, name: str, values: dict[int, list[float]], unit: str = "ms", better=None) -> RunResults:
    """A copy of ``results`` whose case ``i`` has figure ``name`` = ``values[i]``, one per process (no samples)."""
    out = results.model_copy(deep=True)
    for i, numbers in values.items():
        case = out.cases[i]
        if len(numbers) == 1:
            case.processes = []
            case.metrics = {**case.metrics, name: MetricValue(value=numbers[0], unit=unit, better=better)}
            continue
        runs = [as_process(case, k + 1) for k in range(len(numbers))]
        for process, number in zip(runs, numbers):
            process.metrics = {**process.metrics, name: MetricValue(value=number, unit=unit, better=better)}
        case.processes = runs
        combined = MetricValue(value=statistics.median(numbers), unit=unit, better=better, between=between_ci(numbers))
        case.metrics = {**case.metrics, name: combined}
    return out


def row(comparison: Comparison, case_id: str, metric: str):
    (found,) = [r for r in comparison.rows if r.case_id == case_id and r.metric == metric]
    return found


@pytest.fixture
def single(files: dict[str, Path]) -> RunResults:
    return load_results(files["single"])


# ----------------------------------------------------------------------------- the statistics


def test_judge_is_welch_t_on_the_logs_with_its_interval():
    from scipy import stats

    base, current = [10.0, 10.3, 9.8], [11.0, 11.4, 10.8]
    j = judge(base, current, better="lower", threshold=0.05, alpha=0.05, time_based=True)
    lb, lc = [math.log(v) for v in base], [math.log(v) for v in current]
    assert j.p_value == pytest.approx(stats.ttest_ind(lc, lb, equal_var=False).pvalue)
    assert j.ratio == pytest.approx(math.exp(statistics.fmean(lc) - statistics.fmean(lb)))
    vb, vc = statistics.variance(lb) / 3, statistics.variance(lc) / 3
    df = (vb + vc) ** 2 / (vb**2 / 2 + vc**2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(vb + vc)
    assert j.ci_low == pytest.approx(j.ratio * math.exp(-half))
    assert j.ci_high == pytest.approx(j.ratio * math.exp(half))
    assert (j.verdict, j.regression, j.improvement) == ("slower", True, False)
    assert "Welch" in j.test
    # the same ratio of a higher-is-better rate is an improvement
    up = judge(base, current, better="higher", threshold=0.05, alpha=0.05, time_based=True)
    assert (up.verdict, up.regression, up.improvement) == ("faster", False, True)
    assert judge(base, current, better="higher", threshold=0.05, alpha=0.05, time_based=False).verdict == "better"


def test_a_change_needs_the_threshold_and_the_test():
    small = judge([10.0, 10.01, 10.02], [10.3, 10.31, 10.32], better="lower", threshold=0.05, alpha=0.05,
                  time_based=True)  # fmt: skip
    assert small.p_value < 0.001 and small.verdict == "no significant change"  # 3%: under the threshold
    assert judge([10.0, 10.01, 10.02], [10.3, 10.31, 10.32], better="lower", threshold=0.01, alpha=0.05,
                  time_based=True).verdict == "slower"  # fmt: skip
    noisy = judge([10.0, 20.0, 5.0], [12.0, 25.0, 6.0], better="lower", threshold=0.05, alpha=0.05, time_based=True)
    assert noisy.ratio > 1.05 and noisy.p_value > 0.05 and noisy.verdict == "no significant change"


def test_values_with_no_spread_are_a_deterministic_difference():
    same = judge([90.0] * 3, [90.0] * 3, better="higher", threshold=0.05, alpha=0.05, time_based=False)
    assert (same.p_value, same.verdict) == (1.0, "no significant change")
    worse = judge([90.0] * 3, [80.0] * 3, better="higher", threshold=0.05, alpha=0.05, time_based=False)
    assert (worse.p_value, worse.verdict, worse.regression) == (0.0, "worse", True)
    zero = judge([0.0, 0.0], [0.0, 0.0], better="higher", threshold=0.05, alpha=0.05, time_based=False)
    assert zero.verdict == "no significant change"  # an accuracy of 0% on both sides: no logs, no crash


def test_judge_paired_is_a_signed_rank_test_with_the_hodges_lehmann_ratio():
    from scipy import stats

    ratios = [1.08, 1.11, 1.10, 1.12, 1.09, 1.10, 1.07, 1.13]
    j = judge_paired(ratios, better="lower", threshold=0.05, alpha=0.05, time_based=True)
    logs = [math.log(r) for r in ratios]
    assert j.p_value == pytest.approx(stats.wilcoxon(logs).pvalue)
    walsh = [(a + b) / 2 for i, a in enumerate(logs) for b in logs[i:]]
    assert j.ratio == pytest.approx(math.exp(statistics.median(walsh)))
    assert j.ci_low < j.ratio < j.ci_high and j.verdict == "slower" and "signed-rank" in j.test
    # one wild round (a process that ran 40% slow) does not turn 3% into a regression, as a mean would
    three = [1.03, 1.04, 1.02, 1.03, 1.4, 1.03, 1.02, 1.05, 1.03, 1.04]
    assert judge_paired(three, better="lower", threshold=0.05, alpha=0.05, time_based=True).verdict == (
        "no significant change"
    )
    assert math.exp(statistics.fmean(math.log(r) for r in three)) > 1.05  # the geometric mean would cross it


def test_the_paired_ci_covers_the_true_ratio_at_its_level():
    import numpy as np

    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(400):
        ratios = np.exp(math.log(1.05) + rng.normal(0, 0.05, 10))
        j = judge_paired(list(ratios), better="lower", threshold=0.05, alpha=0.05, time_based=True)
        covered += j.ci_low <= 1.05 <= j.ci_high
    assert 0.92 <= covered / 400 <= 0.985


def test_judge_paired_falls_back_to_a_t_test_with_too_few_rounds():
    from scipy import stats

    ratios = [1.08, 1.11, 1.10, 1.12]
    j = judge_paired(ratios, better="lower", threshold=0.05, alpha=0.05, time_based=True)
    logs = [math.log(r) for r in ratios]
    assert j.p_value == pytest.approx(stats.ttest_1samp(logs, 0.0).pvalue)
    assert j.ratio == pytest.approx(math.exp(statistics.fmean(logs)))
    assert j.ci_low < j.ratio < j.ci_high and j.verdict == "slower" and "too few for the signed-rank" in j.test
    around_one = judge_paired([0.97, 1.04, 1.01, 0.99], better="lower", threshold=0.05, alpha=0.05, time_based=True)
    assert around_one.verdict == "no significant change"
    one = judge_paired([1.2], better="lower", threshold=0.05, alpha=0.05, time_based=True)
    assert one.p_value is None and one.verdict == "slower"  # no test: the threshold alone
    with pytest.raises(ValueError):
        judge_paired([1.0, 0.0], better="lower", threshold=0.05, alpha=0.05, time_based=True)


def test_paired_comparison_pairs_process_k_of_each_side(single: RunResults):
    # rounds drift together (1.0, 1.5, 0.8), and the head is 10% slower in each: unpaired, the drift hides it
    base = put(single, "latency", {0: [1.0, 1.5, 0.8]}, better="lower")
    head = put(single, "latency", {0: [1.1, 1.66, 0.875]}, better="lower")
    assert row(compare_results(base, head), A, "latency").verdict == "no significant change"
    paired = row(compare_results(base, head, paired=True, labels=("base", "head")), A, "latency")
    assert paired.verdict == "slower" and paired.noise == PAIRED_ROUNDS and "paired" in paired.test


# ----------------------------------------------------------------------------- verdicts and directions


def test_faster_and_slower_for_timings(single: RunResults):
    base = put(single, "latency", {0: [1.0, 1.01, 0.99], 1: [2.0, 2.02, 1.98]}, better="lower")
    current = put(single, "latency", {0: [0.8, 0.81, 0.79], 1: [2.4, 2.42, 2.38]}, better="lower")
    comparison = compare_results(base, current)
    assert row(comparison, A, "latency").verdict == "faster"
    assert row(comparison, B, "latency").verdict == "slower"
    assert row(comparison, B, "latency").gating and comparison.exit_code == 1
    assert comparison.summary.startswith("benchharness: 1 regression in 2 cases (threshold 5%, alpha 0.05): ")
    assert f"latency of {B} is 1.20× slower (p < 0.001)" in comparison.summary
    assert "1 improvement" in comparison.summary


def test_directions_of_the_figures(single: RunResults):
    latency, throughput = single.cases[0].metrics["latency"], single.cases[0].metrics["throughput"]
    assert direction("latency", latency) == "lower" and direction("throughput", throughput) == "higher"
    assert direction("accuracy", MetricValue(value=90.0, unit="%", better="higher")) == "higher"
    assert direction("memory", MetricValue(value=90.0, unit="MB", better="lower")) == "lower"
    # no 'better' (a file older than it): inferred from the unit
    for unit, expected in [("ms", "lower"), ("ns", "lower"), ("MB", "lower"), ("mJ", "lower"), ("M", "lower"),
                           ("items/s", "higher"), ("tokens/s", "higher"), ("%", "higher"), ("widgets", None)]:  # fmt: skip
        assert direction("x", MetricValue(value=1.0, unit=unit)) == expected, unit
    assert direction("latency", None) == "lower"  # a figure that failed: its name says
    assert is_time_based("latency", "ms") and is_time_based("throughput", "items/s") and is_time_based("x", "us")
    assert not is_time_based("memory", "MB") and not is_time_based("accuracy", "%")


def test_throughput_accuracy_and_memory_judged_each_their_way(single: RunResults):
    base = put(single, "throughput", {0: [1000.0, 1010.0, 990.0]}, unit="items/s")
    base = put(base, "accuracy", {0: [90.0, 90.0, 90.0], 1: [90.0, 90.0, 90.0]}, unit="%")
    base = put(base, "memory", {0: [100.0, 101.0, 99.0], 1: [100.0, 101.0, 99.0]}, unit="MB")
    current = put(single, "throughput", {0: [800.0, 810.0, 790.0]}, unit="items/s")
    current = put(current, "accuracy", {0: [80.0, 80.0, 80.0], 1: [95.0, 95.0, 95.0]}, unit="%")
    current = put(current, "memory", {0: [120.0, 121.0, 119.0], 1: [80.0, 81.0, 79.0]}, unit="MB")
    comparison = compare_results(base, current)
    assert row(comparison, A, "throughput").verdict == "slower"  # fewer items/s, inferred higher-is-better
    assert row(comparison, A, "accuracy").verdict == "worse" and row(comparison, A, "accuracy").p_value == 0.0
    assert row(comparison, B, "accuracy").verdict == "better"
    assert row(comparison, A, "memory").verdict == "worse" and row(comparison, B, "memory").verdict == "better"
    assert comparison.exit_code == 1


def test_no_direction_is_shown_but_never_judged(single: RunResults):
    base = put(single, "widgets", {0: [10.0, 10.1, 9.9]}, unit="widgets")
    current = put(single, "widgets", {0: [20.0, 20.1, 19.9]}, unit="widgets")
    comparison = compare_results(base, current)
    r = row(comparison, A, "widgets")
    assert r.verdict == "no direction" and r.ratio == pytest.approx(2.0, rel=0.01) and not r.gating
    assert comparison.exit_code == 0


def test_units_that_differ_are_not_comparable(single: RunResults):
    base = put(single, "energy", {0: [10.0, 10.1, 9.9]}, unit="mJ")
    current = put(single, "energy", {0: [0.01, 0.0101, 0.0099]}, unit="J")
    r = row(compare_results(base, current), A, "energy")
    assert r.verdict == "not comparable" and r.note == "units differ: mJ vs J"


def test_missing_and_new_cases_and_missing_gating(single: RunResults):
    only_a = single.model_copy(update={"cases": single.cases[:1]})
    dropped = compare_results(single, only_a)
    assert row(dropped, B, "").verdict == "missing" and dropped.exit_code == 0
    assert "(1 case missing)" in dropped.summary
    assert compare_results(single, only_a, fail_on=["missing"]).exit_code == 1
    assert compare_results(single, only_a, fail_on=["throughput", "missing"]).exit_code == 1
    added = compare_results(only_a, single)
    assert row(added, B, "").verdict == "new" and added.exit_code == 0


def test_a_failed_case_or_figure_is_a_regression(single: RunResults):
    current = single.model_copy(deep=True)
    current.cases[1].status = "error"
    current.cases[1].error = "RuntimeError: boom"
    current.cases[0].metric_errors = {"throughput": "ValueError: no"}
    comparison = compare_results(single, current)
    assert {r.verdict for r in comparison.rows if r.case_id == B} == {"failed"}
    assert row(comparison, B, "latency").note == "RuntimeError: boom"
    assert row(comparison, A, "throughput").verdict == "failed" and row(comparison, A, "latency").verdict != "failed"
    assert comparison.exit_code == 1
    assert compare_results(single, current, fail_on=["latency"]).exit_code == 1  # case b's latency failed
    only_a_throughput = current.model_copy(update={"cases": current.cases[:1]})
    base_a = single.model_copy(update={"cases": single.cases[:1]})
    assert compare_results(base_a, only_a_throughput, fail_on=["latency"]).exit_code == 0


def test_fail_on_limits_which_figures_gate(single: RunResults):
    base = put(single, "latency", {0: [1.0, 1.01, 0.99]}, better="lower")
    current = put(single, "latency", {0: [1.3, 1.31, 1.29]}, better="lower")
    assert compare_results(base, current).exit_code == 1
    assert compare_results(base, current, fail_on=["latency"]).exit_code == 1
    ungated = compare_results(base, current, fail_on=["throughput"])
    assert ungated.exit_code == 0 and row(ungated, A, "latency").regression and not row(ungated, A, "latency").gating
    assert ungated.summary.startswith("benchharness: no gating regression")
    assert "(not gating)" in render(ungated, "table")


def test_metric_narrows_and_an_unknown_name_is_an_error(single: RunResults):
    narrowed = compare_results(single, single, metrics=["latency"])
    assert {r.metric for r in narrowed.rows} == {"latency"} and narrowed.metrics == ["latency"]
    with pytest.raises(BenchError, match=r"^--metric: no figure 'latncy' in either run; they have: latency, thr"):
        compare_results(single, single, metrics=["latncy"])
    with pytest.raises(BenchError, match=r"^--fail-on: no figure 'x'"):
        compare_results(single, single, fail_on=["x"])


# ----------------------------------------------------------------------------- what differs between the runs


def test_different_machines_versions_and_suites_are_warned_about(single: RunResults, files, tmp_path, capsys):
    other = single.model_copy(deep=True)
    other.machine.cpu = "Some Other CPU"
    other.machine.hostname = "elsewhere"
    other.machine.cores_logical = 64
    other.machine.frameworks = {**other.machine.frameworks, "onnxruntime": "0.0.1"}
    other.tool.version = "9.9.9"
    other.suite.hash = "f" * 64
    comparison = compare_results(single, other)
    warnings = "\n".join(comparison.warnings)
    assert comparison.across_machines
    assert "different machines: CPU " in warnings and "'elsewhere'" in warnings and "logical cores" in warnings
    assert "framework versions differ: onnxruntime " in warnings and "vs 0.0.1" in warnings
    assert "benchharness versions differ: " in warnings and "vs 9.9.9" in warnings
    assert "the suites differ (suite hash" in warnings
    assert "across different machines" in comparison.summary
    markdown = render(comparison, "markdown")
    assert "**Warnings**" in markdown and "framework versions differ" in markdown
    assert json.loads(render(comparison, "json"))["warnings"] == comparison.warnings
    assert compare_results(single, single).warnings == [] and not compare_results(single, single).across_machines
    path = tmp_path / "other.json"
    path.write_text(other.model_dump_json())
    assert main(["compare", str(files["single"]), str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("benchharness: warning: different machines: ") for line in err)


# ----------------------------------------------------------------------------- single process, one value


def test_a_single_process_falls_back_to_the_samples_and_says_so(files, tmp_path, capsys):
    slower = scaled_copy(files["single"], tmp_path / "slower.json", 1.1)
    comparison = compare_results(load_results(files["single"]), load_results(slower))
    r = row(comparison, A, "latency")
    assert r.noise == WITHIN_ONE_PROCESS and r.test.startswith("Mann-Whitney U on ")
    assert r.verdict == "slower" and r.ratio == pytest.approx(1.1)
    assert r.ci_low < 1.1 < r.ci_high
    assert main(["compare", str(files["single"]), str(slower)]) == 1
    out = capsys.readouterr().out
    assert "note: * within one process only: the noise between runs is unknown." in out


def test_one_value_per_side_has_no_test(single: RunResults):
    base = put(single, "accuracy", {0: [90.0], 1: [90.0]}, unit="%", better="higher")
    current = put(single, "accuracy", {0: [80.0], 1: [88.0]}, unit="%", better="higher")
    comparison = compare_results(base, current)
    dropped, slight = row(comparison, A, "accuracy"), row(comparison, B, "accuracy")
    assert dropped.p_value is None and dropped.noise == ONE_VALUE and dropped.verdict == "worse"  # threshold alone
    assert slight.p_value is None and slight.verdict == "no significant change"  # 2%: under the 5% threshold
    assert f"† {ONE_VALUE}" in render(comparison, "table")


# ----------------------------------------------------------------------------- formats and options


def test_threshold_parsing():
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("0.05") == 0.05
    assert parse_threshold(" 12.5 % ") == pytest.approx(0.125)
    assert parse_threshold("0") == 0.0
    for bad in ["abc", "-5%", "nan", "inf", "", "%"]:
        with pytest.raises(BenchError, match="expected a fraction such as 0.05 or a percentage such as 5%"):
            parse_threshold(bad)
    with pytest.raises(BenchError, match=r"did you mean 5%\?"):
        parse_threshold("5")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "lots"], "benchharness: error: --threshold 'lots': expected a fraction such as 0.05 or "),
        (["--alpha", "2"], "benchharness: error: --alpha '2': expected a significance level between 0 and 1"),
        (["--metric", "nope"], "benchharness: error: --metric: no figure 'nope' in either run; they have: latency"),
    ],
)
def test_bad_options_are_one_line(files, capsys, args, message):
    assert main(["compare", str(files["single"]), str(files["single"]), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)


def test_an_unknown_name_or_unreadable_file_is_one_line(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "nightly", str(files["single"])]) == 2
    assert capsys.readouterr().err.strip() == (
        "benchharness: error: 'nightly': no such results file, nor a baseline of that name in "
        "results/baselines (baselines: none saved)"
    )
    (tmp_path / "junk.json").write_text("{")
    assert main(["compare", str(files["single"]), "junk.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchharness: error: junk.json:1: not a results file")


def test_markdown_starts_with_the_summary_and_json_parses_back(files, tmp_path, capsys):
    slower = scaled_copy(files["repeat"], tmp_path / "slower.json", 1.1)
    comparison = compare_results(load_results(files["repeat"]), load_results(slower))
    markdown = render(comparison, "markdown")
    first = markdown.splitlines()[0]
    assert first.startswith("**benchharness: 2 regressions** in 2 cases (threshold 5%, alpha 0.05): latency of ")
    assert "1.10× slower (p " in first
    assert "| case " in markdown
    text = render(comparison, "json")
    assert Comparison.model_validate_json(text) == comparison
    data = json.loads(text)
    assert data["exit_code"] == 1 and data["summary"] == comparison.summary
    out_file = tmp_path / "comment.md"
    assert main(["compare", str(files["repeat"]), str(slower), "--format", "markdown", "-o", str(out_file)]) == 1
    assert out_file.read_text().splitlines()[0] == first
    assert capsys.readouterr().out.strip() == comparison.summary


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("kind", ["single", "repeat"])
def test_a_10_percent_slower_copy_exits_1_and_an_identical_copy_exits_0(files, tmp_path, capsys, kind):
    original = files[kind]
    slower = scaled_copy(original, tmp_path / "slower.json", 1.1)
    same = shutil.copy(original, tmp_path / "same.json")
    assert main(["compare", str(original), str(slower), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    latency = [r for r in report["rows"] if r["metric"] == "latency"]
    assert [r["verdict"] for r in latency] == ["slower", "slower"]
    assert all(r["ratio"] == pytest.approx(1.1) for r in latency)
    expected_noise = WITHIN_ONE_PROCESS if kind == "single" else "between processes"
    assert all(r["noise"] == expected_noise for r in latency)
    assert [r["verdict"] for r in report["rows"] if r["metric"] == "throughput"] == ["no significant change"] * 2
    assert main(["compare", str(original), str(same)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("benchharness: no significant change in 2")


def test_a_file_without_better_infers_directions_from_units(files, tmp_path, capsys):
    def strip(src: Path, dst: Path) -> Path:
        data = json.loads(src.read_text())
        data["schema_version"] = 3
        for case in data["cases"]:
            for holder in [case, *case["processes"]]:
                for metric in holder["metrics"].values():
                    metric.pop("better", None)
        dst.write_text(json.dumps(data))
        return dst

    old = strip(files["repeat"], tmp_path / "old.json")
    assert all(m.better is None for c in load_results(old).cases for m in c.metrics.values())
    slower = strip(scaled_copy(files["repeat"], tmp_path / "s.json", 1.1, ("latency",)), tmp_path / "old-slow.json")
    faster_rate = strip(scaled_copy(files["repeat"], tmp_path / "t.json", 0.8, ("throughput",)), tmp_path / "t2.json")
    comparison = compare_results(load_results(old), load_results(slower))
    assert row(comparison, A, "latency").verdict == "slower" and row(comparison, A, "latency").better == "lower"
    rates = compare_results(load_results(old), load_results(faster_rate))
    assert row(rates, A, "throughput").better == "higher" and row(rates, A, "throughput").verdict == "slower"


# ----------------------------------------------------------------------------- baselines on run


def test_run_saves_a_baseline_and_compares_with_it(tmp_path, capsys):
    code, first = run(tmp_path, "--save-baseline", "main", sleep_a=50)
    assert code == 0 and first is not None
    saved = tmp_path / "out" / "baselines" / "main.json"
    assert saved.read_bytes() == first.read_bytes()
    capsys.readouterr()
    # the same suite but case a four times slower: the run prints the comparison and exits 1
    code, second = run(tmp_path, "--baseline", "main", "--format", "json", sleep_a=200)
    assert code == 1 and second != first
    out, err = capsys.readouterr()
    comparison = json.loads(out[out.index('{\n "base"') :])
    assert row(Comparison.model_validate(comparison), A, "latency").verdict == "slower"
    assert row(Comparison.model_validate(comparison), B, "latency").verdict == "no significant change"
    assert "benchharness: warning: the suites differ" in err
    # compare finds the saved name through --results-dir; case a's single-stream throughput fell 4× too (one
    # value per side: judged on the threshold alone), so it gates as well
    assert main(["compare", "main", str(second), "--results-dir", str(tmp_path / "out"), "--fail-on",
                 "throughput"]) == 1  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "nope"], "benchharness: error: 'nope': no such results file, nor a baseline of that name in "),
        (["--save-baseline", "../up"], "benchharness: error: baseline name '../up': use letters, digits, '.', '_' "),
        (["--save-baseline", ".hidden"], "benchharness: error: baseline name '.hidden': use letters"),
    ],
)
def test_bad_baseline_options_fail_before_running(tmp_path, capsys, args, message):
    code, path = run(tmp_path, *args)
    assert code == 2 and path is None  # nothing ran: no results file
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)
