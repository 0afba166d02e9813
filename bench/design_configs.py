"""The configurations of suites/design.yaml, with their parameters and MACs derived from the zoo's own code.

The design suite asks three questions, each over zoo models trained on digits
(32x32 input, one channel, 10 classes):

1. ``width-depth``: wide-shallow against narrow-deep ResNets whose parameter
   counts match within :data:`TOLERANCES` (10%);
2. ``activation``: one MobileNetV2 with each of the zoo's activations (same
   parameters and MACs: activations are free in both counts);
3. ``blocks``: the four block families (MobileNetV2 inverted residuals,
   ShuffleNetV2 units, SqueezeNet fire modules, ResNet basic blocks) at MACs
   within 15% of the ResNet's.

Parameters are counted from the built torch modules, MACs with the project's
``macs`` metric (``benchharness_metrics.macs.count_torch_module``: the ONNX
export the ``torch-onnx`` converter makes, counted node by node), at batch 1.
Widths snap channel counts to multiples of 8, so the counts move in steps and
the widths below (0.17, 0.5625) are the ones that land inside the tolerances.

Run it to print the table and check the tolerances and the suite::

    python bench/design_configs.py                 # markdown table; exit 1 if a tolerance is broken
    python bench/design_configs.py --check-suite suites/design.yaml

``tests/test_design_suite.py`` runs the same checks, so the suite cannot drift
from these configurations unnoticed.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Options every design model shares: how digits are fed and what the model is trained for.
COMMON: dict[str, Any] = {"input_size": 32, "in_channels": 1, "num_classes": 10, "weights": "digits"}


@dataclass(frozen=True)
class Config:
    """One zoo model of the design suite: the options that vary between the suite's models."""

    arch: str
    width: float
    depth: float = 1.0
    activation: str = "relu"

    @property
    def label(self) -> str:
        """The model's label in case ids (the zoo's default name for these options)."""
        from benchharness_zoo import ZooOptions, ZooSource

        return ZooSource().default_name(ZooOptions(arch=self.arch, **self.options()))

    def options(self) -> dict[str, Any]:
        """The zoo options of this model, besides ``arch``."""
        return {"width": self.width, "depth": self.depth, "activation": self.activation, **COMMON}


#: The questions, in the guide's order, and their models; the first model of a question is its reference
#: (ratios of latency are quoted against it).
QUESTIONS: dict[str, tuple[Config, ...]] = {
    "width-depth": (
        Config("resnet", 0.25, 1.0),
        Config("resnet", 0.375, 0.5),
        Config("resnet", 0.17, 2.0),
    ),
    "activation": tuple(
        Config("mobilenet_v2", 0.55, activation=activation)
        for activation in ("relu", "leaky_relu", "swish", "hardswish")
    ),
    "blocks": (
        Config("resnet", 0.25, 1.0),
        Config("mobilenet_v2", 0.55),
        Config("shufflenet_v2", 0.9),
        Config("squeezenet", 0.5625),
    ),
}

#: For each question, the figure its models must match and the largest relative distance from the reference.
#: The activation question matches both trivially (activations cost neither parameters nor MACs): checked exactly.
TOLERANCES: dict[str, tuple[str, float]] = {
    "width-depth": ("parameters", 0.10),
    "activation": ("macs", 0.0),
    "blocks": ("macs", 0.15),
}


@dataclass(frozen=True)
class Counted:
    """A configuration with its parameter count and MACs (batch 1)."""

    config: Config
    parameters: int
    macs: int


def count(config: Config) -> Counted:
    """Build ``config`` from the zoo's code (random weights: counts do not depend on them) and count it."""
    import torch
    from benchharness_metrics.macs import count_torch_module
    from benchharness_zoo import ZooOptions, build_kwargs
    from benchharness_zoo.models import build_model

    options = ZooOptions(arch=config.arch, **config.options())
    module = build_model(config.arch, **build_kwargs(options))
    parameters = sum(p.numel() for p in module.parameters())
    size = options.input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs = count_torch_module(module, [torch.zeros(1, options.in_channels, size, size)], ["input"]).total
    return Counted(config, parameters, macs)


