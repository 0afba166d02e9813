#!/usr/bin/env bash
# Runs suites/gpu.yaml on a lent GPU machine (the device tool), in one prepared command, and leaves under $OUT
# what docs/benchmarks.md records: the table (markdown), the results file (GPU facts and clock snapshots per case)
# and nvidia-smi before and after.  Prepare once here, in the repo root:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#       pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2
#
# then call the device tool's run with carry [".whl"] and command "bash bench/gpu_run.sh" (timeout_s 540).
# The machine's image has torch (CUDA), onnxruntime (CPU only: its cases are skipped, with the reason),
# numpy, scipy, onnx, pluggy, tabulate, psutil, pyyaml and nvidia-ml-py; pydantic travels as wheels.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
# The built-in plugins load by module name (benchharness.plugins.BUILTIN_PLUGINS): the repo root and plugins/ suffice.
export PYTHONPATH=/tmp/site:$PWD:$PWD/plugins BENCHHARNESS_CACHE=/tmp/bh-cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv \
    > "$OUT/nvidia-smi-before.csv" 2>&1
python3 -m benchharness targets | tee "$OUT/targets.txt"
python3 -m benchharness run suites/gpu.yaml -o "$OUT" --format markdown 2>&1 | tee "$OUT/run.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv \
    > "$OUT/nvidia-smi-after.csv" 2>&1
python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for path in sorted(out.glob("gpu-*.json")):
    for case in json.loads(path.read_text())["cases"]:
        target = (case.get("runtime") or {}).get("target") or {}
        snaps = target.get("details", {}).get("snapshots", {})
        clocks = {p: (s.get("sm_clock_mhz"), s.get("temperature_c"), s.get("power_w")) for p, s in snaps.items()}
        device = case.get("metrics", {}).get("latency", {}).get("details", {}).get("device_clock", {})
        print(case["case_id"], case["status"], "sm MHz/temp C/power W:", clocks,
              "device clock median ms:", device.get("median_ms"), "warnings:", case.get("warnings"))
PY
