"""Fuzz ``validate`` and ``show`` with seeded mutations of the shipped suites and of real results files.

Each mutation is built by its own ``random.Random`` seeded from :data:`SEED`, the file and the mutation's
index, so a failure is reproduced by its index alone (``mutant(kind, index)``).  The mutator is small and
written here, without a fuzzing library: it deletes keys, retypes values (booleans, null, lists, huge and
negative numbers, inf/nan, long strings, deep nesting), renames keys, duplicates lines, truncates the text,
flips or inserts bytes, and adds YAML anchors, aliases, merge keys and tags such as ``!!python/object``, or
JSON's non-standard ``NaN`` and repeated keys.

For every mutation the command must return 0 or 2, print no traceback, and finish within
:data:`HANG_S` seconds: a SIGALRM hang guard raises inside the command after that (it cannot interrupt
a single C call that never returns; pytest-timeout is the backstop).
"""

from __future__ import annotations

import copy
import json
import random
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchharness.cli import main
from benchharness.results import load_results
from benchharness.table import completeness_note

ROOT = Path(__file__).resolve().parent.parent
SUITES = sorted((ROOT / "suites").glob("*.yaml"))
RESULTS = sorted((ROOT / "tests" / "data").glob("results-v*-*.json"))

SEED = 20261130
SUITE_MUTATIONS = 300
RESULTS_MUTATIONS = 500
#: A command still running after this many seconds is hung (each takes about 20 ms once imports are warm).
HANG_S = 2.0
FORMATS = ("table", "markdown", "csv", "json")


# ----------------------------------------------------------------------------- the mutator


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


#: Values of the wrong type or at the edges, each made fresh (a shared list could be mutated twice).
ODD_VALUES: tuple[Callable[[], Any], ...] = (
    lambda: True,
    lambda: False,
    lambda: None,
    lambda: [],
    lambda: {},
    lambda: 0,
    lambda: -1,
    lambda: -(2**63),
    lambda: 2**64,
    lambda: 10**30,
    lambda: 1e308,
    lambda: -1e308,
    lambda: 5e-324,
    lambda: -0.0,
    lambda: float("inf"),
    lambda: float("-inf"),
    lambda: float("nan"),
    lambda: "",
    lambda: "x" * 10_000,
    lambda: "12",
    lambda: "1e3",
    lambda: "yes",
    lambda: "a\nb\x00\t\u202e",
    lambda: "é🙂",
    lambda: _deep_list(200),
    lambda: {"a": {"b": {"c": None}}},
    lambda: [1, "a", None, [2]],
)

#: Numbers at the edges, for a field that holds a number.
EDGE_NUMBERS = (0, -1, 1, 2**31, 2**53 + 1, 2**64, 10**30, -(2**63), 1e308, -1e308, 5e-324, -0.0, 0.5, float("inf"))

#: YAML spellings that the loader must refuse or read as something else than they look.
YAML_ODDITIES = (
    "!!python/object/apply:os.system ['true']",
    "!!python/object:builtins.dict {}",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!float nan",
    "!!int abc",
    "!!timestamp 2024-13-45",
    "!!set {a, b}",
    "!custom x",
    "*undefined",
    "&anchor",
    "{a: 1",
    "[1, 2",
    "'unterminated",
    ".inf",
    "-.inf",
    ".nan",
    "0x1F",
    "0o17",
    "1_000",
    "yes",
    "off",
    "~",
    "2024-01-01",
    "12:30:00",
    "1e400",
    "9" * 5000,
    "-0",
    '"\\x00"',
)

#: Whole-document YAML hazards: alias bombs, recursive aliases, merge keys, more documents.
YAML_DOCUMENT_HAZARDS = (
    'lol0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
    + "".join(f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)),
    "loop: &loop [*loop]\n",
    "<<: {name: merged}\n",
    "anchored: &shared {threads: 1}\nagain: *shared\n",
    "%YAML 1.1\n---\n",
    "--- !!python/object:object {}\n",
)

