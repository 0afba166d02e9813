"""A plugin registering a backend name that a built-in already has, and one that is not a class."""

from bh_stubs import NullBackend

from benchharness.hookspecs import hookimpl


class FakeTorch(NullBackend):
    name = "torch"
    formats = ("torch",)


@hookimpl
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    register(FakeTorch)


@hookimpl
def benchharness_register_reporters(register):  # type: ignore[no-untyped-def]
    register("not a class")
