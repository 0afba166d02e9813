"""How long does describing a ~100 MB model take in the CLI process?

Builds, in a temp dir, a ~100 MB ONNX model (six 2048x2048 float32 MatMul
weights embedded in the file) and a ~100 MB TorchScript file (the same as a
scripted ``nn.Sequential`` of six ``Linear(2048, 2048, bias=False)``), then times,
each in fresh subprocesses (the OS page cache is warm after the first read):

* ``whole``: importing the describing module (benchharness, pydantic) and the
  first ``describe_*`` call (for ONNX this includes ``import onnx``, done inside
  the call); the module import is also shown alone;
* ``call``: the call alone, in a process that imported everything beforehand;
* ``validate``: the wall time of ``python -m benchharness validate SUITE`` on a
  suite naming the ONNX model, and of ``python -c pass`` for reference.

A measurement, not a test: it exits 0 (2 on a usage error).

    python bench/validate_large_model.py [--repeats 5] [--json OUT] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZE = 2048
LAYERS = 6  # 6 * 2048 * 2048 * 4 bytes = 100.7 MB

SUITE = """\
name: large
models: [{source: onnx, path: large.onnx}]
backends: [{name: onnxruntime}]
"""

# Run in a fresh interpreter: argv = mode ("whole" or "call"), format ("onnx" or "torchscript"), path.
PROBE = """\
import json, sys, time
from pathlib import Path
mode, fmt, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if mode == "call":
    if fmt == "onnx":
        import onnx  # noqa: F401
    import benchharness_onnxruntime.graph, benchharness_torch.schema  # noqa: F401
before = set(sys.modules)
start = time.perf_counter()
if fmt == "onnx":
    from benchharness_onnxruntime.graph import describe_onnx as describe
else:
    from benchharness_torch.schema import describe_torchscript as describe
imported = time.perf_counter()
signature = describe(path)
seconds = time.perf_counter() - start
heavy = sorted(m for m in ("torch", "onnx", "onnxruntime") if m in sys.modules and m not in before)
print(json.dumps({"seconds": seconds, "module_import": imported - start, "inputs": len(signature.inputs),
                  "parameters": signature.parameters, "imported": heavy}))
"""


def build_onnx(path: Path) -> None:
    """Six MatMuls with 2048x2048 float32 weights, stored in the file."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights, nodes, previous = [], [], "x"
    for i in range(LAYERS):
        weights.append(numpy_helper.from_array(rng.standard_normal((SIZE, SIZE), dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"h{i}"]))
        previous = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "large",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", SIZE])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", SIZE])],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


BUILD_TORCHSCRIPT = """\
import sys, warnings
import torch
warnings.simplefilter("ignore")
torch.manual_seed(0)
layers = [torch.nn.Linear(%d, %d, bias=False) for _ in range(%d)]
torch.jit.save(torch.jit.script(torch.nn.Sequential(*layers)), sys.argv[1])
""" % (SIZE, SIZE, LAYERS)


def build_torchscript(path: Path) -> bool:
    """The TorchScript file, built in a subprocess so this process never imports torch; False without torch."""
    proc = subprocess.run([sys.executable, "-c", BUILD_TORCHSCRIPT, str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"(no TorchScript model: {proc.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return False
    return True


def probe(mode: str, fmt: str, path: Path) -> dict[str, Any]:
    """One fresh interpreter: the in-process seconds and the process's wall time."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, mode, fmt, str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"probe {mode} {fmt} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout)
    result["process_wall"] = wall
    return result


def wall(command: list[str], cwd: Path) -> dict[str, Any]:
    """Wall time of a command, with its exit code and last output line."""
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = (proc.stdout + proc.stderr).strip().splitlines()
    return {"seconds": seconds, "rc": proc.returncode, "last_line": output[-1] if output else ""}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(workdir: Path, repeats: int) -> dict[str, Any]:
    onnx_path, ts_path = workdir / "large.onnx", workdir / "large.pt"
    build_onnx(onnx_path)
    models = {"onnx": onnx_path}
    if build_torchscript(ts_path):
        models["torchscript"] = ts_path
    suite = workdir / "large.yaml"
    suite.write_text(SUITE)

    raw: dict[str, Any] = {"files": {fmt: path.stat().st_size for fmt, path in models.items()}, "runs": {}}
    for fmt, path in models.items():
        for mode in ("whole", "call"):
            raw["runs"][f"{fmt}/{mode}"] = [probe(mode, fmt, path) for _ in range(repeats)]
    raw["runs"]["validate"] = [
        wall([sys.executable, "-m", "benchharness", "validate", str(suite)], workdir) for _ in range(repeats)
    ]
    raw["runs"]["python -c pass"] = [wall([sys.executable, "-c", "pass"], workdir) for _ in range(repeats)]
    return raw


def table(raw: dict[str, Any]) -> str:
    rows = [("what", "median s", "min s", "max s", "of it, module import", "process wall", "notes")]
    for key, runs in raw["runs"].items():
        stats = summary([r["seconds"] for r in runs])
        process = f"{statistics.median(r['process_wall'] for r in runs):.3f}" if "process_wall" in runs[0] else ""
        module = f"{statistics.median(r['module_import'] for r in runs):.3f}" if "module_import" in runs[0] else ""
        if "imported" in runs[0]:
            note = f"inputs={runs[0]['inputs']} parameters={runs[0]['parameters']} imported={runs[0]['imported']}"
        else:
            note = f"rc={runs[0]['rc']} {runs[0]['last_line'][:70]}"
        rows.append(
            (key, f"{stats['median']:.3f}", f"{stats['min']:.3f}", f"{stats['max']:.3f}", module, process, note)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per figure (default 5)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the raw numbers here")
    parser.add_argument("--workdir", type=Path, help="keep the models and suite here instead of a temp dir")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        raw = run(args.workdir, args.repeats)
    else:
        with tempfile.TemporaryDirectory(prefix="bh-large-") as tmp:
            raw = run(Path(tmp), args.repeats)
    sizes = ", ".join(f"{fmt} {size / 1e6:.1f} MB" for fmt, size in raw["files"].items())
    print(f"model files: {sizes}; {args.repeats} fresh processes per row\n")
    print(table(raw))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
