"""Knowledge distillation: a smaller zoo student trained from the teacher's soft targets (Hinton et al., 2015).

The student is a zoo model (:mod:`benchharness_zoo.models`) whose input size,
channels and class count come from the teacher.  It is trained on the model's
dataset, training split (``ctx.dataset("train")``), with the zoo's digits
recipe (:data:`benchharness_zoo.train.RECIPE`: AdamW, one-cycle schedule,
random shifts, gradient clipping, whole batches only) and the loss::

    alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

With ``compare_alone`` the same student is also trained alone (``alpha = 0``:
the same initial weights, batches, shifts and epochs), and the test-split top-1
of the teacher, the distilled student and the student alone are recorded, so a
suite shows whether distillation helped.  torch is imported inside functions.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from benchharness_torch import TorchCompression
from benchharness_zoo import ACTIVATION_NAMES, ARCH_NAMES
from benchharness_zoo.train import RECIPE
from pydantic import BaseModel, Field, PositiveFloat

from benchharness.api import BenchError, CompressionContext, CompressionOptions, ModelArtifact, Options


class StudentOptions(Options):
    """The student's zoo architecture; its input size, channels and classes are the teacher's."""

    arch: Literal[ARCH_NAMES] = Field(description="Zoo architecture of the student.")  # type: ignore[valid-type]
    width: PositiveFloat = Field(1.0, description="Channel multiplier.")
    depth: PositiveFloat = Field(1.0, description="Multiplier of blocks per stage.")
    activation: Literal[ACTIVATION_NAMES] = Field("relu", description="Activation.")  # type: ignore[valid-type]


class DistillOptions(CompressionOptions):
    """Options of the ``distill`` compression."""

    student: StudentOptions = Field(description="The student: {arch, width, depth, activation}, as the zoo takes them.")
    temperature: float = Field(4.0, gt=0, le=100, description="Softmax temperature T of the soft targets, in (0, 100].")
    alpha: float = Field(
        0.7, ge=0, le=1, description="Weight of the soft-target term, in [0, 1]; 1 - alpha weighs the labels' CE."
    )
    epochs: int | None = Field(
        None, ge=1, le=500, description="Training epochs; default: the zoo recipe's for the student's arch."
    )
    lr: float = Field(RECIPE.lr, gt=0, le=1, description="Peak learning rate of the one-cycle schedule (AdamW).")
    batch_size: int = Field(RECIPE.batch_size, ge=2, le=4096, description="Samples per step (whole batches only).")
    compare_alone: bool = Field(
        True, description="Also train the same student alone (alpha 0) and record both test-split accuracies."
    )


def distillation_loss(
    torch: Any, student: Any, teacher: Any | None, labels: Any, alpha: float, temperature: float
) -> Any:
    """Hinton et al.'s loss: ``alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student, labels)``.

    ``teacher`` may be ``None`` when ``alpha`` is 0 (the student alone).
    """
    functional = torch.nn.functional
    loss = functional.cross_entropy(student, labels) * (1.0 - alpha) if alpha < 1 else 0.0
    if alpha > 0:
        soft = functional.kl_div(
            functional.log_softmax(student / temperature, dim=1),
            functional.log_softmax(teacher / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        loss = loss + alpha * temperature**2 * soft
    return loss


def fit_student(
    student: Any,
    teacher: Any,
    images: Any,
    labels: Any,
    *,
    alpha: float,
    temperature: float,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> float:
    """Train ``student`` in place on ``images`` (float NCHW tensor) and ``labels``; return the last epoch's mean loss.

    The zoo's recipe (weight decay, shifts, clipping) with the given epochs, lr
    and batch size.  The batches and shifts come from a generator seeded with
    ``seed`` alone, so the student trained alone and the distilled one see the
    same data in the same order.  The teacher runs in eval mode, without gradients.
    """
    import torch
    from benchharness_zoo.train import _shifted

    steps_per_epoch = len(images) // batch_size
    if steps_per_epoch < 1:
        raise BenchError(f"distill: batch_size {batch_size} is larger than the {len(images)} training samples")
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=RECIPE.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    teacher.eval()
    student.train()
    mean = float("nan")
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        shifted = _shifted(torch, images, RECIPE.shift, generator) if RECIPE.shift else images
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            batch = shifted[index]
            target = None
            if alpha > 0:
                with torch.no_grad():
                    target = teacher(batch)
            loss = distillation_loss(torch, student(batch), target, labels[index], alpha, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), RECIPE.clip)
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        mean = total / steps_per_epoch
    student.eval()
    return mean


def logits(module: Any, images: Any) -> Any:
    """``module``'s outputs on ``images`` in eval mode, in chunks of 256."""
    import torch

    module.eval()
    with torch.inference_mode():
        return torch.cat([module(chunk) for chunk in images.split(256)])


def top1(module: Any, images: Any, labels: Any) -> float:
    """Top-1 accuracy (%) of ``module`` on ``images``, rounded to 3 decimals."""
    predicted = logits(module, images).argmax(1)
    return round(100.0 * float((predicted == labels).float().mean()), 3)


