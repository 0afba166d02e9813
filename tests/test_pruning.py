"""prune-magnitude and prune-channels: sparsity, permanence, channel dependencies through residuals, depthwise convs,
concatenations and shuffles, the pruned function, ONNX export, fine-tuning, option errors, and a real run."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from benchharness_compress import pruning
from benchharness_compress.pruning import ChannelOptions, ChannelPruning, MagnitudeOptions, MagnitudePruning
from benchharness_torch import module_artifact
from benchharness_zoo.models import build_model
from pydantic import ValidationError

from benchharness.api import CompressionContext, DatasetInputs, InputSpec
from benchharness.cli import main
from benchharness.results import load_results

ARCHS = ("mobilenet_v2", "resnet", "shufflenet_v2", "squeezenet")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _zoo(arch: str, size: int = 32):
    torch.manual_seed(0)
    return build_model(arch, width=0.25, input_size=size, num_classes=10).eval()


def _artifact(model, size: int = 32, channels: int = 3):
    artifact = module_artifact(model, identity="test")
    artifact.inputs = [InputSpec(name="input", shape=[2, channels, size, size], dtype="float32")]
    return artifact


def _ctx(tmp_path: Path, loader=None) -> CompressionContext:
    return CompressionContext(base_dir=tmp_path, cache_dir=tmp_path, seed=0, model_label="m", dataset_loader=loader)


def _x(size: int = 32, channels: int = 3, n: int = 4):
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------- prune-magnitude


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_magnitude_pruning_reaches_the_amount_and_is_permanent(tmp_path, scope):
    model = _zoo("resnet")
    keys = list(model.state_dict())
    ctx = _ctx(tmp_path)
    out = MagnitudePruning().apply(_artifact(model), MagnitudeOptions(amount=0.3, scope=scope), ctx)
    pruned = out.obj
    layers = [m for m in pruned.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    weights = sum(m.weight.numel() for m in layers)
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    assert abs(zeros / weights - 0.3) < 1e-3
    assert ctx.facts["sparsity"] == pytest.approx(zeros / weights, abs=1e-6)
    assert ctx.facts["layers_pruned"] == len(layers) and ctx.facts["weights_pruned"] == weights
    params = list(pruned.parameters())
    all_zeros = sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params)
    assert ctx.facts["sparsity_all_parameters"] == pytest.approx(all_zeros, abs=1e-6) and all_zeros > 0.25
    if scope == "layer":  # each layer loses the amount, within one weight of rounding
        for m in layers:
            assert abs(int((m.weight == 0).sum()) - round(0.3 * m.weight.numel())) <= 1
    assert sorted(pruned.state_dict()) == sorted(keys)  # no weight_orig / weight_mask left
    assert not any(hasattr(m, "weight_mask") or m._forward_pre_hooks for m in layers)
    reloaded_path = tmp_path / "m.pt"
    torch.save(pruned, reloaded_path)
    again = torch.load(reloaded_path, weights_only=False)
    assert sum(int((m.weight == 0).sum()) for m in again.modules() if isinstance(m, torch.nn.Conv2d)) > 0


def test_global_scope_prunes_layers_unevenly_and_layer_scope_evenly(tmp_path):
    fractions = {}
    for scope in ("global", "layer"):
        pruned = (
            MagnitudePruning()
            .apply(_artifact(_zoo("mobilenet_v2")), MagnitudeOptions(amount=0.5, scope=scope), _ctx(tmp_path))
            .obj
        )
        convs = [m for m in pruned.modules() if isinstance(m, torch.nn.Conv2d)]
        fractions[scope] = [float((m.weight == 0).float().mean()) for m in convs]
    assert max(fractions["layer"]) - min(fractions["layer"]) < 0.05
    assert max(fractions["global"]) - min(fractions["global"]) > 0.2


# --------------------------------------------------------------------------- prune-channels


def _masked_copy(model, plan):
    """The unpruned model with the planned channels' producers zeroed: it must compute what the pruned one does."""
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for (name, role), indices in plan.items():
            module = masked.get_submodule(name)
            index = torch.tensor(sorted(indices))
            if role in ("out", "dw", "bn"):
                module.weight[index] = 0
                if module.bias is not None:
                    module.bias[index] = 0
    return masked


