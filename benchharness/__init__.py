"""benchharness: a plugin-based harness that benchmarks neural-network inference."""

__version__ = "0.1.0"
