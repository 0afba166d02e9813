"""The ``distill`` compression: a smaller zoo student trained from the teacher's soft targets on the training
split, the student alone for comparison, option errors as one line, and one distillation per model in a run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from benchharness_compress.distillation import (
    Distill,
    DistillOptions,
    build_student,
    distillation_loss,
    fit_student,
    soft_kl,
)
from benchharness_torch import module_artifact
from benchharness_zoo.models import ResNet, build_model

from benchharness.api import CompressionContext, DatasetInputs, InputSpec
from benchharness.cli import main
from benchharness.results import load_results

SIZE = 32  # the zoo's smallest input for resnet and mobilenet_v2 (their total stride)
STUDENT = {"arch": "resnet", "width": 0.125, "depth": 0.25}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _digits(split: str | None, train_limit: int = 320) -> DatasetInputs:
    """The digits split fed at 32x32, one channel; the training split cut to ``train_limit`` samples for speed."""
    from benchharness_zoo.train import _fed

    images, labels = _fed(split or "test", 1, SIZE)
    if split == "train":
        images, labels = images[:train_limit], labels[:train_limit]
    return DatasetInputs(name="digits", inputs={"input": images}, labels=labels, fed="input", info={"split": split})


def _teacher(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet", width=0.25, depth=0.25, input_size=SIZE, num_classes=10, in_channels=1)


def _distill(tmp_path: Path, teacher: torch.nn.Module, **options: object):
    artifact = module_artifact(teacher, identity="teacher")
    artifact.inputs = [InputSpec(name="input", shape=[1, 1, SIZE, SIZE], dtype="float32")]
    ctx = CompressionContext(base_dir=tmp_path, cache_dir=tmp_path, seed=0, model_label="t", dataset_loader=_digits)
    out = Distill().apply(artifact, DistillOptions(**{"student": STUDENT, "epochs": 1, **options}), ctx)
    return out, ctx.facts


def test_the_student_has_the_asked_architecture_and_both_accuracies_are_recorded(tmp_path):
    teacher = _teacher()
    student, facts = _distill(tmp_path, teacher)
    assert isinstance(student.obj, ResNet)
    assert student.obj.features[0][0].out_channels == 8  # width 0.125 of resnet's 64 stem channels
    assert facts["student_parameters"] == student.info["parameters"] < facts["teacher_parameters"] / 3
    with torch.inference_mode():
        assert student.obj(torch.zeros(3, 1, SIZE, SIZE)).shape == (3, 10)
    assert facts["accuracy_split"] == "test" and facts["test_samples"] == 450 and facts["train_samples"] == 320
    assert facts["student"] == {**STUDENT, "activation": "relu"} and facts["epochs"] == 1
    for key in ("teacher_top1", "student_top1", "alone_top1"):
        assert 0 <= facts[key] <= 100
    assert facts["top1_gain"] == pytest.approx(facts["student_top1"] - facts["alone_top1"], abs=1e-3)
    assert facts["student_kl_to_teacher"] >= 0 and facts["alone_kl_to_teacher"] >= 0
    # without compare_alone only the distilled student is trained and scored
    _, without = _distill(tmp_path, teacher, compare_alone=False)
    assert "alone_top1" not in without and without["student_top1"] == facts["student_top1"]  # seeded: the same


def test_with_alpha_1_the_student_moves_towards_the_teachers_soft_targets():
    data = _digits("train", train_limit=2000)
    images, labels = torch.from_numpy(data.inputs["input"]), torch.from_numpy(data.labels).long()
    teacher = _teacher().eval()
    student = build_student(DistillOptions(student=STUDENT).student, [1, 1, SIZE, SIZE], 10, seed=0)
    before = soft_kl(student, teacher, images[:300], 4.0)
    fit_student(student, teacher, images, labels, alpha=1.0, temperature=4.0, epochs=2, lr=4e-3, batch_size=64, seed=0)
    after = soft_kl(student, teacher, images[:300], 4.0)
    assert after < 0.5 * before, (before, after)


def test_alone_the_teacher_is_ignored_and_distilled_it_is_not():
    data = _digits("train")
    images, labels = torch.from_numpy(data.inputs["input"])[:256], torch.from_numpy(data.labels).long()[:256]
    fit = {"temperature": 4.0, "epochs": 1, "lr": 4e-3, "batch_size": 64, "seed": 3}

    def trained(teacher: torch.nn.Module, alpha: float) -> torch.Tensor:
        student = build_student(DistillOptions(student=STUDENT).student, [1, 1, SIZE, SIZE], 10, seed=3)
        fit_student(student, teacher, images, labels, alpha=alpha, **fit)
        return torch.cat([p.detach().reshape(-1) for p in student.parameters()])

    one, other = _teacher(1), _teacher(2)
    assert torch.equal(trained(one, 0.0), trained(other, 0.0))  # same batches, same shifts, same start
    assert not torch.equal(trained(one, 0.5), trained(other, 0.5))


def test_the_loss_is_hintons():
    student = torch.tensor([[2.0, 0.0, -1.0]])
    teacher = torch.tensor([[1.0, 1.0, 0.0]])
    labels = torch.tensor([0])
    t, alpha = 2.0, 0.25
    p = torch.softmax(teacher / t, 1)
    kl = float((p * (p.log() - torch.log_softmax(student / t, 1))).sum())
    ce = float(torch.nn.functional.cross_entropy(student, labels))
    assert float(distillation_loss(torch, student, teacher, labels, alpha, t)) == pytest.approx(
        alpha * t * t * kl + (1 - alpha) * ce, rel=1e-6
    )
    assert float(distillation_loss(torch, student, None, labels, 0.0, t)) == pytest.approx(ce, rel=1e-6)


#: The teacher is test_digits's model (and test_pruning's and test_quantization's): trained once per test session.
SUITE = """
name: distill
models:
  - {source: zoo, arch: resnet, width: 0.25, depth: 0.5, input_size: 32, num_classes: 10, weights: digits,
     dataset: {name: digits}}