@pytest.mark.parametrize("arch", ARCHS)
def test_channel_pruning_removes_channels_and_computes_the_masked_function(arch):
    model = _zoo(arch)
    x = _x()
    params_before = sum(p.numel() for p in model.parameters())
    plan = pruning._plan(torch, model, pruning._analyse(torch, model, (x,)), 0.5)
    masked = _masked_copy(model, plan)
    pruning._cut(torch, model, plan)
    with torch.inference_mode():
        pruned_out, masked_out = model(x), masked(x)
    assert pruned_out.shape == (4, 10)
    # the pruned model is exactly the original with those channels silenced: the dependencies were followed
    np.testing.assert_allclose(pruned_out.numpy(), masked_out.numpy(), rtol=1e-4, atol=1e-4)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.groups > 1:
            assert module.groups == module.in_channels == module.out_channels == module.weight.shape[0]
        if isinstance(module, torch.nn.Conv2d):
            assert module.weight.shape[:2] == (module.out_channels, module.in_channels // module.groups)
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.weight.shape[0] == module.num_features == module.running_mean.shape[0]
    ratio = sum(p.numel() for p in model.parameters()) / params_before
    # half the channels on both sides of a conv leaves about a quarter of its weights; ShuffleNetV2's stage
    # channels are tied across its units by chunk and shuffle, so only its branch-internal channels go
    expected = (0.4, 0.6) if arch == "shufflenet_v2" else (0.2, 0.33)
    assert expected[0] < ratio < expected[1], ratio


def test_residual_additions_are_pruned_together():
    model = _zoo("resnet")
    pruning.prune_channels(model, (_x(),), 0.5)
    stage = [model.features[i] for i in (2, 3)]  # two identity-shortcut blocks of the first stage
    widths = {stage[0].body[1][0].out_channels, stage[1].body[1][0].out_channels, stage[1].body[0][0].in_channels}
    assert widths == {8}  # 16 channels at width 0.25, halved, one width through the addition
    assert stage[0].body[0][0].out_channels == 8  # the block's inner channels: their own group, halved


def test_fire_concat_and_shuffle_split_follow_the_pieces():
    squeeze = _zoo("squeezenet")
    pruning.prune_channels(squeeze, (_x(),), 0.5)
    fire = squeeze.features[3]
    following = squeeze.features[4]
    assert following.squeeze[0].in_channels == fire.expand1x1[0].out_channels + fire.expand3x3[0].out_channels
    assert fire.expand1x1[0].out_channels < 16
    shuffle = _zoo("shufflenet_v2")
    pruning.prune_channels(shuffle, (_x(),), 0.5)
    unit = shuffle.features[3]  # a stride-1 unit: half the channels pass, half go through the branch
    branch = unit.branch2
    assert branch[0][0].out_channels == branch[1][0].groups == branch[2][0].in_channels < 16
    assert branch[2][0].out_channels == branch[0][0].in_channels  # the two halves stay equal


def test_a_small_amount_changes_outputs_far_less_and_leaves_the_input_and_classes_alone():
    x = _x()
    changes = {}
    for amount in (0.02, 0.5):
        model = _zoo("mobilenet_v2")
        with torch.inference_mode():
            before = model(x)
        facts = pruning.prune_channels(model, (x,), amount)
        with torch.inference_mode():
            changes[amount] = float((model(x) - before).norm() / before.norm())
        assert model.features[0][0].in_channels == 3 and model.classifier.fc.out_features == 10
        if amount == 0.02:
            assert 0 < facts["channels_removed"] < 0.05 * facts["channels_before"]
    # random (calibrated) weights, so every channel matters a little: 2% of them moves the logits by a few %
    assert changes[0.02] < 0.3 and changes[0.02] < changes[0.5] / 3, changes


def test_a_hand_made_module_with_a_view_keeps_the_channels_the_view_touches():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8 * 8 * 8, 10)

        def forward(self, x):
            y = self.b(torch.relu(self.a(x)))
            return self.fc(y.view(y.shape[0], -1))

    net = Net().eval()
    facts = pruning.prune_channels(net, (torch.randn(2, 1, 8, 8),), 0.5)
    assert net.a.out_channels == 4 and net.b.in_channels == 4  # a's channels feed only a conv
    assert net.b.out_channels == 8 and net.fc.in_features == 512  # the view is opaque: b's channels stay
    assert facts["channels_removed"] == 4 and facts["parameters_after"] < facts["parameters_before"]


def test_channel_pruning_exports_to_onnx_and_matches_onnx_runtime(tmp_path):
    import onnxruntime as ort

    model = _zoo("shufflenet_v2")
    ctx = _ctx(tmp_path)
    out = ChannelPruning().apply(_artifact(model), ChannelOptions(amount=0.5), ctx)
    assert (
        ctx.facts["parameters_after"] < ctx.facts["parameters_before"]
        and ctx.facts["macs_after"] < ctx.facts["macs_before"]
    )
    path = tmp_path / "pruned.pt"
    torch.save(out.obj, path)
    restored = torch.load(path, weights_only=False).eval()
    x = _x()
    onnx_path = tmp_path / "pruned.onnx"
    torch.onnx.export(restored, (x,), onnx_path, dynamo=False, opset_version=17, input_names=["input"])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.inference_mode():
        want = restored(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)  # float32 kernels differ by rounding only
    import openvino as ov

    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(x.numpy())[0], want, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- fine-tuning and options


def _digits_loader(size: int):
    from benchharness_zoo.train import _fed

    def load(split):
        x, y = _fed(split, 3, size)
        return DatasetInputs(name="digits", inputs={"input": x}, labels=y, fed="input", info={"split": split})

    return load


