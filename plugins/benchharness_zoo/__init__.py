"""Built-in model zoo: small lightweight architectures written in this project (no torchvision).

MobileNetV2-style inverted residuals, ShuffleNetV2-style units, SqueezeNet-style
fire modules and a plain ResNet-style baseline, each with width and depth
multipliers, input size, class count and activation as options.  Weights are
random but reproducible from the case seed (``weights: random``, for speed, size
and design comparisons: depth vs width, activation, block type), or trained on
scikit-learn's handwritten digits (``weights: digits``, for real accuracy):
trained on first use by :mod:`benchharness_zoo.train`, seeded, and cached.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, model_validator

from benchharness.api import ModelArtifact, ModelContext, ModelSignature, ModelSource, Options, TensorSpec
from benchharness.hookspecs import hookimpl

# Kept here, not imported from .models, so validating a suite never imports torch;
# a test checks they match models.ARCHITECTURES and models.ACTIVATIONS.
ARCH_NAMES = ("mobilenet_v2", "shufflenet_v2", "squeezenet", "resnet")
ACTIVATION_NAMES = ("relu", "leaky_relu", "swish", "hardswish")


class ZooOptions(Options):
    """Options of the ``zoo`` model source."""

    arch: Literal[ARCH_NAMES] = Field(description="Architecture.")  # type: ignore[valid-type]
    width: PositiveFloat = Field(1.0, description="Channel multiplier.")
    depth: PositiveFloat = Field(1.0, description="Multiplier of blocks per stage.")
    input_size: PositiveInt = Field(224, description="Height and width of the square input.")
    num_classes: PositiveInt = 1000
    in_channels: PositiveInt = 3
    activation: Literal[ACTIVATION_NAMES] = "relu"  # type: ignore[valid-type]
    weights: Literal["random", "digits"] = Field(
        "random",
        description="random: drawn from the case seed; digits: trained on the digits training split on first use "
        "(seeded, cached; needs num_classes 10 and scikit-learn).",
    )

    @model_validator(mode="after")
    def _digits_have_ten_classes(self) -> ZooOptions:
        if self.weights == "digits" and self.num_classes != 10:
            raise ValueError(f"weights 'digits' train 10 classes; set num_classes: 10, not {self.num_classes}")
        return self


def build_kwargs(options: ZooOptions) -> dict[str, Any]:
    """The keyword arguments of ``benchharness_zoo.models.build_model`` that ``options`` give, besides ``arch``."""
    return options.model_dump(include={"width", "depth", "input_size", "num_classes", "activation", "in_channels"})


class ZooSource(ModelSource):
    """Models of the built-in zoo, built from code with seeded weights."""

    name = "zoo"
    description = f"built-in lightweight architectures: {', '.join(ARCH_NAMES)}"
    requires = ("torch",)
    install_hint = "pip install torch  (or: pip install 'benchharness[torch]')"
    produces = "torch"
    Options: ClassVar[type[BaseModel]] = ZooOptions

    def default_name(self, options: ZooOptions) -> str:  # type: ignore[override]
        """The architecture, plus whichever of width, depth and activation differ from the defaults."""
        name = options.arch
        if options.width != 1.0:
            name += f"-w{options.width:g}"
        if options.depth != 1.0:
            name += f"-d{options.depth:g}"
        if options.activation != "relu":
            name += f"-{options.activation}"
        return name

    def describe(self, options: ZooOptions, ctx: ModelContext) -> ModelSignature:  # type: ignore[override]
        """One NCHW float input named ``input`` and the class logits, from the options alone."""
        size = options.input_size
        return ModelSignature(
            format="torch",
            inputs=[TensorSpec(name="input", shape=["batch", options.in_channels, size, size], dtype="float32")],
            outputs=[TensorSpec(name="output0", shape=["batch", options.num_classes], dtype="float32")],
        )

    def load(self, options: ZooOptions, ctx: ModelContext) -> ModelArtifact:  # type: ignore[override]
        """Build the model with weights drawn from the case seed, or trained on digits (cached)."""
        import torch
        from benchharness_torch import module_artifact

        from benchharness_zoo.models import build_model

        torch.manual_seed(ctx.seed)
        module = build_model(options.arch, **build_kwargs(options))
        training = None
        if options.weights == "digits":
            from benchharness_zoo.train import digits_weights

            state, training = digits_weights(options, ctx)
            module.load_state_dict(state)
            module.eval()
        artifact = module_artifact(module, identity=f"zoo:{options.model_dump_json()}:seed={ctx.seed}")
        if training is not None:
            artifact.info["training"] = training
        return artifact


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    """Register the zoo."""
    register(ZooSource)
