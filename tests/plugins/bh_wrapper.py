"""A plugin whose hook is a pluggy wrapper around the others."""

from benchharness.api import hookimpl


@hookimpl(wrapper=True)
def benchharness_register_metrics(register):  # type: ignore[no-untyped-def]
    return (yield)