JSON_ODDITIES = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000, '"12"', "true", "null", "[]", "{}")


def _start(rng: random.Random, doc: Any) -> Any:
    """Where a mutation starts its descent: the document, or in a results file often deeper.

    A results file is mostly refused at its first wrong field; starting in a case, a figure, or
    the free-form parts the table reads (the suite as written, a figure's details and summary)
    gets mutations past the top, to files that load and must then be shown.
    """
    if not (isinstance(doc, dict) and "schema_version" in doc) or rng.random() < 0.25:
        return doc
    cases = doc.get("cases")
    cases = [c for c in cases if isinstance(c, dict)] if isinstance(cases, list) else []
    figures = [m for c in cases if isinstance(c.get("metrics"), dict) for m in c["metrics"].values()]
    figures = [m for m in figures if isinstance(m, dict)]
    parts = [m[k] for m in figures for k in ("details", "summary") if isinstance(m.get(k), dict)]
    suite = doc.get("suite")
    suite_data = [suite["data"]] if isinstance(suite, dict) and isinstance(suite.get("data"), dict) else []
    groups = [group for group in (cases, figures, parts, parts, suite_data) if group]
    return rng.choice(rng.choice(groups)) if groups else doc


def _pick(rng: random.Random, doc: Any) -> tuple[Any, Any] | None:
    """A random (container, key) by random descent, so every level is reached and big sample lists do not dominate."""
    node, found = _start(rng, doc), None
    while isinstance(node, (dict, list)) and node:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        found = (node, key)
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or rng.random() < 0.2:
            break
        node = child
    return found


def _mutate_data(rng: random.Random, doc: Any, log: list[str]) -> None:
    picked = _pick(rng, doc)
    if picked is None:
        return
    container, key = picked
    value = container[key]
    op = rng.choice(("delete", "retype", "retype", "swap", "rename", "duplicate"))
    if op == "delete":
        del container[key]
    elif op == "retype" and isinstance(value, (int, float)) and not isinstance(value, bool) and rng.random() < 0.6:
        container[key] = rng.choice(EDGE_NUMBERS)  # a number out of its range more often than a non-number
    elif op == "retype":
        container[key] = rng.choice(ODD_VALUES)()
    elif op == "swap" and isinstance(value, (int, float)) and not isinstance(value, bool):
        container[key] = str(value)
    elif op == "swap" and isinstance(value, str):
        container[key] = len(value)
    elif op == "rename" and isinstance(container, dict):
        container[rng.choice((key.upper(), key + "s", key[:-1], "", "x" * 300))] = container.pop(key)
    elif op == "duplicate" and isinstance(container, list):
        container.insert(key, copy.deepcopy(value))
    else:
        container[key] = rng.choice(ODD_VALUES)()
        op = "retype"
    log.append(f"{op} {key!r}")


def _mutate_text(rng: random.Random, data: bytes, kind: str, log: list[str]) -> bytes:
    lines = data.split(b"\n")
    ops = ["truncate", "flip", "insert bytes", "cut span", "duplicate line", "bom", "utf-16", "crlf", "odd scalar"]
    ops += ["document hazard", "tab indent"] if kind == "suite" else ["deep nesting"]
    op = rng.choice(ops)
    log.append(op)
    if op == "truncate":
        return data[: rng.randrange(len(data))]
    if op == "flip":
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if op == "insert bytes":
        at = rng.randrange(len(data))
        return data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
    if op == "cut span":
        at = rng.randrange(len(data))
        return data[:at] + data[at + rng.randint(1, 200) :]
    if op == "duplicate line":  # in both formats this repeats a key
        at = rng.randrange(len(lines))
        return b"\n".join(lines[: at + 1] + lines[at:])
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    if op == "utf-16":
        return data.decode("utf-8", "replace").encode("utf-16")
    if op == "crlf":
        return data.replace(b"\n", b"\r\n")
    if op == "tab indent":
        at = rng.randrange(len(lines))
        lines[at] = lines[at].replace(b"  ", b"\t", 1)
        return b"\n".join(lines)
    if op == "document hazard":
        hazard = rng.choice(YAML_DOCUMENT_HAZARDS).encode()
        return hazard + data if rng.random() < 0.5 else data + b"\n" + hazard
    if op == "deep nesting":
        depth = rng.choice((100, 1000, 100_000))
        return _replace_scalar(rng, data, b"[" * depth + b"]" * depth)
    oddities = YAML_ODDITIES if kind == "suite" else JSON_ODDITIES
    return _replace_scalar(rng, data, rng.choice(oddities).encode())