compressions: [none, {name: distill, student: {arch: squeezenet, width: 0.125, depth: 0.25}, epochs: 1%s}]
backends: [{name: torch, threads: 1}, {name: onnxruntime, threads: 1}]
batch_sizes: [1, 2]
metrics: [latency, accuracy]
measure: {min_samples: 5, max_time: 0.05, warmup: {max_time: 0.02, min_iterations: 2}}
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("epochs: 1", "epochs: 1, temperature: 0", "temperature: Input should be greater than 0"),
        ("epochs: 1", "epochs: 1, alpha: 1.5", "alpha: Input should be less than or equal to 1"),
        ("student: {arch: squeezenet", "student: {arch: vgg", "student.arch: Input should be"),
        ("epochs: 1", "epochs: 0", "epochs: Input should be greater than or equal to 1"),
    ],
)
def test_bad_options_are_one_line_errors(write_suite, capsys, old, new, message):
    suite = write_suite((SUITE % "").replace(old, new))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_a_run_distills_once_for_two_backends_and_two_batch_sizes(write_suite, tmp_path):
    suite = write_suite(SUITE % ", compare_alone: false")
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q", "--launcher", "inline"]) == 0
    cases = {c.case_id: c for c in load_results(next(out.glob("*.json"))).cases}
    distilled = [c for c in cases.values() if "/distill/" in c.case_id]
    assert len(cases) == 8 and len(distilled) == 4
    assert all(c.status == "ok" for c in cases.values()), [c.error for c in cases.values()]
    steps = [c.runtime.model.info["compressions"][0] for c in distilled]
    assert sorted(s["cache_hit"] for s in steps) == [False, True, True, True]  # trained once, restored three times
    assert len({s["student_top1"] for s in steps}) == 1 and all(s["name"] == "distill" for s in steps)
    assert len({c.runtime.model.content_hash for c in distilled if c.case_id.split("/")[2] == "torch"}) == 1
    for case in distilled:
        base = cases[case.case_id.replace("/distill/", "/none/")]
        assert case.runtime.model.info["parameters"] < base.runtime.model.info["parameters"]
        assert 0 <= case.metrics["accuracy"].value <= 100
    # the harness's accuracy metric scores the same test split the compression recorded
    torch_b1 = cases["resnet-w0.25-d0.5/distill/torch/cpu/latency/b1"]
    assert torch_b1.metrics["accuracy"].value == pytest.approx(steps[0]["student_top1"], abs=0.01)


def test_a_student_that_does_not_fit_the_teachers_input_is_a_one_line_error():
    from benchharness.api import BenchError

    options = DistillOptions(student=STUDENT).student
    with pytest.raises(
        BenchError, match=r"^distill: student: input_size 16 is too small for resnet: the minimum is 32"
    ):
        build_student(options, [1, 1, 16, 16], 10, seed=0)
    with pytest.raises(BenchError, match=r"must be square NCHW for a zoo student, got \[1, 64\]"):
        build_student(options, [1, 64], 10, seed=0)
