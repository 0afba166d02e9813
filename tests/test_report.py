"""The HTML report: one self-contained file whose every plot is a PNG that decodes and is not blank,
checked from Python and, where a Chromium binary is found, from a headless browser's point of view."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchharness.cli import main
from benchharness.errors import BenchError
from benchharness.report import build_report, pareto_optimal, pareto_staircase, write_report
from benchharness.results import MetricValue, RunResults, load_results, save_results

SUITE = """\
name: rep
models: [{source: dummy, name: m}, {source: dummy, name: m2}]
backends:
  - {name: scripted, label: a, sleep_us: 30}
  - {name: scripted, label: b, sleep_us: 90}
metrics: [latency, throughput]
measure: {min_samples: 10, max_time: 0.03, min_time: 0, warmup: {max_time: 0.01, min_time: 0, min_iterations: 2}}
"""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_SRC = re.compile(r'<img [^>]*src="([^"]*)"')


def _run(folder: Path, suite: str, *extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rep.yaml"
    path.write_text(suite)
    out = folder / "out"
    code = main(["run", str(path), "-p", "bh_testplugin", "-o", str(out), "-q", "--launcher", "inline", *extra])
    assert code == 0
    (result,) = out.glob("*.json")
    return result


@pytest.fixture(scope="module")
def results_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of 4 cases, each in 3 worker processes (so each case has process medians to mark)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHHARNESS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return _run(tmp_path_factory.mktemp("report"), SUITE, "--repeat", "3")


def _edited(source: Path, target: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    results = load_results(source)
    edit(results)
    save_results(target, results)
    return target


def _add_accuracy(results: RunResults) -> None:
    for i, case in enumerate(results.cases):
        case.metrics["accuracy"] = MetricValue(value=90.0 - 5 * i, unit="%", better="higher")


def _decode(uri: str):  # type: ignore[no-untyped-def]
    """The pixels of a ``data:image/png;base64,`` URI, decoded by matplotlib (not a browser, not PIL)."""
    from matplotlib.image import imread

    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    png = base64.b64decode(uri[len(prefix) :], validate=True)
    assert png.startswith(PNG_SIGNATURE)
    return imread(io.BytesIO(png), format="png")


def _assert_plots_ok(text: str, expected: int) -> None:
    sources = IMG_SRC.findall(text)
    assert len(sources) == expected
    for uri in sources:
        pixels = _decode(uri)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 300
        assert float(pixels.var()) > 0  # not one flat colour


def _assert_self_contained(text: str) -> None:
    assert "<script" not in text and "<link" not in text
    references = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", text)
    assert references and all(r.startswith("data:image/png;base64,") for r in references), "a file or URL referenced"
    assert "http://" not in text and "https://" not in text
    assert "default-src 'none'" in text  # the page's own policy: nothing may load from anywhere


def test_one_run_gives_the_table_and_a_distribution_plot_that_decodes(results_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(results_file), "--html", str(out)]) == 0
    assert capsys.readouterr().err == f"report: {out} (1 plot)\n"
    text = out.read_text()
    _assert_self_contained(text)
    _assert_plots_ok(text, 1)
    # the comparison table, as build() gives it, with its notes beneath
    assert text.count("<table>") == 1 and "latency median (ms)" in text and "CI95 ±% (3 processes)" in text
    assert "note: CI95: from the spread between 3 worker processes per case" in text
    assert text.count("<tr>") + text.count("<tr class=") == 5  # the header and 4 cases
    assert "processes pooled" not in text and "pooled over 3 worker processes" in text
    assert "accuracy against" not in text and "History" not in text


def test_each_process_median_is_a_dot_and_the_samples_are_pooled(results_file: Path):
    from benchharness.report import case_samples

    results = load_results(results_file)
    case = results.cases[0]
    got = case_samples(case, "latency")
    assert got is not None and got.unit == "ms"
    assert got.process_medians == [p.metrics["latency"].value for p in case.processes]
    samples_ns = [s for p in case.processes for s in p.metrics["latency"].samples]
    assert got.pooled == pytest.approx([s / 1e6 for s in samples_ns])


def test_the_scatter_appears_once_a_case_has_accuracy(results_file: Path, tmp_path: Path):
    with_accuracy = _edited(results_file, tmp_path / "acc.json", _add_accuracy)
    report = build_report([with_accuracy])
    assert [p.alt for p in report.plots] == ["latency distribution of 4 cases", "accuracy against latency"]
    assert "accuracy against latency" in report.html and "Pareto-optimal" in report.html
    _assert_plots_ok(report.html, 2)
    headers = re.findall(r"<th>([^<]*)</th>", report.html)
    assert "accuracy (%)" in headers  # the table as build() gives it


def test_pareto_optimal_points():
    # (latency, accuracy): the second is slower than the first and no better; the fourth is dominated by the third
    points = [(1.0, 80.0), (2.0, 80.0), (3.0, 95.0), (4.0, 90.0), (0.5, 60.0), (3.0, 95.0)]
    assert pareto_optimal(points) == [True, False, True, False, True, True]
    # a figure where higher is better (throughput) against one where lower is (an error rate)
    assert pareto_optimal([(1.0, 5.0), (2.0, 1.0), (3.0, 2.0)], x_lower=False, y_higher=False) == [False, True, True]
    assert pareto_optimal([]) == []


def test_the_pareto_staircase_bounds_what_the_front_dominates():
    # latency (lower better): across at the slower point's accuracy, then up; the input order does not matter
    assert pareto_staircase([(3.0, 95.0), (1.0, 80.0), (2.0, 90.0)]) == [
        (1.0, 80.0), (2.0, 80.0), (2.0, 90.0), (3.0, 90.0), (3.0, 95.0),
    ]  # fmt: skip
    # throughput (higher better): up to the next point's accuracy, then across
    assert pareto_staircase([(1.0, 95.0), (2.0, 80.0)], x_lower=False) == [(1.0, 95.0), (1.0, 80.0), (2.0, 80.0)]
    assert pareto_staircase([(1.0, 80.0)]) == [(1.0, 80.0)]


def test_a_run_of_variants_gets_the_variant_columns_and_a_front_per_model(tmp_path: Path):
    suite = SUITE.replace("metrics:", "compressions: [none, tag]\nmetrics:")
    source = _run(tmp_path / "variants", suite)
    figures = {"none": (2.0, 90.0), "tag": (1.0, 88.0)}  # (latency ms, accuracy %): a trade-off, both optimal

    def edit(results: RunResults) -> None:
        for case in results.cases:
            latency, accuracy = figures[case.config.variant]
            if case.config.backend.label == "b":
                latency *= 3  # slower on b than either variant on a: b's cases are not on the model's front
            case.metrics["latency"].value = latency
            case.metrics["accuracy"] = MetricValue(value=accuracy, unit="%", better="higher")

    report = build_report([_edited(source, tmp_path / "v.json", edit)])
    headers = re.findall(r"<th>([^<]*)</th>", report.html)
    assert {"variant", "speedup vs none", "accuracy Δ vs none", "Pareto"} <= set(headers)
    assert "<td>2.00x</td>" in report.html and "<td>-2.0 pt</td>" in report.html
    assert "note: Pareto: * no other variant" in report.html
    (scatter,) = [p for p in report.plots if p.alt == "accuracy against latency"]
    assert "8 cases with both figures" in scatter.caption and "(2 drawn)" in scatter.caption  # models m and m2
    _assert_plots_ok(report.html, 2)


def test_png_dir_writes_each_plot_under_a_safe_name(results_file: Path, tmp_path: Path):
    with_accuracy = _edited(results_file, tmp_path / "acc.json", _add_accuracy)
    folder = tmp_path / "png"
    report = write_report([with_accuracy], tmp_path / "r.html", png_dir=folder)
    files = sorted(folder.iterdir())
    assert len(files) == len(report.plots) == 2
    for plot in report.plots:
        written = folder / f"{plot.name}.png"
        assert written.read_bytes() == plot.png and written.read_bytes().startswith(PNG_SIGNATURE)
        assert re.fullmatch(r"[A-Za-z0-9._-]+\.png", written.name)
    names = [f.name for f in files]
    assert "acc__accuracy-vs-latency.png" in names
    assert "acc__latency__m_none_a_cpu_latency_b1__to__m2_none_b_cpu_latency_b1.png" in names


def test_fifty_cases_are_split_over_figures_of_one_scale(results_file: Path, tmp_path: Path):
    def fifty(results: RunResults) -> None:
        first = results.cases[0]
        results.cases = [first.model_copy(update={"case_id": f"{first.case_id}#{i}"}, deep=True) for i in range(50)]

    report = build_report([_edited(results_file, tmp_path / "many.json", fifty)])
    assert [p.alt for p in report.plots] == [f"latency distribution of {n} cases" for n in (17, 16, 17)]
    _assert_plots_ok(report.html, 3)


def _history(results_file: Path, folder: Path, runs: int = 6, slower_from: int = 3) -> list[Path]:
    """``runs`` copies of a run, a day apart, whose latency is 1.5 times higher from run ``slower_from`` on."""
    paths = []
    for i in range(runs):

        def edit(results: RunResults, i: int = i) -> None:
            results.run_id = f"run-{i}"
            results.started_at = f"2026-11-{i + 1:02d}T10:00:00+00:00"
            results.machine.git = None  # placed by start time
            factor = 1.5 if i >= slower_from else 1.0
            for case in results.cases:
                figure = case.metrics["latency"]
                figure.value *= factor
                figure.between.ci_low *= factor
                figure.between.ci_high *= factor

        paths.append(_edited(results_file, folder / f"day{i}.json", edit))
    return paths


def test_history_charts_come_with_two_files_or_more(results_file: Path, tmp_path: Path, capsys):
    paths = _history(results_file, tmp_path)
    assert "History" not in build_report(paths[:1]).html
    shuffled = [paths[i] for i in (3, 0, 5, 1, 4, 2)]
    out = tmp_path / "r.html"
    assert main(["report", *map(str, shuffled), "--html", str(out), "--png-dir", str(tmp_path / "png")]) == 0
    text = out.read_text()
    _assert_self_contained(text)
    _assert_plots_ok(text, 5)
    # the newest run by start time is detailed (6 runs: only it), then one chart per case over the runs
    assert "<h2>Newest run: day5.json</h2>" in text and text.count("<table>") == 1
    assert "<h2>History: latency over 6 runs</h2>" in text
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", text)[1:]
    assert [c.split(":")[0] for c in captions] == [c.case_id for c in load_results(paths[0]).cases]
    assert all("1.50× slower at the run of 2026-11-04 10:00, 3 runs before, 3 after" in c for c in captions)
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert "history__latency__m_none_a_cpu_latency_b1.png" in pngs and len(pngs) == 5


def test_a_bad_file_among_several_is_one_line_and_exit_2(results_file: Path, tmp_path: Path, capsys):
    paths = _history(results_file, tmp_path, runs=2)
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["report", str(paths[0]), str(bad), str(paths[1]), "--html", str(tmp_path / "r.html")]) == 2
    assert (
        capsys.readouterr().err == f"benchharness: error: {bad}: not a benchharness results file (no schema_version)\n"
    )


def test_a_run_without_samples_says_there_is_nothing_to_plot(tmp_path: Path, capsys):
    suite = SUITE.replace("metrics:", "targets: [{name: fake-npu}]\nmetrics:")
    skipped = _run(tmp_path / "skipped", suite)
    out = tmp_path / "r.html"
    assert main(["report", str(skipped), "--html", str(out)]) == 0
    text = out.read_text()
    assert IMG_SRC.findall(text) == []
    assert "Nothing to plot: no case of this run has latency samples (4 skipped)." in text
    assert "4 cases skipped: this machine lacks the target" in text


def test_a_figure_without_samples_is_nothing_to_plot(results_file: Path):
    report = build_report([results_file], metric="throughput", title="Throughput <&>")
    assert report.plots == []
    assert "Nothing to plot: no case of this run has throughput samples (4 ok)." in report.html
    assert "<title>Throughput &lt;&amp;&gt;</title>" in report.html


def test_a_bad_results_file_is_one_line_and_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 4, "cases": [')
    out = tmp_path / "r.html"
    assert main(["report", str(bad), "--html", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"benchharness: error: {bad}:1: not a results file: invalid JSON")
    assert not out.exists()
    assert main(["report", str(tmp_path / "missing.json"), "--html", str(out)]) == 2
    assert capsys.readouterr().err == f"benchharness: error: {tmp_path / 'missing.json'}: no such results file\n"


def test_without_matplotlib_the_error_says_what_to_install(results_file: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(BenchError, match=r"matplotlib, which is not installed: pip install 'benchharness\[report\]'$"):
        build_report([results_file])


def test_the_cli_does_not_import_matplotlib_at_start_up():
    code = "import sys, benchharness.cli; sys.exit('matplotlib' in sys.modules or 'benchharness.report' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# ----------------------------------------------------------------------------- in a real browser

#: Appended to a copy of the report: on load, each image's state as the browser sees it, as JSON in the DOM.
VERDICT_SCRIPT = """<script>
window.addEventListener("load", () => {
  const images = [];
  for (const img of document.images) {
    const seen = {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
                  varied: false};
    if (img.complete && img.naturalWidth > 0) {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 4; i < px.length && !seen.varied; i += 4) {
        seen.varied = px[i] !== px[0] || px[i + 1] !== px[1] || px[i + 2] !== px[2] || px[i + 3] !== px[3];
      }
    }
    images.push(seen);
  }
  const out = document.createElement("pre");
  out.id = "bh-verdict";
  out.textContent = JSON.stringify({images: images, tables: document.querySelectorAll("table").length});
  document.body.appendChild(out);
});
</script>"""


def _blank_png(size: int = 8) -> bytes:
    """A white ``size`` x ``size`` RGB PNG: a blank image the browser check must catch."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\xff" * 3 * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _chromium() -> str | None:
    """A Chromium binary: ``$BENCHHARNESS_CHROMIUM``, else the first of the usual names on ``PATH``."""
    given = os.environ.get("BENCHHARNESS_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser_verdict(chromium: str, page: str, folder: Path) -> dict:
    """Load ``page`` (report HTML) in headless Chromium with the verdict script, and return the verdict."""
    # The report's policy forbids every script; the copy allows inline ones only, so any image that is not a
    # data: URI still fails to load, as it would for a reader.
    page = page.replace("content=\"default-src 'none';", "content=\"default-src 'none'; script-src 'unsafe-inline';")
    assert "script-src 'unsafe-inline'" in page
    copy = folder / "checked.html"
    copy.write_text(page.replace("</body>", VERDICT_SCRIPT + "\n</body>"), encoding="utf-8")
    profile = folder / "profile"
    profile.mkdir()
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", copy.as_uri(),
    ]  # fmt: skip
    env = dict(os.environ, HOME=str(folder))  # a home the browser may write, whoever runs the tests
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, env=env)
    found = re.search(r'<pre id="bh-verdict">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no verdict from Chromium (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_every_image_renders_in_headless_chromium(results_file: Path, tmp_path: Path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "no Chromium binary (chromium, chromium-browser, google-chrome on PATH, or $BENCHHARNESS_CHROMIUM): "
            "apt-get install chromium"
        )
    with_accuracy = _edited(results_file, tmp_path / "acc.json", _add_accuracy)
    report = build_report([with_accuracy])
    (tmp_path / "report").mkdir()
    verdict = _browser_verdict(chromium, report.html, tmp_path / "report")
    assert verdict["tables"] == 1
    assert [img["alt"] for img in verdict["images"]] == [p.alt for p in report.plots]
    for img, plot in zip(verdict["images"], report.plots):
        assert img["complete"] and img["width"] > 300 and img["height"] > 100, img
        assert img["varied"], f"{plot.name}: every pixel is the same colour in the browser"

    # The check itself catches a blank image and one that is not embedded (the page's policy blocks it).
    control = report.html.replace(
        "</body>",
        f'<img alt="blank" src="data:image/png;base64,{base64.b64encode(_blank_png()).decode()}">'
        '<img alt="remote" src="https://example.invalid/a.png">'
        "</body>",
    )
    (tmp_path / "control").mkdir()
    seen = {img["alt"]: img for img in _browser_verdict(chromium, control, tmp_path / "control")["images"]}
    assert seen["blank"]["width"] == 8 and not seen["blank"]["varied"]
    assert seen["remote"]["width"] == 0
