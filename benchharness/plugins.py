"""Discover and load plugins; keep a registry of what each one provides.

The built-in plugins load first, explicitly, from :data:`BUILTIN_PLUGINS` (as
pytest's ``default_plugins`` and llm's ``DEFAULT_PLUGINS`` do); then the
third-party ones of the ``benchharness`` entry-point group, sorted by name;
then the ``-p`` modules.  An item whose name is already registered is refused,
so nothing can shadow a built-in whatever its entry point is called.

Each plugin loads, and each hook implementation is called, inside its own
``try``: one broken plugin costs a one-line warning, never the run.  Nothing
here is global: every command and every worker builds a fresh
:class:`PluginHost`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel

from benchharness import __version__, hookspecs
from benchharness.errors import BenchError, PluginError, unknown_name
from benchharness.results import PluginInfo, Provenance, Refusal

GROUP = "benchharness"
AUTOLOAD_ENV = "BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_PREFIX = "no:"

#: The built-in plugins: (plugin name, module), loaded first and in this order.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("torch", "benchharness_torch"),
    ("onnxruntime", "benchharness_onnxruntime"),
    ("openvino", "benchharness_openvino"),
    ("zoo", "benchharness_zoo"),
    ("datasets", "benchharness_datasets"),
    ("cpu", "benchharness_cpu"),
    ("cuda", "benchharness_cuda"),
    ("memory", "benchharness_memory"),
    ("scenarios", "benchharness_scenarios"),
    ("metrics", "benchharness_metrics"),
    ("energy", "benchharness_energy"),
    ("compress", "benchharness_compress"),
    ("reporters", "benchharness_reporters"),
    ("launchers", "benchharness_launchers"),
    ("ray", "benchharness_ray"),
)

#: Plugin kind (the hook is ``benchharness_register_<kind>``) -> name of its base class in benchharness.api.
KINDS: dict[str, str] = {
    "backends": "Backend",
    "compressions": "Compression",
    "model_sources": "ModelSource",
    "converters": "Converter",
    "datasets": "Dataset",
    "scenarios": "Scenario",
    "observers": "Observer",
    "metrics": "Metric",
    "targets": "Target",
    "reporters": "Reporter",
    "launchers": "Launcher",
}

#: Singular nouns, for messages.
KIND_NOUNS = {
    "backends": "backend",
    "compressions": "compression",
    "model_sources": "model source",
    "converters": "converter",
    "datasets": "dataset",
    "scenarios": "scenario",
    "observers": "observer",
    "metrics": "metric",
    "targets": "target",
    "reporters": "reporter",
    "launchers": "launcher",
}

#: Kinds that share one namespace: a suite's ``metrics`` entry names either.
SHARED_NAMES = ({"observers", "metrics"},)

_CALL_ORDER_MARKERS = ("tryfirst", "trylast", "wrapper", "hookwrapper")


@dataclass
class Provided:
    """One registered item and the plugin that supplied it."""

    kind: str
    name: str
    cls: type
    plugin: PluginInfo

    def provenance(self) -> Provenance:
        """Record of who supplied this item, for results."""
        return Provenance(kind=self.kind, name=self.name, plugin=self.plugin.name, version=self.plugin.version)

    @property
    def noun(self) -> str:
        """``backend``, ``model source``, ...: the item's kind in messages."""
        return KIND_NOUNS[self.kind]


def autoload_disabled() -> bool:
    """Whether ``BENCHHARNESS_DISABLE_PLUGIN_AUTOLOAD`` asks for built-ins and ``-p`` plugins only."""
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def split_plugin_args(values: Iterable[str]) -> tuple[list[str], list[str]]:
    """``-p`` values as (modules to load, plugin names to block): ``no:NAME`` blocks, as in pytest."""
    modules, blocked = [], []
    for value in values:
        if value.startswith(BLOCK_PREFIX):
            blocked.append(value[len(BLOCK_PREFIX) :])
        else:
            modules.append(value)
    return modules, blocked


