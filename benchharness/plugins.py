"""Discover and load plugins; keep a registry of what each one provides.

Built-in plugins are ordinary entry points of the ``benchharness`` group,
registered by this distribution itself.  Each plugin loads, and each hook
implementation is called, inside its own ``try``: one broken plugin costs a
one-line warning, never the run.  Nothing here is global: every command builds
a fresh :class:`PluginHost`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from benchharness import hookspecs
from benchharness.errors import BenchError, unknown_name

GROUP = "benchharness"
AUTOLOAD_ENV = "BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD"
DIST_NAME = "benchharness"

#: Plugin kind (the hook is ``benchharness_register_<kind>``) -> name of its base class in benchharness.api.
KINDS: dict[str, str] = {
    "backends": "Backend",
    "compressions": "Compression",
    "model_sources": "ModelSource",
    "converters": "Converter",
    "datasets": "Dataset",
    "metrics": "Metric",
    "targets": "Target",
    "reporters": "Reporter",
}

#: Singular nouns, for messages.
KIND_NOUNS = {
    "backends": "backend",
    "compressions": "compression",
    "model_sources": "model source",
    "converters": "converter",
    "datasets": "dataset",
    "metrics": "metric",
    "targets": "target",
    "reporters": "reporter",
}


@dataclass
class PluginInfo:
    """A plugin as loaded: where it came from and whether it worked."""

    name: str
    version: str
    origin: str  # "builtin", "entry point (dist)", "-p"
    module: str
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as written into results."""
        return {
            "name": self.name,
            "version": self.version,
            "origin": self.origin,
            "module": self.module,
            "error": self.error,
            "provides": self.provides,
        }


@dataclass
class Provided:
    """One registered item and the plugin that supplied it."""

    kind: str
    name: str
    cls: type
    plugin: PluginInfo

    def provenance(self) -> dict[str, str]:
        """Record of who supplied this item, for results."""
        return {"kind": self.kind, "name": self.name, "plugin": self.plugin.name, "version": self.plugin.version}


def autoload_disabled() -> bool:
    """Whether ``BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD`` asks for built-ins and ``-p`` plugins only."""
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


class PluginHost:
    """The loaded plugins and the registry of what they provide."""

    def __init__(
        self,
        extra_modules: Iterable[str] = (),
        *,
        autoload: bool | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.extra_modules = list(extra_modules)
        self.autoload = not autoload_disabled() if autoload is None else autoload
        self.warnings: list[str] = []
        self._warn_sink = warn
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.items: dict[str, dict[str, Provided]] = {kind: {} for kind in KINDS}
        self._load_entry_points()
        if self.extra_modules and os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())  # `-p module` finds modules in the current folder, as `python -m` does
        for module_name in self.extra_modules:
            self._load_module(module_name, version=None, origin="-p")
        self._collect()

    # ----------------------------------------------------------------- loading

    def warn(self, message: str) -> None:
        """Record a warning and pass it to the sink (stderr in the CLI)."""
        line = f"benchharness: warning: {message}"
        self.warnings.append(line)
        if self._warn_sink is not None:
            self._warn_sink(line)

    def _load_entry_points(self) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "unknown"
            builtin = dist.lower() == DIST_NAME
            if not builtin and not self.autoload:
                continue
            version = ep.dist.version if ep.dist is not None else "unknown"
            origin = "builtin" if builtin else f"entry point ({dist})"
            self._load_module(ep.value, version=version, origin=origin, plugin_name=ep.name, loader=ep.load)

    def _load_module(
        self,
        module_name: str,
        *,
        version: str | None,
        origin: str,
        plugin_name: str | None = None,
        loader: Callable[[], Any] | None = None,
    ) -> None:
        name = plugin_name or module_name
        info = PluginInfo(name=name, version=version or "unknown", origin=origin, module=module_name)
        if any(p.name == name for p in self.plugins):
            return  # the same plugin asked for twice (an entry point and -p, say)
        self.plugins.append(info)
        try:
            module: ModuleType = loader() if loader else importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, not ours
            info.error = f"failed to import: {type(exc).__name__}: {exc}"
            self.warn(f"plugin {name!r} {info.error}")
            return
        if version is None:
            fallback = module_versions([module_name]).get(module_name)
            info.version = str(getattr(module, "__version__", None) or fallback or "unknown")
        if self.pm.is_registered(module):
            info.error = f"module {module_name} is already registered"
            self.plugins.remove(info)
            return
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors: bad hook names or signatures
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            info.error = f"invalid: {exc}"
            self.warn(f"plugin {name!r} {info.error}")

    # ----------------------------------------------------------------- registry

    def _collect(self) -> None:
        from benchharness import api

        by_name = {p.name: p for p in self.plugins}
        for kind, base_name in KINDS.items():
            base = getattr(api, base_name)
            caller = getattr(self.pm.hook, f"benchharness_register_{kind}")
            for impl in caller.get_hookimpls():  # registration order: built-ins first
                plugin = by_name.get(impl.plugin_name) or PluginInfo(
                    name=impl.plugin_name, version="unknown", origin="registered", module="?"
                )
                register = self._registrar(kind, base, plugin)
                try:
                    impl.function(register=register)
                except Exception as exc:  # noqa: BLE001 - one failing hook must not stop the others
                    message = f"hook benchharness_register_{kind} failed: {type(exc).__name__}: {exc}"
                    plugin.error = plugin.error or message
                    self.warn(f"plugin {plugin.name!r} {message}")

    def _registrar(self, kind: str, base: type, plugin: PluginInfo) -> Callable[[type], None]:
        noun = KIND_NOUNS[kind]

        def register(cls: type) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"register() takes a subclass of benchharness.api.{base.__name__}, got {cls!r}")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"{cls.__name__} has no 'name'")
            existing = self.items[kind].get(name)
            if existing is not None:
                self.warn(
                    f"plugin {plugin.name!r} registers {noun} {name!r}, already provided by plugin "
                    f"{existing.plugin.name!r}; keeping the first"
                )
                return
            self.items[kind][name] = Provided(kind, name, cls, plugin)
            plugin.provides.setdefault(kind, []).append(name)

        return register

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self.items[kind])

    def get(self, kind: str, name: str) -> Provided:
        """The item ``name`` of ``kind``; a :class:`BenchError` lists the known ones when absent."""
        try:
            return self.items[kind][name]
        except KeyError:
            raise BenchError(unknown_name(KIND_NOUNS[kind], name, self.items[kind])) from None

    def framework_versions(self) -> dict[str, str]:
        """Versions of the frameworks the registered items require (and numpy, which the core uses)."""
        modules = {"numpy"}
        for items in self.items.values():
            for provided in items.values():
                modules.update(provided.cls.requires)
        return module_versions(modules)

    def register_object(self, module: Any, name: str, version: str = "test") -> None:
        """Register an in-process plugin object (tests, embedding) and refresh the registry."""
        self.plugins.append(PluginInfo(name=name, version=version, origin="registered", module=repr(module)))
        self.pm.register(module, name=name)
        self.pm.check_pending()
        self.items = {kind: {} for kind in KINDS}
        for plugin in self.plugins:
            plugin.provides = {}
        self._collect()


def module_versions(modules: Iterable[str]) -> dict[str, str]:
    """Installed version of the distribution behind each importable module, without importing it."""
    dists = importlib.metadata.packages_distributions()
    out = {}
    for module in sorted(set(modules)):
        for dist in dists.get(module.split(".")[0], []):
            try:
                out[module] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


__all__ = ["PluginHost", "PluginInfo", "Provided", "module_versions", "GROUP", "KINDS"]
