"""A backend that runs nothing, for test plugins that only need a class of the right shape."""

from benchharness.api import Backend


class NullBackend(Backend):
    """Implements every abstract method and does nothing; subclasses set ``name`` and ``formats``."""

    def load(self, artifact):  # type: ignore[no-untyped-def]
        pass

    def prepare(self, inputs):  # type: ignore[no-untyped-def]
        return inputs

    def infer(self, feed):  # type: ignore[no-untyped-def]
        return feed

    def to_numpy(self, outputs):  # type: ignore[no-untyped-def]
        return outputs