class PluginHost:
    """The loaded plugins and the registry of what they provide."""

    def __init__(
        self,
        extra_modules: Iterable[str] = (),
        *,
        blocked: Iterable[str] = (),
        autoload: bool | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.extra_modules = list(extra_modules)
        self.blocked = list(blocked)
        self.autoload = not autoload_disabled() if autoload is None else autoload
        self.warnings: list[str] = []
        self._warn_sink = warn
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.items: dict[str, dict[str, Provided]] = {kind: {} for kind in KINDS}
        self._modules: dict[str, ModuleType] = {}
        for name, module_name in BUILTIN_PLUGINS:
            self._load(module_name, name=name, version=__version__, origin="builtin")
        if self.autoload:
            self._load_entry_points()
        if self.extra_modules and os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.append(os.getcwd())  # `-p module` finds modules in the current folder, as `python -m` does
        for module_name in self.extra_modules:
            self._load(module_name, name=module_name, version=None, origin="-p")
        known = {p.name for p in self.plugins} | {p.module for p in self.plugins}
        for name in self.blocked:
            if name not in known:
                self.warn(f"-p no:{name}: there is no plugin named {name!r}")
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
            version = ep.dist.version if ep.dist is not None else "unknown"
            self._load(ep.value, name=ep.name, version=version, origin=f"entry point ({dist})", loader=ep.load)

    def _load(
        self,
        module_name: str,
        *,
        name: str,
        version: str | None,
        origin: str,
        loader: Callable[[], Any] | None = None,
    ) -> None:
        if any(p.name == name or p.module == module_name for p in self.plugins):
            return  # the same plugin asked for twice (an entry point and -p, say)
        info = PluginInfo(name=name, version=version or "unknown", origin=origin, module=module_name)
        self.plugins.append(info)
        if name in self.blocked or module_name in self.blocked:
            info.error = f"blocked (-p no:{name})"
            return
        try:
            module: ModuleType = loader() if loader else importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, not ours
            info.error = f"failed to import: {type(exc).__name__}: {exc}"
            self.warn(f"plugin {name!r} {info.error}")
            return
        if version is None:
            fallback = module_versions([module_name]).get(module_name)
            info.version = str(getattr(module, "__version__", None) or fallback or "unknown")
        self._register(module, info)

    def _register(self, module: Any, info: PluginInfo) -> None:
        if self.pm.is_registered(module):
            info.error = f"module {info.module} is already registered as another plugin"
            self.warn(f"plugin {info.name!r}: {info.error}")
            return
        try:
            self.pm.register(module, name=info.name)
            self.pm.check_pending()
            _refuse_call_order_markers(self.pm, module)
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors: bad hook names or signatures
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            info.error = f"invalid: {exc}"
            self.warn(f"plugin {info.name!r} {info.error}")
            return
        self._modules[info.name] = module

    def load_errors(self, origin: str) -> list[PluginInfo]:
        """Plugins of ``origin`` (``"-p"``, say) that failed to load, blocked ones excepted."""
        return [p for p in self.plugins if p.origin == origin and p.error and not p.error.startswith("blocked")]

    # ----------------------------------------------------------------- registry

    def _collect(self) -> None:
        from benchharness import api

        self.items = {kind: {} for kind in KINDS}
        for plugin in self.plugins:
            plugin.provides = {}
            plugin.refused = []
        for kind, base_name in KINDS.items():
            base = getattr(api, base_name)
            caller = getattr(self.pm.hook, f"benchharness_register_{kind}")
            impls = {impl.plugin_name: impl for impl in caller.get_hookimpls()}
            for plugin in self.plugins:  # load order: built-ins, entry points, -p
                impl = impls.get(plugin.name)
                if impl is None:
                    continue
                try:
                    impl.function(register=self._registrar(kind, base, plugin))
                except Exception as exc:  # noqa: BLE001 - one failing hook must not stop the others
                    message = f"hook benchharness_register_{kind} failed: {type(exc).__name__}: {exc}"
                    plugin.error = plugin.error or message
                    self.warn(f"plugin {plugin.name!r} {message}")

    def _registrar(self, kind: str, base: type, plugin: PluginInfo) -> Callable[[type], None]:
        noun = KIND_NOUNS[kind]

        def refuse(name: str, reason: str) -> None:
            plugin.refused.append(Refusal(kind=kind, name=name, reason=reason))
            self.warn(f"plugin {plugin.name!r}: {noun} {name!r} refused: {reason}")

        def register(cls: type) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                refuse(repr(cls), f"register() takes a subclass of benchharness.api.{base.__name__}, got {cls!r}")
                return
            name = getattr(cls, "name", None)
            shown = name if isinstance(name, str) and name else cls.__name__
            problems = class_problems(cls, base)
            if problems:
                refuse(shown, f"{cls.__name__} " + "; ".join(problems))
                return
            for other_kind in _namespace(kind):
                existing = self.items[other_kind].get(shown)
                if existing is not None:
                    owner = "built-in plugin" if existing.plugin.origin == "builtin" else "plugin"
                    what = "" if other_kind == kind else f" as a {KIND_NOUNS[other_kind]}"
                    refuse(shown, f"the name is already provided{what} by {owner} {existing.plugin.name!r}")
                    return
            self.items[kind][shown] = Provided(kind, shown, cls, plugin)
            plugin.provides.setdefault(kind, []).append(shown)

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
        """Register an in-process plugin object (tests, embedding) after the others, and refresh the registry."""
        info = PluginInfo(name=name, version=version, origin="registered", module=getattr(module, "__name__", name))
        self.plugins.append(info)
        self._register(module, info)
        if info.error:
            raise BenchError(f"plugin {name!r} {info.error}")
        self._collect()

    def unregister(self, name: str) -> None:
        """Remove a plugin registered by :meth:`register_object` (or any plugin) and refresh the registry."""
        self.pm.unregister(name=name)
        self._modules.pop(name, None)
        self.plugins = [p for p in self.plugins if p.name != name]
        self._collect()


def _namespace(kind: str) -> set[str]:
    for group in SHARED_NAMES:
        if kind in group:
            return group
    return {kind}


def _refuse_call_order_markers(pm: pluggy.PluginManager, module: Any) -> None:
    """Raise when a hook implementation asks for a call order: registration order is the core's to fix."""
    for caller in pm.get_hookcallers(module) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not module:
                continue
            used = [marker for marker in _CALL_ORDER_MARKERS if getattr(impl, marker, False)]
            if used:
                raise ValueError(
                    f"hook {caller.name} uses {', '.join(used)}: call-order markers are not supported "
                    "(built-ins register first, then plugins in a fixed order)"
                )


def class_problems(cls: type, base: type) -> list[str]:
    """What is wrong with ``cls`` as an item of ``base``'s kind: declarations, methods, signatures, options."""
    problems = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        problems.append("declares no 'name' (a non-empty string)")
    elif "/" in name:
        problems.append(f"name {name!r} contains '/', which separates the parts of case ids")
    for attr, kind in base.declares.items():  # type: ignore[attr-defined]
        value = getattr(cls, attr, None)
        if value is None:
            problems.append(f"declares no {attr!r}")
        elif kind is tuple and not (
            isinstance(value, tuple) and value and all(isinstance(v, str) and v for v in value)
        ):
            problems.append(f"{attr!r} must be a non-empty tuple of strings, got {value!r}")
        elif kind is str and not (isinstance(value, str) and value):
            problems.append(f"{attr!r} must be a non-empty string, got {value!r}")
    if inspect.isabstract(cls):
        missing = sorted(cls.__abstractmethods__)  # type: ignore[attr-defined]
        problems.append(f"does not implement {', '.join(missing)}")
    problems += _signature_problems(cls, base)
    problems += _options_problems(cls)
    return problems


def _signature_problems(cls: type, base: type) -> list[str]:
    """Methods the core calls, overridden with a signature that cannot take the core's positional arguments."""
    problems = []
    names = [n for n, m in vars(base).items() if inspect.isfunction(m) and not n.startswith("_")]
    for klass in base.__mro__:
        names += [n for n, m in vars(klass).items() if inspect.isfunction(m) and not n.startswith("_")]
    if base.__init__ is not object.__init__:
        names.append("__init__")
    for attr in dict.fromkeys(names):
        expected = getattr(base, attr)
        own = getattr(cls, attr, None)
        if own is expected or not inspect.isfunction(expected):
            continue
        if not callable(own):
            problems.append(f"{attr} is not a method")
            continue
        params = list(inspect.signature(expected).parameters.values())[1:]  # without self
        required = [
            p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        try:
            signature = inspect.signature(own)
            signature.bind(None, *[None] * len(required))
        except (TypeError, ValueError):
            wanted = ", ".join(["self", *(p.name for p in required)])
            problems.append(f"{attr}{_signature_text(own)} does not take the arguments ({wanted})")
    return problems


def _signature_text(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _options_problems(cls: type) -> list[str]:
    options = getattr(cls, "Options", None)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        return [f"Options must be a pydantic model class (subclass benchharness.api.Options), got {options!r}"]
    problems = []
    if options.model_config.get("extra") != "forbid":
        problems.append("Options must forbid unknown keys (subclass benchharness.api.Options)")
    for key in (*getattr(cls, "entry_keys", ("name",)), "label"):
        if key not in options.model_fields:
            continue
        owner = next((k for k in options.__mro__ if key in vars(k).get("__annotations__", {})), None)
        if owner is not None and owner.__module__ != "benchharness.api":
            reason = "the suite entry's own key" if key != "label" else "the entry's label in case ids"
            problems.append(f"Options declares {key!r}, a reserved option name ({reason})")
    return problems


@contextmanager
def plugin_code(provided: Provided, action: str) -> Iterator[None]:
    """Run plugin code in the CLI process: an exception becomes one :class:`PluginError` line naming the plugin.

    A :class:`BenchError` the plugin raised on purpose passes through unchanged.
    """
    try:
        yield
    except BenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported, never a traceback
        raise PluginError(plugin_failure(provided, action, exc)) from None


def plugin_failure(provided: Provided, action: str, exc: BaseException) -> str:
    """One line: which plugin and item failed, in what, and the exception's first line."""
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return f"plugin {provided.plugin.name!r} ({provided.noun} {provided.name!r}) failed in {action}: {detail}"


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


__all__ = [
    "BUILTIN_PLUGINS",
    "GROUP",
    "KINDS",
    "KIND_NOUNS",
    "PluginHost",
    "Provided",
    "class_problems",
    "module_versions",
    "plugin_code",
    "plugin_failure",
    "split_plugin_args",
]
