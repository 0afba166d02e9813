"""Plugin code that raises where the CLI process calls it: each failure must be one line naming the plugin."""

from typing import ClassVar

from pydantic import BaseModel

from benchharness.api import ModelSource, Options, Reporter, hookimpl


class BadOptions(Options):
    crash_in: str = "describe"


class BadSource(ModelSource):
    name = "bad-source"
    produces = "onnx"
    Options: ClassVar[type[BaseModel]] = BadOptions

    def default_name(self, options):  # type: ignore[no-untyped-def]
        if options.crash_in == "default_name":
            return options.no_such_option
        return "bad"

    def describe(self, options, ctx):  # type: ignore[no-untyped-def]
        if options.crash_in == "describe":
            return 1 / 0
        if options.crash_in == "describe-type":
            return {"inputs": []}
        return None

    def load(self, options, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class BadReporter(Reporter):
    name = "bad-reporter"

    def render(self, results):  # type: ignore[no-untyped-def]
        return results.no_such_field


@hookimpl
def benchharness_register_model_sources(register):  # type: ignore[no-untyped-def]
    register(BadSource)


@hookimpl
def benchharness_register_reporters(register):  # type: ignore[no-untyped-def]
    register(BadReporter)