def derive() -> dict[str, list[Counted]]:
    """Every question's configurations, counted (each distinct configuration once)."""
    counted: dict[Config, Counted] = {}
    for configs in QUESTIONS.values():
        for config in configs:
            if config not in counted:
                counted[config] = count(config)
    return {question: [counted[config] for config in configs] for question, configs in QUESTIONS.items()}


def deviation(row: Counted, reference: Counted, figure: str) -> float:
    """Relative distance of ``row``'s ``figure`` (parameters or macs) from the reference's."""
    return getattr(row, figure) / getattr(reference, figure) - 1.0


def tolerance_problems(table: dict[str, list[Counted]]) -> list[str]:
    """One line per configuration whose matched figure is further from its question's reference than allowed."""
    problems = []
    for question, rows in table.items():
        figure, allowed = TOLERANCES[question]
        for row in rows[1:]:
            off = deviation(row, rows[0], figure)
            if abs(off) > allowed + 1e-12:
                problems.append(
                    f"{question}: {row.config.label} has {figure} {getattr(row, figure):,}, {off:+.1%} from "
                    f"{rows[0].config.label}'s {getattr(rows[0], figure):,} (allowed: {allowed:.0%})"
                )
    return problems


def suite_configs(path: Path) -> list[Config]:
    """The design configurations a suite file lists, with a one-line error for a model that is not one."""
    import yaml

    from benchharness.api import BenchError

    data = yaml.safe_load(path.read_text())
    configs = []
    for index, entry in enumerate(data.get("models") or []):
        options = {key: value for key, value in entry.items() if key not in ("source", "name", "dataset")}
        common = {key: options.pop(key, None) for key in COMMON}
        if entry.get("source") != "zoo" or common != COMMON or entry.get("dataset") != {"name": "digits"}:
            raise BenchError(
                f"{path}: models[{index}] is not a design model: expected source zoo, dataset digits and {COMMON}"
            )
        if "arch" not in options:
            raise BenchError(f"{path}: models[{index}] has no arch")
        configs.append(
            Config(
                options.pop("arch"),
                float(options.pop("width", 1.0)),
                float(options.pop("depth", 1.0)),
                options.pop("activation", "relu"),
            )
        )
        if options:
            raise BenchError(f"{path}: models[{index}] sets {sorted(options)}, which the design configurations do not")
    return configs


def suite_problems(path: Path) -> list[str]:
    """How the suite's models differ from :data:`QUESTIONS` (missing, extra or repeated configurations)."""
    listed = suite_configs(path)
    wanted = {config for configs in QUESTIONS.values() for config in configs}
    problems = [f"{path}: missing {config.label} ({config})" for config in sorted(wanted - set(listed), key=str)]
    problems += [f"{path}: {config.label} is not a design configuration" for config in listed if config not in wanted]
    problems += [f"{path}: {config.label} is listed twice" for config in set(listed) if listed.count(config) > 1]
    return problems


def markdown(table: dict[str, list[Counted]]) -> str:
    """The configurations as a markdown table: question, model, parameters, MACs and their distance from the reference."""
    lines = [
        "| question | model | parameters | MACs | vs reference |",
        "|---|---|---:|---:|---|",
    ]
    for question, rows in table.items():
        figure, allowed = TOLERANCES[question]
        for i, row in enumerate(rows):
            note = "reference" if i == 0 else f"{figure} {deviation(row, rows[0], figure):+.1%}"
            lines.append(f"| {question} | {row.config.label} | {row.parameters:,} | {row.macs:,} | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the configurations' table; exit 1 when a tolerance or the suite check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check-suite", type=Path, metavar="YAML", help="also check that this suite lists exactly them"
    )
    args = parser.parse_args(argv)
    import torch

    from benchharness.api import BenchError

    torch.set_num_threads(1)
    table = derive()
    print(markdown(table))
    problems = tolerance_problems(table)
    if args.check_suite is not None:
        try:
            problems += suite_problems(args.check_suite)
        except (BenchError, OSError) as exc:
            problems.append(f"{args.check_suite}: {exc}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
