"""A plugin with a misspelt hook name."""

from benchharness.hookspecs import hookimpl


@hookimpl
def benchharness_register_backend(register):  # type: ignore[no-untyped-def]  # missing "s"
    pass
