"""The ``benchharness`` command.

Only argparse is imported at start-up; every command imports what it needs,
so ``--help`` stays fast and no framework is imported by ``validate``,
``schema`` or ``plugins``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchharness import __version__

EXIT_OK, EXIT_CASES_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FORMAT_HELP = "reporter for the table: table (default), markdown, csv, json, or one a plugin adds"


PLUGIN_HELP = "load this plugin module, or block a plugin with no:NAME (repeatable; also after the command)"


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds greater than zero."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds greater than 0, got {text!r}")
    return value


def _max_repeat() -> int:
    from benchharness.settings import MAX_REPEAT

    return MAX_REPEAT


def _whole(noun: str, low: int, highest: Callable[[], int]) -> Callable[[str], int]:
    """An argparse type: a whole number of ``noun`` from ``low`` to ``highest()`` (asked when parsing, so the
    module defining the bound is imported only by the command that uses it)."""

    def parse(text: str) -> int:
        high = highest()
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number of {noun} from {low} to {high}, got {text!r}")
        return value

    return parse


def _judging_options(parser: argparse.ArgumentParser) -> None:
    """How two sides are judged (``compare``, ``ab``): threshold, alpha, which figures, which gate, the format.

    The threshold and alpha stay text here: ``benchharness.compare.parse_threshold`` and ``parse_alpha``
    check them and word the one-line error.
    """
    parser.add_argument("--threshold", default="5%", metavar="T", help="smallest change that counts: 5%% or 0.05")
    parser.add_argument("--alpha", default="0.05", metavar="P", help="significance level of the tests (0.05)")
    parser.add_argument("--metric", metavar="NAMES", help="comma-separated figures to compare (default: all)")
    parser.add_argument(
        "--fail-on",
        metavar="NAMES",
        help="comma-separated figures that gate (default: all); 'missing' adds missing cases",
    )
    parser.add_argument("--format", default="table", choices=("table", "markdown", "json"), help="output format")


def _plugin_option(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument("-p", "--plugin", action="append", default=[], dest=dest, metavar="MODULE", help=PLUGIN_HELP)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchharness",
        description="Benchmark neural-network inference across frameworks, hardware and compressions.",
    )
    parser.add_argument("--version", action="version", version=f"benchharness {__version__}")
    # Before the command and after it: two destinations, merged in main(), since a subparser's
    # default would otherwise overwrite what was given before the command.
    _plugin_option(parser, "plugin_before")
    plugin_opts = argparse.ArgumentParser(add_help=False)
    _plugin_option(plugin_opts, "plugin")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", parents=[plugin_opts], help="run a suite and print the comparison table")
    run.add_argument("suite", type=Path, help="suite YAML file")
    run.add_argument("-o", "--output", type=Path, default=Path("results"), help="folder for the results file")
    run.add_argument("--resume", type=Path, metavar="FILE", help="continue this results file, skipping finished cases")
    run.add_argument("--format", default="table", metavar="NAME", help=FORMAT_HELP)
    run.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="per-case timeout, overriding the suite's")
    run.add_argument(
        "--launcher",
        default="process",
        metavar="NAME",
        help="how each case's worker starts: process (default, isolated), inline (this process: debugging), "
        "ray (across a Ray cluster: docs/scale-out.md), or one a plugin adds",
    )
    run.add_argument(
        "--address",
        metavar="ADDRESS",
        help="the cluster a cluster launcher joins: auto (one started on this machine, or $RAY_ADDRESS) or "
        "HOST:PORT (--launcher ray)",
    )
    run.add_argument(
        "--repeat",
        type=_whole("processes", 1, _max_repeat),
        metavar="N",
        help="worker processes per case, round-robin over the cases (overrides measure.repeat; "
        "default: the suite's, else $BENCHHARNESS_REPEAT, else 1)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    run.add_argument(
        "--baseline",
        metavar="NAME",
        help="compare the finished run with this saved baseline (DIR/baselines/NAME.json, or a results file); "
        "exit 1 on a regression",
    )
    run.add_argument(
        "--save-baseline", metavar="NAME", help="copy the finished results file to DIR/baselines/NAME.json"
    )

    validate = sub.add_parser("validate", parents=[plugin_opts], help="check suites without running them")
    validate.add_argument("suites", type=Path, nargs="+", metavar="suite")

    show = sub.add_parser("show", parents=[plugin_opts], help="print the table of a results file")
    show.add_argument("results", type=Path)
    show.add_argument("--format", default="table", metavar="NAME", help=FORMAT_HELP)
    show.add_argument(
        "--metrics",
        metavar="NAMES",
        help="comma-separated figures to show, in the file's order (default: all); speed-ups need latency",
    )

    inspect = sub.add_parser(
        "inspect", parents=[plugin_opts], help="print a model's inputs and outputs (a model file, or a suite's models)"
    )
    inspect.add_argument("model", type=Path, help="a model file (.onnx, TorchScript .pt, ...) or a suite YAML")
    inspect.add_argument("--source", metavar="NAME", help="the model source to read the file with (default: by suffix)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser(
        "schema", parents=[plugin_opts], help="print the suite JSON Schema, with plugin options (for editors)"
    )

    plugins = sub.add_parser("plugins", parents=[plugin_opts], help="list plugins and what they provide")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    targets = sub.add_parser(
        "targets", parents=[plugin_opts], help="list every target and profile, and whether this machine has it"
    )
    targets.add_argument("--json", action="store_true", help="machine-readable output")
    ab = sub.add_parser(
        "ab",
        parents=[plugin_opts],
        help="interleaved A/B: run a suite on two git revisions (or two environments) in alternating rounds "
        "and compare them round by round; exit 1 on a regression",
    )
    ab.add_argument("suite", type=Path, help="suite YAML file (as each revision has it)")
    ab.add_argument("--base", metavar="REF", help="git revision of the base (default: HEAD)")
    ab.add_argument("--head", metavar="REF", help="git revision of the head (default: the working tree as it is)")
    ab.add_argument("--base-python", metavar="PYTHON", help="run the base in this interpreter's environment instead")
    ab.add_argument("--head-python", metavar="PYTHON", help="run the head in this interpreter's environment instead")
    ab.add_argument(
        "--rounds",
        type=_whole("rounds", 2, lambda: 1000),
        default=None,
        metavar="N",
        help="paired rounds (default: 10); each runs both sides",
    )
    ab.add_argument(
        "--same-core",
        action="store_true",
        help="run both sides of a round at the same time, sharing one core, so the machine's slow spells hit both "
        "alike: for single-threaded CPU cases on a noisy machine (docs/regressions.md)",
    )
    ab.add_argument("-o", "--output", type=Path, default=Path("results"), help="folder for the A/B job's files")
    ab.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="per-case timeout, overriding the suite's")
    _judging_options(ab)
    compare = sub.add_parser(
        "compare", help="compare two results files or saved baselines: ratios, tests, verdicts; exit 1 on a regression"
    )
    compare.add_argument("baseline", metavar="BASELINE", help="results file, or a baseline name saved by run")
    compare.add_argument("current", metavar="CURRENT", help="results file, or a baseline name saved by run")
    _judging_options(compare)
    compare.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the output to FILE")
    compare.add_argument(
        "--results-dir", type=Path, default=Path("results"), metavar="DIR", help="where baselines/ is (results)"
    )
    history = sub.add_parser(
        "history", help="each case's figure over many runs, ordered by commit date, with the persistent steps in it"
    )
    history.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="results files, or folders to search")
    history.add_argument("--metric", default="latency", metavar="NAME", help="the figure to follow (default: latency)")
    history.add_argument("--case", metavar="TEXT", help="only the cases whose id contains TEXT")
    history.add_argument(
        "--threshold", default="5%", metavar="T", help="smallest change of level that counts: 5%% or 0.05"
    )
    history.add_argument(
        "--min-run", default="2", metavar="N", help="runs a level must last to count (default 2: never a one-run blip)"
    )
    history.add_argument("--format", default="table", choices=("table", "markdown", "json"), help="output format")
    report = sub.add_parser(
        "report", help="write a self-contained HTML report of results files: the table, distributions, history"
    )
    report.add_argument("results", type=Path, nargs="+", metavar="RESULTS", help="results files (two or more: history)")
    report.add_argument("--html", type=Path, required=True, metavar="OUT", help="the HTML file to write")
    report.add_argument("--png-dir", type=Path, metavar="DIR", help="also write each plot as a PNG in this folder")
    report.add_argument("--metric", default="latency", metavar="NAME", help="the figure to plot (default: latency)")
    report.add_argument("--title", metavar="TEXT", help="the report's title (default: from the suites and runs)")
    return parser


def _err(message: str) -> None:
    sys.stdout.flush()  # keep stdout and stderr in order when both go to one pipe
    print(message, file=sys.stderr)


def _host(args: argparse.Namespace) -> Any:
    """The plugins as ``-p`` asks; a ``-p`` module that fails to load is an error (exit 2), not a warning."""
    from benchharness.errors import BenchError
    from benchharness.plugins import PluginHost, split_plugin_args

    held: list[str] | None = []  # warnings while loading, until we know which -p modules failed

    def warn(line: str) -> None:
        if held is None:
            _err(line)
        else:
            held.append(line)

    modules, blocked = split_plugin_args(args.plugins)
    host = PluginHost(modules, blocked=blocked, warn=warn)
    failed = host.load_errors("-p")
    # A -p module that failed is the one error line below, not a warning as well.
    repeated = {f"benchharness: warning: plugin {p.name!r} {p.error}" for p in failed}
    for line in held:
        if line not in repeated:
            _err(line)
    held = None
    if failed:
        raise BenchError("; ".join(f"-p {p.module}: {p.error}" for p in failed))
    return host


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate each suite; print one line per problem."""
    from benchharness.errors import SuiteError
    from benchharness.plan import expand
    from benchharness.suite import load_suite

    host = _host(args)
    status = EXIT_OK
    for path in args.suites:
        try:
            loaded = load_suite(path, host)
        except SuiteError as exc:
            for line in exc.problems:
                _err(line)
            status = EXIT_USAGE
            continue
        print(f"{path}: ok ({_plural(len(expand(loaded)), 'case')})")
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the suite JSON Schema."""
    import json

    from benchharness.suite import json_schema

    print(json.dumps(json_schema(_host(args)), indent=2))
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    """List plugins with version, origin, what they provide (or had refused) and availability."""
    import json

    from benchharness.plugins import KIND_NOUNS

    host = _host(args)
    records = []
    for plugin in host.plugins:
        provides = []
        for kind, names in plugin.provides.items():
            for name in names:
                cls = host.items[kind][name].cls
                reason = cls.unavailable_reason()
                provides.append(
                    {
                        "kind": KIND_NOUNS[kind],
                        "name": name,
                        "description": cls.description,
                        "available": reason is None,
                        "unavailable_reason": reason,
                    }
                )
        refused = [{"kind": KIND_NOUNS[r.kind], "name": r.name, "reason": r.reason} for r in plugin.refused]
        records.append({**plugin.model_dump(exclude={"provides", "refused"}), "provides": provides, "refused": refused})
    if args.json:
        print(json.dumps(records, indent=2))
        return EXIT_OK
    from tabulate import tabulate

    rows = []
    for rec in records:
        items = [
            (
                item["kind"],
                item["name"],
                "available" if item["available"] else f"unavailable ({item['unavailable_reason']})",
            )
            for item in rec["provides"]
        ] + [(item["kind"], item["name"], f"refused: {item['reason']}") for item in rec["refused"]]
        if not items:
            items = [("", "", f"error: {rec['error']}" if rec["error"] else "")]
        for j, item in enumerate(items):
            head = [rec["name"], rec["version"], rec["origin"]] if j == 0 else ["", "", ""]
            rows.append(head + list(item))
    print(tabulate(rows, headers=["plugin", "version", "origin", "kind", "name", "status"]))
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    """List every target with its default options: whether this machine has it, and why not when it does not."""
    import json

    from pydantic import ValidationError

    from benchharness.errors import BenchError
    from benchharness.plugins import plugin_code

    host = _host(args)
    records = []
    for name, provided in host.items["targets"].items():
        cls = provided.cls
        reason = cls.unavailable_reason()  # a module it needs is not installed
        if reason is None:
            try:
                options = cls.Options.model_validate({})
            except ValidationError as exc:
                fields = ", ".join(str(err["loc"][0]) for err in exc.errors(include_url=False) if err["loc"])
                reason = f"has no default options (a suite must give {fields or 'some'}); not checked"
            else:
                try:
                    with plugin_code(provided, "unavailable_here"):
                        reason = cls.unavailable_here(options)
                except BenchError as exc:
                    reason = f"cannot tell: {exc}"
        records.append(
            {
                "name": name,
                "plugin": provided.plugin.name,
                "version": provided.plugin.version,
                "description": cls.description,
                "available": reason is None,
                "reason": None if reason is None else str(reason),
            }
        )
    if args.json:
        print(json.dumps(records, indent=2))
        return EXIT_OK
    from tabulate import tabulate

    rows = [
        [r["name"], "yes" if r["available"] else f"no: {r['reason']}", r["plugin"], r["description"]] for r in records
    ]
    print(tabulate(rows, headers=["target", "on this machine", "plugin", "description"]))
    return EXIT_OK


def _render(results: Any, host: Any, fmt: str) -> str:
    from benchharness.errors import BenchError
    from benchharness.plugins import plugin_code

    reporter = host.get("reporters", fmt)
    with plugin_code(reporter, "render"):
        text = reporter.cls().render(results)
    if not isinstance(text, str):
        raise BenchError(f"reporter {fmt!r} returned {type(text).__name__} from render, not text")
    return text


def cmd_show(args: argparse.Namespace) -> int:
    """Render an existing results file; say so on stderr when its run did not finish."""
    from benchharness.results import load_results
    from benchharness.table import completeness_note

    host = _host(args)
    host.get("reporters", args.format)
    results = load_results(args.results)
    if args.metrics is not None:
        results = _only_metrics(results, args.metrics, args.results)
    print(_render(results, host, args.format))
    note = completeness_note(results, args.results)
    if note:
        _err(note)
    return EXIT_OK


def _only_metrics(results: Any, names: str, path: Path) -> Any:
    """``results`` with only the figures named in ``names`` (comma-separated); an unknown name is an error."""
    from benchharness.errors import BenchError

    wanted = [n.strip() for n in names.split(",") if n.strip()]
    present = list(dict.fromkeys(n for c in results.cases for n in [*c.metrics, *c.metric_errors]))
    unknown = [n for n in wanted if n not in present]
    if not wanted or unknown:
        what = f"no figure {', '.join(map(repr, unknown))} in {path}" if unknown else "name at least one figure"
        raise BenchError(f"--metrics: {what}; it has: {', '.join(present) or 'none'}")
    cases = [
        c.model_copy(
            update={
                "metrics": {k: v for k, v in c.metrics.items() if k in wanted},
                "metric_errors": {k: v for k, v in c.metric_errors.items() if k in wanted},
            }
        )
        for c in results.cases
    ]
    return results.model_copy(update={"cases": cases})


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the inputs and outputs of a model file, or of each model of a suite, as the harness reads them."""
    import json

    from benchharness.inspection import inspect_path

    host = _host(args)
    described = inspect_path(args.model, host, source=args.source)
    if args.json:
        print(json.dumps([{"model": label, **sig.model_dump(mode="json")} for label, sig in described], indent=2))
        return EXIT_OK
    from benchharness.inspection import render_signature

    print("\n\n".join(render_signature(label, sig) for label, sig in described))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Validate, expand and run a suite; print the table; exit 1 when a case failed."""
    import time

    from benchharness.api import PluginSelection
    from benchharness.compare import run_baseline_after, run_baseline_before
    from benchharness.errors import SuiteError
    from benchharness.plan import expand
    from benchharness.plugins import split_plugin_args
    from benchharness.runner import Interrupted, Progress, RunSettings, SaveFailed, run_suite
    from benchharness.suite import load_suite

    baseline = run_baseline_before(args)  # a bad --save-baseline or unknown --baseline fails before anything runs
    host = _host(args)
    try:
        loaded = load_suite(args.suite, host)
    except SuiteError as exc:
        for line in exc.problems:
            _err(line)
        return EXIT_USAGE
    host.get("reporters", args.format)  # an unknown format or launcher fails now, not after the run
    host.get("launchers", args.launcher)
    cases = expand(loaded)
    if not cases:
        _err(f"{args.suite}: no cases left after include/exclude")
        return EXIT_USAGE
    modules, blocked = split_plugin_args(args.plugins)
    settings = RunSettings(
        output_dir=args.output,
        resume=args.resume,
        plugins=PluginSelection(extra=modules, blocked=blocked, autoload=host.autoload),
        launcher=args.launcher,
        launcher_options={} if args.address is None else {"address": args.address},
        timeout=args.timeout,
        repeat=args.repeat,
    )
    started = time.perf_counter()
    progress = Progress() if args.quiet else _progress_printer(started)
    if not args.quiet:
        _err(f"benchharness {__version__}: suite {loaded.suite.name!r}, {_plural(len(cases), 'case')}")
    try:
        results, path = run_suite(loaded, cases, host, settings, progress)
    except Interrupted as exc:
        import signal

        what = "interrupted" if exc.signum == signal.SIGINT else f"stopped by {signal.Signals(exc.signum).name}"
        _err(f"{what}: {exc.done} of {exc.total} cases saved in {exc.path}; {_resume_hint(args.suite, exc.path)}")
        return exc.exit_code
    except SaveFailed as exc:
        if exc.saved is None:
            _err(f"benchharness: error: {exc}")
        else:
            _err(
                f"benchharness: error: {exc}; the run stopped with {exc.saved} of {exc.total} cases saved in it; "
                f"once it can be written, {_resume_hint(args.suite, exc.path)}"
            )
        return exc.exit_code
    print(_render(results, host, args.format))
    _err(f"results: {path}")
    regressed = run_baseline_after(results, path, baseline, args, _err)  # --save-baseline, --baseline
    from benchharness.results import FAILED_STATUSES

    failed = [c for c in results.cases if c.status in FAILED_STATUSES]
    skipped = [c for c in results.cases if c.status == "skipped"]
    figures = [(c, name) for c in results.cases for name in c.metric_errors]
    if skipped:  # not failures: this machine lacks their target
        by_reason: dict[str, list[str]] = {}
        for c in skipped:
            by_reason.setdefault(c.error or "no reason given", []).append(c.case_id)
        _err(
            f"{len(skipped)} of {len(results.cases)} cases skipped: "
            + "; ".join(
                f"{reason}: {ids[0]}" + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")
                for reason, ids in by_reason.items()
            )
        )
    if failed:
        _err(
            f"{len(failed)} of {len(results.cases)} cases failed: "
            + ", ".join(f"{c.case_id} ({c.status})" for c in failed)
        )
    for case, name in figures:
        _err(f"{case.case_id}: {name}: {case.metric_errors[name]}")
    return EXIT_CASES_FAILED if failed or figures or regressed else EXIT_OK


def cmd_ab(args: argparse.Namespace) -> int:
    """Interleaved A/B of a suite on two revisions or environments; print the comparison; exit 1 on a regression."""
    from benchharness.ab import DEFAULT_ROUNDS, SAME_CORE_NOTE, run_ab
    from benchharness.compare import compare_results, parse_alpha, parse_threshold, render, split_names
    from benchharness.errors import BenchError

    threshold, alpha = parse_threshold(args.threshold), parse_alpha(args.alpha)

    if (args.base or args.head) and (args.base_python or args.head_python):
        raise BenchError("give revisions (--base/--head) or environments (--base-python/--head-python), not both")
    if not args.suite.is_file():
        raise BenchError(f"{args.suite}: no such suite file")
    _host(args)  # a -p module that does not load is an error now, not in every round
    rounds = args.rounds or DEFAULT_ROUNDS
    run_args = [f"--plugin={p}" for p in args.plugins] + (["--timeout", str(args.timeout)] if args.timeout else [])
    how = ", both sides at once on one core" if args.same_core else ""
    _err(f"benchharness {__version__}: A/B of {args.suite}, {_plural(rounds, 'round')}{how}")
    try:
        job = run_ab(
            args.suite, suite_name=args.suite.stem, base=args.base, head=args.head, base_python=args.base_python,
            head_python=args.head_python, rounds=rounds, output_dir=args.output, run_args=run_args, progress=_err,
            same_core=args.same_core,
        )  # fmt: skip
    except KeyboardInterrupt:
        _err(f"interrupted: the rounds that finished are kept under {args.output}")
        return EXIT_INTERRUPTED
    comparison = compare_results(
        job.merged["base"], job.merged["head"], threshold=threshold, alpha=alpha,
        metrics=split_names(args.metric), fail_on=split_names(args.fail_on), paired=True,
        labels=(job.sides["base"].description, job.sides["head"].description),
    )  # fmt: skip
    print(render(comparison, args.format))
    _err(f"results: {job.paths['base']} and {job.paths['head']} (every round under {job.folder})")
    if args.same_core:
        _err(f"note: {SAME_CORE_NOTE}")
    return comparison.exit_code


def _resume_hint(suite: Path, results: Path) -> str:
    return f"continue with: benchharness run {suite} --resume {results}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _progress_printer(started: float) -> Any:
    import time

    from benchharness.runner import Progress

    def elapsed() -> str:
        seconds = int(time.perf_counter() - started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def start(index: int, total: int, case: Any, process: int, processes: int) -> None:
        which = f" (process {process} of {processes})" if processes > 1 else ""
        print(f"[{index}/{total}] {case.id}{which} ...", file=sys.stderr, flush=True)

    def finish(index: int, total: int, case: Any, result: Any) -> None:
        lat = result.metrics.get("latency")
        what = f"median {lat.value:.4g} ms" if result.status == "ok" and lat and lat.value else (result.error or "")
        print(
            f"[{index}/{total}] {case.id}: {result.status} {what} ({result.duration_s:.1f} s; "
            f"elapsed {elapsed()}, {total - index} left)",
            file=sys.stderr,
            flush=True,
        )

    def skip(case: Any) -> None:
        print(f"[skip] {case.id}: already in the results file", file=sys.stderr, flush=True)

    return Progress(start=start, finish=finish, skip=skip)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of results files (each plot also as a PNG with ``--png-dir``)."""
    from benchharness.report import write_report

    report = write_report(args.results, args.html, png_dir=args.png_dir, metric=args.metric, title=args.title)
    for line in report.warnings:
        _err(f"benchharness: warning: {line}")
    _err(f"report: {args.html} ({_plural(len(report.plots), 'plot')})")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two runs (files or saved baselines); exit 1 on a gating regression."""
    from benchharness.compare import compare_command

    return compare_command(args, _err)


COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "inspect": cmd_inspect,
    "schema": cmd_schema,
    "plugins": cmd_plugins,
    "targets": cmd_targets,
    "show": cmd_show,
    "report": cmd_report,
    "compare": cmd_compare,
    # Its code, and the parsing of its values, live in benchharness/history.py (imported only when it runs).
    "history": lambda args: __import__("benchharness.history", fromlist=["cmd_history"]).cmd_history(args),
    "ab": cmd_ab,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn user errors into one line and exit code 2."""
    args = _parser().parse_args(argv)
    args.plugins = list(dict.fromkeys([*args.plugin_before, *getattr(args, "plugin", [])]))
    from benchharness.errors import BenchError

    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        _err(f"benchharness: error: {exc}")
        return exc.exit_code
    except BrokenPipeError:  # `benchharness ... | head`: the reader left; say nothing more (before OSError, its base)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit-time flush must not fail again
        return EXIT_OK
    except OSError as exc:  # an unwritable results folder, a full disk: the user's to fix, not a crash
        _err(f"benchharness: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