def _replace_scalar(rng: random.Random, data: bytes, new: bytes) -> bytes:
    """Put ``new`` in place of the value of a random ``key: value`` line."""
    lines = data.split(b"\n")
    candidates = [i for i, line in enumerate(lines) if b": " in line]
    if not candidates:
        return data + new
    at = rng.choice(candidates)
    head, _, tail = lines[at].partition(b": ")
    comma = b"," if tail.rstrip().endswith(b",") else b""
    lines[at] = head + b": " + new + comma
    return b"\n".join(lines)


def mutant(kind: str, index: int) -> tuple[Path, bytes, str]:
    """The ``index``-th mutation of kind ``suite`` or ``results``: its source file, its bytes and what was done."""
    sources = SUITES if kind == "suite" else RESULTS
    source = sources[index % len(sources)]
    rng = random.Random(f"{SEED}:{kind}:{index}")
    text = source.read_text(encoding="utf-8")
    log: list[str] = []
    if rng.random() < 0.7:  # structural: parse, mutate 1-3 times, write back
        doc = yaml.safe_load(text) if kind == "suite" else json.loads(text)
        for _ in range(rng.randint(1, 3)):
            _mutate_data(rng, doc, log)
        if kind == "suite":
            text = yaml.safe_dump(
                doc, sort_keys=False, allow_unicode=True, default_flow_style=rng.choice((False, None))
            )
        else:
            text = json.dumps(doc, indent=1, ensure_ascii=rng.random() < 0.5)
    data = text.encode("utf-8")
    if not log or rng.random() < (0.5 if kind == "suite" else 0.25):
        data = _mutate_text(rng, data, kind, log)
    return source, data, "; ".join(log)


# ----------------------------------------------------------------------------- running a command


class Hung(BaseException):
    """Raised by the hang guard; a BaseException, so no ``except Exception`` in the code under test swallows it."""