def soft_kl(student: Any, teacher: Any, images: Any, temperature: float) -> float:
    """Mean KL(softmax(teacher / T) || softmax(student / T)) over ``images``: the student's distance to the teacher."""
    import torch

    functional = torch.nn.functional
    return float(
        functional.kl_div(
            functional.log_softmax(logits(student, images) / temperature, dim=1),
            functional.log_softmax(logits(teacher, images) / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
    )


def build_student(options: StudentOptions, input_shape: list[Any], num_classes: int, seed: int) -> Any:
    """The zoo student for an input of shape ``[batch, C, H, H]``, its weights drawn from ``seed``."""
    import torch
    from benchharness_zoo.models import build_model

    if len(input_shape) != 4 or input_shape[2] != input_shape[3]:
        raise BenchError(f"distill: the teacher's input must be square NCHW for a zoo student, got {input_shape}")
    channels, height = int(input_shape[1]), int(input_shape[2])
    torch.manual_seed(seed)
    try:
        return build_model(
            options.arch,
            width=options.width,
            depth=options.depth,
            input_size=height,
            num_classes=num_classes,
            activation=options.activation,
            in_channels=channels,
        )
    except ValueError as exc:
        raise BenchError(f"distill: student: {exc}") from None


class Distill(TorchCompression):
    """Trains a smaller zoo student from the teacher's soft targets on the model's training split.

    Options: ``student`` ({arch, width, depth, activation}), ``temperature``
    (default 4), ``alpha`` (default 0.7), ``epochs`` (default: the zoo recipe's),
    ``lr``, ``batch_size``, ``compare_alone`` (default true).  Records the
    student's architecture and parameters, the teacher's, the final loss, and on
    the dataset's test split the top-1 of the teacher, the distilled student and
    (``compare_alone``) the student trained alone, plus the KL to the teacher of
    each.  Limits: the teacher must be a torch module with one square NCHW input
    whose output is the class logits; training runs on one torch thread (for
    determinism), so a large student on a large input takes minutes.
    """

    name = "distill"
    description = "knowledge distillation into a smaller zoo student (Hinton soft targets)"
    Options: ClassVar[type[BaseModel]] = DistillOptions
    uses_dataset = True

    def apply(self, artifact: ModelArtifact, options: DistillOptions, ctx: CompressionContext) -> ModelArtifact:  # type: ignore[override]
        """Train the student (and, with ``compare_alone``, the student alone) and return the distilled one."""
        import time

        import torch
        from benchharness_torch import module_artifact

        teacher = artifact.obj
        if not artifact.inputs:
            raise BenchError("distill: the teacher has no input spec")
        train = ctx.dataset("train")
        images = torch.from_numpy(train.inputs[train.fed]).float()
        labels = torch.from_numpy(train.labels).long()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            num_classes = int(logits(teacher, images[:2]).shape[1])
            if int(labels.max()) >= num_classes:
                raise BenchError(
                    f"distill: the data has labels up to {int(labels.max())} but the teacher gives {num_classes} "
                    "outputs"
                )
            epochs = options.epochs or RECIPE.epochs_for(options.student.arch)
            fit = {
                "temperature": options.temperature,
                "epochs": epochs,
                "lr": options.lr,
                "batch_size": options.batch_size,
                "seed": ctx.seed,
            }
            started = time.perf_counter()
            student = build_student(options.student, artifact.inputs[0].shape, num_classes, ctx.seed)
            loss = fit_student(student, teacher, images, labels, alpha=options.alpha, **fit)
            seconds = time.perf_counter() - started
            alone = None
            if options.compare_alone:
                alone = build_student(options.student, artifact.inputs[0].shape, num_classes, ctx.seed)
                fit_student(alone, teacher, images, labels, alpha=0.0, **fit)
            facts: dict[str, Any] = {
                "student": options.student.model_dump(),
                "student_parameters": sum(p.numel() for p in student.parameters()),
                "teacher_parameters": sum(p.numel() for p in teacher.parameters()),
                "alpha": options.alpha,
                "temperature": options.temperature,
                "epochs": epochs,
                "train_samples": len(labels),
                "final_loss": round(loss, 6),
                "train_seconds": round(seconds, 2),
                "threads": 1,
            }
            facts.update(self._scores(teacher, student, alone, options.temperature, ctx))
        finally:
            torch.set_num_threads(threads)
        ctx.record(**facts)
        identity = f"distill:{artifact.content_hash}:{options.model_dump_json()}:seed={ctx.seed}"
        return module_artifact(student, identity=identity)

    @staticmethod
    def _scores(teacher: Any, student: Any, alone: Any | None, temperature: float, ctx: CompressionContext) -> dict:
        """Test-split top-1 and KL to the teacher of each model, or why there are none."""
        import torch

        try:
            test = ctx.dataset("test")
        except BenchError as exc:
            return {"accuracy_skipped": str(exc)}
        images = torch.from_numpy(test.inputs[test.fed]).float()
        labels = torch.from_numpy(test.labels).long()
        scores: dict[str, Any] = {
            "accuracy_split": "test",
            "test_samples": len(labels),
            "teacher_top1": top1(teacher, images, labels),
            "student_top1": top1(student, images, labels),
            "student_kl_to_teacher": round(soft_kl(student, teacher, images, temperature), 6),
        }
        if alone is not None:
            scores["alone_top1"] = top1(alone, images, labels)
            scores["alone_kl_to_teacher"] = round(soft_kl(alone, teacher, images, temperature), 6)
            scores["top1_gain"] = round(scores["student_top1"] - scores["alone_top1"], 3)
        return scores


COMPRESSIONS = (Distill,)