def test_finetuning_recovers_train_accuracy_and_data_is_read_only_when_asked(tmp_path):
    reads = []
    loader = _digits_loader(32)

    def counting(split):
        reads.append(split)
        return loader(split)

    ctx = _ctx(tmp_path, counting)
    ChannelPruning().apply(_artifact(_zoo("resnet")), ChannelOptions(amount=0.5), ctx)
    assert reads == [] and "finetune_epochs" not in ctx.facts
    ctx = _ctx(tmp_path, counting)
    options = ChannelOptions(amount=0.5, finetune_epochs=2, lr=3e-3)
    ChannelPruning().apply(_artifact(_zoo("resnet")), options, ctx)
    assert reads == ["train"] and ctx.facts["finetune_epochs"] == 2 and ctx.facts["finetune_samples"] > 1000
    assert ctx.facts["train_top1_after_finetune"] > ctx.facts["train_top1_before_finetune"] + 20
    ctx = _ctx(tmp_path, loader)
    options = MagnitudeOptions(amount=0.6, finetune_epochs=1)
    pruned = MagnitudePruning().apply(_artifact(_zoo("resnet")), options, ctx).obj
    assert ctx.facts["sparsity"] == pytest.approx(0.6, abs=1e-3)  # the masks held while training
    assert ctx.facts["train_top1_after_finetune"] > ctx.facts["train_top1_before_finetune"]
    assert all(not hasattr(m, "weight_orig") for m in pruned.modules())


@pytest.mark.parametrize(
    ("cls", "options", "field"),
    [
        (MagnitudeOptions, {"amount": 1.5}, "amount"),
        (MagnitudeOptions, {"scope": "row"}, "scope"),
        (ChannelOptions, {"amount": 0}, "amount"),
        (ChannelOptions, {"finetune_epochs": -1}, "finetune_epochs"),
    ],
)
def test_bad_options_are_refused(cls, options, field):
    with pytest.raises(ValidationError) as info:
        cls(**options)
    assert info.value.errors()[0]["loc"] == (field,)


def test_bad_options_in_a_suite_are_one_line_errors(write_suite, capsys):
    suite = write_suite(
        """
        name: s
        models: [{source: zoo, arch: resnet, width: 0.25, input_size: 16, num_classes: 10}]
        compressions: [{name: prune-channels, amount: 1.5}, {name: prune-magnitude, scope: row}]
        backends: [{name: torch}]
        """
    )
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "amount" in err and "less than 1" in err and "scope" in err and "'global' or 'layer'" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- end to end

VALIDATE = """
import sys
from benchharness.cli import main
code = main(["validate", sys.argv[1]])
print("HEAVY", sorted(m for m in ("torch", "numpy", "onnxruntime") if m in sys.modules), "CODE", code)
"""


def test_validating_a_pruning_suite_imports_no_framework(write_suite):
    suite = write_suite(
        """
        name: s
        models: [{source: zoo, arch: resnet, width: 0.25, input_size: 32, num_classes: 10}]
        compressions: [none, {name: prune-channels, amount: 0.5}, {name: prune-magnitude, scope: layer}]
        backends: [{name: torch}, {name: onnxruntime}]
        """
    )
    proc = subprocess.run([sys.executable, "-c", VALIDATE, str(suite)], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] CODE 0" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.timeout(1200)  # the zoo model trains on digits here when no earlier test did: minutes on shared cores
def test_a_run_with_channel_pruning_records_the_facts(write_suite, tmp_path):
    suite = write_suite(
        """
        name: prune
        models:
          - {source: zoo, arch: resnet, width: 0.25, depth: 0.5, input_size: 32, num_classes: 10, weights: digits,
             dataset: {name: digits}}
        compressions: [none, {name: prune-channels, amount: 0.5}]
        backends: [{name: onnxruntime, threads: 1}]
        metrics: [latency, accuracy, parameters]
        measure: {min_samples: 5, max_time: 0.05, warmup: {max_time: 0.02, min_iterations: 2}}
        """
    )
    out = tmp_path / "out"
    # In this process (inline): the facts pruning records are checked, not worker isolation; a worker per case
    # imported torch and onnxruntime again each time
    assert main(["run", str(suite), "-o", str(out), "-q", "--launcher", "inline"]) == 0
    cases = {c.case_id.split("/")[1]: c for c in load_results(next(out.glob("*.json"))).cases}
    base, pruned = cases["none"], cases["prune-channels"]
    assert base.status == pruned.status == "ok", (base.error, pruned.error)
    (step,) = pruned.runtime.model.info["compressions"]
    assert step["name"] == "prune-channels" and step["channels_removed"] > 0
    assert step["parameters_after"] < 0.4 * step["parameters_before"]
    # the parameters metric counts the exported ONNX graph (BatchNorm folded away): the same drop
    assert pruned.metrics["parameters"].value < 0.3 * base.metrics["parameters"].value
    assert 0 <= pruned.metrics["accuracy"].value <= base.metrics["accuracy"].value  # no fine-tuning: no gain
    assert json.dumps(step)  # JSON-safe
