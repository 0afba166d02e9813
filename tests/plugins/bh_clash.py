"""A plugin registering a backend name that a built-in already has, and one that is not a class."""

from benchharness.api import Backend
from benchharness.hookspecs import hookimpl


class FakeTorch(Backend):
    name = "torch"
    formats = ("torch",)

    def load(self, artifact):  # type: ignore[no-untyped-def]
        pass

    def prepare(self, inputs):  # type: ignore[no-untyped-def]
        return inputs

    def infer(self, feed):  # type: ignore[no-untyped-def]
        return feed

    def to_numpy(self, outputs):  # type: ignore[no-untyped-def]
        return outputs


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    register(FakeTorch)


@hookimpl
def benchharness_register_reporters(register):  # type: ignore[no-untyped-def]
    register("not a class")
