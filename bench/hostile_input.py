"""How fast, and in how much memory, hostile input is refused (issue 6: "each refusal within a second").

Each input is given to a fresh ``benchharness validate`` (or ``show``) process,
``--repeats`` times; the figures are the median wall time of the whole process
(start-up included), the same minus a valid tiny suite's (the refusal's own
cost), and the largest peak RSS, read with ``os.wait4``.  Each row must exit 2
with one line on stderr and no traceback, within ``--limit`` seconds.

    python bench/hostile_input.py                        # about 30 s
    python bench/hostile_input.py --json bench/results/hostile-$(date -u +%Y-%m-%dT%H%MZ).json

Prints PASS/FAIL per row and always exits 0 (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALID = "name: s\nmodels: [{source: zoo, arch: mobilenet_v2}]\nbackends: [{name: onnxruntime}]\n"


def alias_bomb(levels: int = 8) -> str:
    """Ten aliases per level: 10**levels nodes once expanded, in a few hundred bytes."""
    lines = ["name: s", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def inputs(folder: Path) -> list[tuple[str, list[str]]]:
    """(what, argv after ``benchharness``) for each hostile input, files written into ``folder``."""

    def write(name: str, text: str) -> str:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    flat = "name: s\nx: [" + ", ".join(["1"] * 349_000) + "]\n"  # just under 1 MiB, ~350k nodes
    deep = '{"schema_version": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return [
        ("valid tiny suite (start-up baseline)", ["validate", write("valid.yaml", VALID)]),
        ("alias bomb, 10^8 nodes", ["validate", write("bomb.yaml", alias_bomb(8))]),
        ("50 MB suite", ["validate", write("big.yaml", "name: s\n" + "# padding\n" * 5_000_000)]),
        ("1 MiB flat list (node limit)", ["validate", write("flat.yaml", flat)]),
        ("/dev/zero", ["validate", "/dev/zero"]),
        ("a FIFO", ["validate", str(fifo)]),
        ("a directory", ["validate", str(folder)]),
        ("results file nested 100,000 deep", ["show", write("deep.json", deep)]),
    ]


def run_once(argv: list[str]) -> tuple[float, int, int, str]:
    """Wall seconds, peak RSS (MiB), exit code and stderr of one ``benchharness`` process."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "benchharness", *argv], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return wall, usage.ru_maxrss // 1024, proc.returncode, err.read().decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=float, default=1.0, help="seconds a refusal may take, start-up excluded")
    parser.add_argument("--json", type=Path, help="write every raw figure here")
    args = parser.parse_args()
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cases = inputs(Path(tmp))
        baseline = None
        for what, argv in cases:
            runs = [run_once(argv) for _ in range(args.repeats)]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            codes = sorted({r[2] for r in runs})
            stderr = runs[0][3].strip()
            if baseline is None:
                baseline = wall
                verdict = "baseline" if codes == [0] else f"FAIL (exit {codes})"
            else:
                one_line = all(len(r[3].strip().splitlines()) == 1 and "Traceback" not in r[3] for r in runs)
                ok = codes == [2] and one_line and wall - baseline < args.limit
                verdict = "PASS" if ok else "FAIL"
            rows.append(
                (what, wall, wall - baseline, rss, codes, verdict, stderr.splitlines()[0][:100] if stderr else "")
            )
            raw.append({"input": what, "argv": argv[:1], "walls_s": [r[0] for r in runs], "peak_rss_mib": rss,
                        "exit_codes": codes, "stderr": stderr})  # fmt: skip
            print(f"{what}: {wall:.3f} s, {rss} MiB, exit {codes}: {verdict}", file=sys.stderr)
    print(f"\n{'input':<36} {'wall s':>7} {'- base':>7} {'RSS MiB':>8}  exit  verdict   first stderr line")
    for what, wall, extra, rss, codes, verdict, line in rows:
        print(f"{what:<36} {wall:7.3f} {extra:7.3f} {rss:8d}  {codes[0]:>4}  {verdict:<8}  {line}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        machine = {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0], "python": sys.version.split()[0]}
        args.json.write_text(json.dumps({"machine": machine, "limit_s": args.limit, "rows": raw}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
