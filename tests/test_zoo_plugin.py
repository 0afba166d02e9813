"""The zoo model source: options, names, inputs, and agreement with the model code."""

from __future__ import annotations

import benchharness_zoo
import pytest

from benchharness.api import ModelContext

models = pytest.importorskip("benchharness_zoo.models")


@pytest.fixture(autouse=True)
def _one_thread():
    """Build on one torch thread: on 2 busy cores OpenMP's spin-waits made a 2-thread build several times slower."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_option_choices_match_the_model_code():
    assert set(benchharness_zoo.ARCH_NAMES) == set(models.ARCHITECTURES)
    assert set(benchharness_zoo.ACTIVATION_NAMES) == set(models.ACTIVATIONS)


def test_default_names_and_inputs():
    source = benchharness_zoo.ZooSource()
    opts = benchharness_zoo.ZooOptions(arch="resnet")
    assert source.default_name(opts) == "resnet"
    opts = benchharness_zoo.ZooOptions(arch="squeezenet", width=0.5, depth=2, activation="swish", input_size=96)
    assert source.default_name(opts) == "squeezenet-w0.5-d2-swish"
    assert source.default_name(benchharness_zoo.ZooOptions(arch="resnet", activation="hardswish")) == "resnet-hardswish"
    signature = source.describe(opts, ctx=None)  # type: ignore[arg-type]
    (spec,) = signature.inputs
    assert (spec.name, spec.shape, spec.dtype) == ("input", ["batch", 3, 96, 96], "float32")
    assert [(o.name, o.shape) for o in signature.outputs] == [("output0", ["batch", 1000])]


def test_weights_follow_the_seed(tmp_path):
    source = benchharness_zoo.ZooSource()
    opts = benchharness_zoo.ZooOptions(arch="mobilenet_v2", width=0.25, input_size=32, num_classes=10)

    def load(seed: int):
        return source.load(opts, ModelContext(base_dir=tmp_path, cache_dir=tmp_path, seed=seed))

    a, b, c = load(0), load(0), load(1)
    assert a.content_hash == b.content_hash != c.content_hash
    assert a.format == "torch" and a.info["parameters"] > 0
    assert a.size_bytes() >= 4 * a.info["parameters"]


def test_digits_cache_key_is_distinct_per_activation():
    """Every activation trains its own weights: the digits cache key differs for each, and only through it."""
    pytest.importorskip("benchharness_datasets.digits")
    from benchharness_zoo.train import cache_key

    def key(activation: str) -> str:
        options = benchharness_zoo.ZooOptions(
            arch="resnet", width=0.25, input_size=32, num_classes=10, weights="digits", activation=activation
        )
        return cache_key(options, 0)

    keys = {activation: key(activation) for activation in benchharness_zoo.ACTIVATION_NAMES}
    assert len(set(keys.values())) == len(keys) == 4
    assert key("hardswish") == keys["hardswish"]
