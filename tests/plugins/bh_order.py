"""A plugin that asks pluggy to call its hook first, to jump ahead of the built-ins."""

from bh_shadow import FakeOrt

from benchharness.api import hookimpl


@hookimpl(tryfirst=True)
def benchharness_register_backends(register):  # type: ignore[no-untyped-def]
    register(FakeOrt)
