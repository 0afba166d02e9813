"""Time an ONNX model with a bare ``perf_counter_ns`` loop, in a plain process.

This is the reference the harness is compared with in ``harness_overhead.py``.
The session is built with exactly the settings the harness's ``onnxruntime``
backend uses by default (plugins/benchharness_onnxruntime): intra-op threads
= ``--threads``, inter-op threads = 1, ``ORT_ENABLE_ALL``, sequential
execution, ``CPUExecutionProvider``.  The thread-count variables are set the
way the ``cpu`` target sets them for its worker, before onnxruntime loads.
The input has the model's shape and dtype, uniform in [0, 1) (a symbolic
dimension is taken as 1, the harness's batch size).

It warms up, then times ``session.run(None, feed)`` one call per sample until
``--time`` seconds or ``--max-samples`` samples, and prints one JSON line:
the median in ns, the sample count and the settings used.  ``--samples-out``
also writes the raw samples.

    python bench/bare_loop.py MODEL.onnx [--threads 1] [--time 2.0] [--warmup-time 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

ONNX_TYPE_TO_NUMPY = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="ONNX file")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--time", type=float, default=2.0, help="sampling time in seconds (default 2.0)")
    parser.add_argument("--max-samples", type=int, default=100_000, help="stop after this many samples")
    parser.add_argument("--warmup-time", type=float, default=0.5, help="warm-up seconds (default 0.5)")
    parser.add_argument("--warmup-min", type=int, default=10, help="at least this many warm-up calls (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-out", help="write the raw samples (ns) to this JSON file")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")

    # Same as the cpu target's environment(): set before the framework loads.
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(args.threads)

    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(args.model, sess_options=so, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(args.seed)
    feed = {}
    for inp in session.get_inputs():
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in inp.shape)
        dtype = ONNX_TYPE_TO_NUMPY.get(inp.type)
        if dtype is None:
            parser.error(f"input {inp.name!r} has type {inp.type}; only float inputs are supported")
        feed[inp.name] = np.ascontiguousarray(rng.uniform(0.0, 1.0, size=shape).astype(dtype))

    clock = time.perf_counter_ns
    run = session.run

    # Warm-up: at least --warmup-min calls and --warmup-time seconds.
    warm_start = clock()
    warm_deadline = warm_start + int(args.warmup_time * 1e9)
    warm_calls = 0
    while warm_calls < args.warmup_min or clock() < warm_deadline:
        run(None, feed)
        warm_calls += 1
    warm_s = (clock() - warm_start) / 1e9

    samples: list[int] = []
    append = samples.append
    start = clock()
    deadline = start + int(args.time * 1e9)
    while True:
        t0 = clock()
        run(None, feed)
        t1 = clock()
        append(t1 - t0)
        if t1 >= deadline or len(samples) >= args.max_samples:
            break
    sampling_s = (clock() - start) / 1e9

    opts = session.get_session_options()
    report = {
        "median_ns": statistics.median(samples),
        "count": len(samples),
        "min_ns": min(samples),
        "sampling_time_s": sampling_s,
        "warmup_calls": warm_calls,
        "warmup_time_s": warm_s,
        "threads": opts.intra_op_num_threads,
        "inter_op_threads": opts.inter_op_num_threads,
        "providers": session.get_providers(),
        "onnxruntime": ort.__version__,
        "env": {var: os.environ.get(var) for var in THREAD_ENV_VARS},
    }
    if args.samples_out:
        with open(args.samples_out, "w", encoding="utf-8") as fh:
            json.dump(samples, fh)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
