"""The ``fuse`` compression: conv-BatchNorm pairs folded (zoo architectures, residual and branching blocks),
outputs kept within float rounding, parameters dropped by the BatchNorms', torch.save and ONNX export kept."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from benchharness_compress.fusion import Fuse, FuseOptions, fold_batchnorms
from benchharness_zoo.models import build_model

from benchharness.api import CompressionContext

BATCHNORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _zoo(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(arch, width=0.25, depth=0.25, input_size=32, num_classes=10, in_channels=1)


def _outputs(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return module.eval()(x)


def _fuse(module: torch.nn.Module, tmp_path: Path, **options: object):
    from benchharness_torch import module_artifact

    ctx = CompressionContext(base_dir=tmp_path, cache_dir=tmp_path, seed=0)
    artifact = Fuse().apply(module_artifact(module, identity="test"), FuseOptions(**options), ctx)
    return artifact, ctx.facts


@pytest.mark.parametrize("arch", ["mobilenet_v2", "shufflenet_v2", "resnet"])
def test_every_batchnorm_of_a_zoo_model_is_folded_and_outputs_keep_within_rounding(arch, tmp_path):
    model = _zoo(arch)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns  # the zoo's conv-bn blocks
    bn_parameters = sum(m.weight.numel() + m.bias.numel() for m in bns)
    # the zoo's convs before a BatchNorm have no bias; folding gives them one per output channel
    added_biases = sum(m.num_features for m in bns)
    before = sum(p.numel() for p in model.parameters())
    x = torch.randn(8, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = _outputs(model, x)
    fused, facts = _fuse(model, tmp_path)
    assert facts["conv_bn_folded"] == len(bns) and facts["method"] == "fx" and facts["batchnorms_left"] == 0
    assert not any(isinstance(m, BATCHNORMS) for m in fused.obj.modules())
    after = sum(p.numel() for p in fused.obj.parameters())
    assert after == before - bn_parameters + added_biases == fused.info["parameters"]
    assert facts["parameters_removed"] == bn_parameters - added_biases
    got = _outputs(fused.obj, x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    # the input module is left as it was
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == len(bns)


def test_squeezenet_has_no_batchnorm_and_is_left_alone(tmp_path):
    model = _zoo("squeezenet")
    fused, facts = _fuse(model, tmp_path)
    assert facts["conv_bn_folded"] == 0 and facts["parameters_removed"] == 0
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(_outputs(fused.obj, x), _outputs(model, x), rtol=0, atol=0)


def test_a_batchnorm_after_an_addition_or_a_shared_conv_stays(tmp_path):
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Conv2d(2, 4, 1)
            self.after_sum, self.bn = torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
            self.c, self.bn_c = torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.after_sum(self.a(x) + self.b(x))
            z = self.c(y)  # c's output feeds its BatchNorm and the sum: folding would change the sum
            return self.bn_c(z) + z + self.bn(self.b(x))

    model = Odd().eval()
    for bn in (model.after_sum, model.bn, model.bn_c):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 2, 8, 8)
    fused, facts = _fuse(model, tmp_path)
    assert facts["conv_bn_folded"] == 0 and facts["batchnorms_left"] == 3  # b is called twice: not folded either
    torch.testing.assert_close(_outputs(fused.obj, x), _outputs(model, x))


def test_an_untraceable_module_falls_back_to_sequential_pairs(tmp_path):
    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x) if float(x.sum()) > 0 else -self.body(x)  # data-dependent: fx cannot trace it

    model = Branchy().eval()
    model.body[1].running_mean.uniform_(-1, 1)
    x = torch.rand(2, 1, 8, 8)
    fused, facts = _fuse(model, tmp_path)
    assert facts["method"] == "sequential" and facts["conv_bn_folded"] == 1
    assert isinstance(fused.obj.body[1], torch.nn.Identity)
    torch.testing.assert_close(_outputs(fused.obj, x), _outputs(model, x), rtol=1e-4, atol=1e-5)


def test_the_fused_module_survives_torch_save_and_onnx_export(tmp_path):
    import onnxruntime as ort

    model = _zoo("mobilenet_v2")
    fused, facts = _fuse(model, tmp_path, channels_last=True)
    assert facts["channels_last"] is True
    conv = next(m for m in fused.obj.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    folder = tmp_path / "saved"
    folder.mkdir()
    restored = Fuse().restore(Fuse().save(fused, folder), "torch", {})
    assert restored.info["parameters"] == fused.info["parameters"]
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    expected = _outputs(model, x)
    torch.testing.assert_close(_outputs(restored.obj, x), _outputs(fused.obj, x), rtol=0, atol=0)
    buffer = io.BytesIO()
    torch.onnx.export(restored.obj, (x,), buffer, dynamo=False, opset_version=17, input_names=["input"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_fold_batchnorms_counts_what_it_folds():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, bias=True), torch.nn.BatchNorm2d(3)).eval()
    model[1].running_var.fill_(4.0)
    copy_ = copy.deepcopy(model)
    assert fold_batchnorms(copy_) == (1, "fx")
    x = torch.randn(1, 1, 5, 5)
    torch.testing.assert_close(_outputs(copy_, x), _outputs(model, x))
    assert float(copy_[0].weight.detach().abs().sum()) == pytest.approx(
        float(model[0].weight.detach().abs().sum()) / 2, rel=1e-4
    )


def test_a_run_fuses_once_and_the_fused_variant_agrees_with_the_model_on_both_backends(write_suite, tmp_path):
    from benchharness.cli import main
    from benchharness.results import load_results

    suite = write_suite(
        """
        name: fuse
        models: [{source: zoo, arch: resnet, width: 0.125, depth: 0.25, input_size: 32, num_classes: 10}]
        compressions: [none, {name: fuse, channels_last: true}]
        backends: [{name: torch, threads: 1}, {name: onnxruntime, threads: 1}]
        metrics: [latency, fidelity, parameters]
        measure: {min_samples: 5, max_time: 0.05, warmup: {max_time: 0.02, min_iterations: 2}}
        """
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q", "--launcher", "inline"]) == 0
    cases = {c.case_id: c for c in load_results(next(out.glob("*.json"))).cases}
    assert len(cases) == 4 and all(c.status == "ok" for c in cases.values()), [c.error for c in cases.values()]
    fused = [c for c in cases.values() if "/none/" not in c.case_id]
    steps = [c.runtime.model.info["compressions"][0] for c in fused]
    assert sorted(s["cache_hit"] for s in steps) == [False, True]  # fused once for the two backends
    assert {s["conv_bn_folded"] for s in steps} == {12} and {s["batchnorms_left"] for s in steps} == {0}
    assert all(s["channels_last"] for s in steps)
    base = cases["resnet-w0.125-d0.25/none/torch/cpu/latency/b1"]
    for case in fused:
        if "/torch/" in case.case_id:  # the torch module's parameters, without the BatchNorms'
            removed = steps[0]["parameters_removed"]
            assert case.metrics["parameters"].details["count"] == base.metrics["parameters"].details["count"] - removed
        details = case.metrics["fidelity"].details
        assert case.metrics["fidelity"].value == 100.0 and details["mean_rel_diff"] < 1e-4, details