@contextmanager
def hang_guard(seconds: float) -> Iterator[None]:
    """Raise :class:`Hung` in the main thread after ``seconds``; put back pytest-timeout's alarm afterwards."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001), outer_interval)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], what: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        with hang_guard(HANG_S):
            rc = main(argv)
    except BaseException:  # noqa: BLE001 - any escape (Hung included) is the finding
        out, err = capsys.readouterr()
        pytest.fail(f"{what}\nraised:\n{traceback.format_exc()}\nstdout:\n{out}\nstderr:\n{err}", pytrace=False)
    out, err = capsys.readouterr()
    return rc, out, err


def _describe(kind: str, index: int, source: Path, data: bytes, log: str, path: Path) -> str:
    text = data.decode("utf-8", "backslashreplace")
    return (
        f"{kind} mutation {index} (seed {SEED}; tests/test_fuzz.py's mutant({kind!r}, {index}) rebuilds it) "
        f"of {source.name}: {log}\nwritten to {path}\n--- mutated text ---\n{text}\n--- end ---"
    )


def _check(rc: int, out: str, err: str, path: Path, what: str) -> None:
    problems = []
    if rc not in (0, 2):
        problems.append(f"exit {rc}, not 0 or 2")
    if "Traceback" in out + err:
        problems.append("a traceback")
    if rc == 2 and not err:
        problems.append("exit 2 without saying why")
    stray = [line for line in err.splitlines() if not line.startswith((str(path), "benchharness: "))]
    if rc == 0:  # show's note on a run that did not finish (complete: false) is one line of its own
        stray = [line for line in stray if not line.startswith("incomplete run: ")]
    if stray:  # one line per problem: a line that names neither the file nor the program is a broken line
        problems.append(f"stderr lines that are not problem lines: {stray[:3]!r}")
    if problems:
        pytest.fail(f"{what}\n{'; '.join(problems)}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}", pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def _one_plugin_host() -> Iterator[None]:
    """Every command here gets the same plugin host, loaded once for the module, not once per mutation.

    Loading the plugins (entry points, each item's signature checks) was two thirds of a ``validate`` call's time,
    and it reads nothing a mutation changes: the commands here all name the same plugins (none).  Loading them and
    what a bad plugin does to the CLI are test_plugins.py's subject.
    """
    from benchharness import cli

    load = cli._host
    hosts: dict[tuple[str, ...], Any] = {}

    def shared(args: Any) -> Any:
        key = tuple(args.plugins or ())
        if key not in hosts:
            hosts[key] = load(args)
        return hosts[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "_host", shared)
        yield


@pytest.fixture(scope="module", autouse=True)
def _warm_imports(_one_plugin_host: None) -> None:
    """Import everything the commands import once, unmutated, so no mutation's hang guard pays for it."""
    for suite in SUITES:
        assert main(["validate", str(suite)]) == 0
    for results in RESULTS:
        for fmt in FORMATS:
            assert main(["show", str(results), "--format", fmt]) == 0


def test_the_mutator_is_seeded_and_mutates():
    assert mutant("suite", 7) == mutant("suite", 7)
    assert mutant("results", 7) == mutant("results", 7)
    for kind, sources in (("suite", SUITES), ("results", RESULTS)):
        changed = sum(mutant(kind, i)[1] != sources[i % len(sources)].read_bytes() for i in range(50))
        assert changed >= 45


def test_validate_survives_mutated_suites(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Every mutation of a shipped suite is refused in problem lines (exit 2) or validates (exit 0)."""
    outcomes = {0: 0, 2: 0}
    for index in range(SUITE_MUTATIONS):
        source, data, log = mutant("suite", index)
        path = tmp_path / source.name
        path.write_bytes(data)
        what = _describe("suite", index, source, data, log, path)
        rc, out, err = _run(["validate", str(path)], capsys, what)
        _check(rc, out, err, path, what)
        if rc == 0 and not out.startswith(f"{path}: ok ("):
            pytest.fail(f"{what}\nexit 0 without the ok line: {out!r}", pytrace=False)
        outcomes[rc] += 1
    assert outcomes[2] > SUITE_MUTATIONS / 2  # most mutations break a suite; the rest must still be valid ones


def test_show_survives_mutated_results_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Every mutation of a results file is refused in one line (exit 2), or loads and is shown in any format."""
    outcomes = {0: 0, 2: 0}
    for index in range(RESULTS_MUTATIONS):
        source, data, log = mutant("results", index)
        path = tmp_path / source.name
        path.write_bytes(data)
        what = _describe("results", index, source, data, log, path)
        fmt = FORMATS[index % len(FORMATS)]
        rc, out, err = _run(["show", str(path), "--format", fmt], capsys, what)
        _check(rc, out, err, path, what)
        if rc == 2 and (len(err.splitlines()) != 1 or "failed in render" in err):
            # A built-in reporter failing on a file that loaded is a crash, however politely reported.
            pytest.fail(f"{what}\nnot one line naming the file's problem: {err!r}", pytrace=False)
        if rc == 0:
            note = completeness_note(load_results(path), path)
            said = f"{note}\n" if note is not None else ""  # an unfinished run's note, and nothing else
            if not out.strip() or err != said or (note is not None and "\n" in note):
                pytest.fail(f"{what}\nshown, but: stdout {out[:200]!r}, stderr {err!r}, note {note!r}", pytrace=False)
        outcomes[rc] += 1
    assert outcomes[0] >= 10 and outcomes[2] >= RESULTS_MUTATIONS / 2  # both paths are exercised
