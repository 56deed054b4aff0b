"""Loads every plugin into one pluggy ``PluginManager``: built-ins, entry points, ``RFT_PLUGINS``.

Built-ins go through the same path as third-party plugins, so ``RFT_DISABLE_PLUGINS`` can block
them and a broken one is reported like any other. Environment variables:

- ``RFT_PLUGINS=mod1,mod2``: extra modules to load (in-house code without packaging);
- ``RFT_DISABLE_PLUGINS=a,b``: plugin names to block before anything loads;
- ``RFT_STRICT_PLUGINS=1``: a plugin that fails to load is fatal instead of reported and skipped.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import os
import traceback
from dataclasses import dataclass
from typing import Iterator

import pluggy

from . import hookspecs
from .errors import PluginLoadError
from .project import ENTRY_POINT_GROUP, PROJECT_NAME

logger = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "rft_plugins.default_plugins.string_check",
    "rft_plugins.default_plugins.text_similarity",
    "rft_plugins.default_plugins.multi",
    "rft_plugins.default_plugins.python_grader",
    "rft_plugins.default_plugins.model_graders",
    "rft_plugins.default_plugins.judge_backends",
    "rft_plugins.default_plugins.endpoint_grader",
    "rft_plugins.default_plugins.data_sources",
    "rft_plugins.default_plugins.samplers",
    "rft_plugins.default_plugins.tool_call_parsers",
    "rft_plugins.default_plugins.reward_shapers",
    "rft_plugins.default_plugins.training_backends",
)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded: which one, from which distribution, and why."""

    name: str
    distribution: str | None
    error: str


failures: list[PluginFailure] = []
unknown_hooks: list[str] = []
_distributions: dict[str, importlib.metadata.Distribution] = {}
_pm: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first use."""
    global _pm
    if _pm is None:
        _pm = _bare_plugin_manager()
        load_plugins(_pm)
    return _pm


def _bare_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def plugin_manager_with(*plugins: object, builtins: bool = True, entry_points: bool = False) -> pluggy.PluginManager:
    """A new plugin manager holding ``plugins`` (modules or objects with ``@hookimpl`` functions).

    For tests of a plugin that need not be installed: the built-ins come along unless
    ``builtins=False``; installed entry points and ``RFT_PLUGINS`` only when asked
    (``entry_points=True``), so a test sees the same plugins on every machine. A hook name
    that matches no spec is an error here, not a warning: in a test it is a typo to fix.
    """
    pm = _bare_plugin_manager()
    if builtins:
        _load_builtins(pm)
    if entry_points:
        _load_entry_points(pm)
        _load_env_modules(pm)
    for plugin in plugins:
        pm.register(plugin, name=getattr(plugin, "__name__", None))
    check_hook_names(pm, strict=True)
    return pm


@contextlib.contextmanager
def installed(pm: pluggy.PluginManager) -> Iterator[pluggy.PluginManager]:
    """Make ``pm`` the process-wide plugin manager (what ``run_grader``, ``build_grader`` and
    ``rft`` commands use) inside the block; the previous one is back afterwards."""
    global _pm
    previous = _pm
    _pm = pm
    try:
        yield pm
    finally:
        _pm = previous


def _env_list(variable: str) -> list[str]:
    return [part.strip() for part in os.environ.get(variable, "").split(",") if part.strip()]


def _strict() -> bool:
    return os.environ.get("RFT_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


def _report(name: str, distribution: str | None, error: BaseException) -> None:
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    failure = PluginFailure(name, distribution, detail)
    failures.append(failure)
    where = f" (distribution {distribution})" if distribution else ""
    if _strict():
        raise PluginLoadError(f"plugin {name!r}{where} failed to load: {detail}") from error
    logger.warning("plugin %r%s failed to load and is skipped: %s", name, where, detail)


def _register_module(pm: pluggy.PluginManager, name: str, module_name: str) -> None:
    if pm.is_blocked(name):
        return
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a broken plugin is reported, never fatal unless strict
        _report(name, None, error)
        return
    pm.register(module, name=name)


def load_plugins(pm: pluggy.PluginManager) -> None:
    """Block disabled plugins, then load built-ins, entry points and ``RFT_PLUGINS`` modules."""
    for name in _env_list("RFT_DISABLE_PLUGINS"):
        pm.set_blocked(name)
    _load_builtins(pm)
    _load_entry_points(pm)
    _load_env_modules(pm)
    check_hook_names(pm)


def _load_builtins(pm: pluggy.PluginManager) -> None:
    for module_name in DEFAULT_PLUGINS:
        _register_module(pm, module_name, module_name)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(entry_point.name) or pm.has_plugin(entry_point.name):
            continue
        dist = entry_point.dist
        if dist is not None:
            _distributions[entry_point.name] = dist
        try:
            plugin = entry_point.load()
        except Exception as error:
            _report(entry_point.name, dist.name if dist else None, error)
            continue
        pm.register(plugin, name=entry_point.name)


def _load_env_modules(pm: pluggy.PluginManager) -> None:
    for module_name in _env_list("RFT_PLUGINS"):
        if not pm.has_plugin(module_name):
            _register_module(pm, module_name, module_name)


def check_hook_names(pm: pluggy.PluginManager, strict: bool | None = None) -> None:
    """Report hook implementations whose names match no hook spec (usually a typo).

    Like ``PluginManager.check_pending``, but reports every unknown hook instead of the first.
    ``strict`` makes one an error (default: ``RFT_STRICT_PLUGINS``).
    """
    strict = _strict() if strict is None else strict
    unknown_hooks.clear()
    for hook_name in dir(pm.hook):
        caller = getattr(pm.hook, hook_name)
        if hook_name.startswith("_") or not isinstance(caller, pluggy.HookCaller) or caller.spec:
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            message = f"plugin {impl.plugin_name!r} implements unknown hook {hook_name!r}"
            unknown_hooks.append(message)
            if strict:
                raise PluginLoadError(message)
            logger.warning(message)


def distribution_of(plugin_name: str) -> importlib.metadata.Distribution | None:
    """The installed distribution that provided an entry-point plugin, if any."""
    return _distributions.get(plugin_name)


def reset_for_tests() -> None:
    """Forget every loaded plugin so the next ``get_plugin_manager()`` loads afresh."""
    global _pm
    _pm = None
    failures.clear()
    unknown_hooks.clear()
    _distributions.clear()
