"""Collects what plugins register (graders, data sources, samplers, reward shapers) by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from .errors import PluginConflictError

#: kind of registration -> the hook that collects it
HOOKS = {
    "graders": "rft_register_graders",
    "data_sources": "rft_register_data_sources",
    "samplers": "rft_register_samplers",
    "reward_shapers": "rft_register_reward_shapers",
    "judge_backends": "rft_register_judge_backends",
    "tool_call_parsers": "rft_register_tool_call_parsers",
    "training_backends": "rft_register_training_backends",
}
#: kind of registration -> what one of them, and a list of them, are called in messages
LABELS = {
    "graders": ("grader type", "types"),
    "data_sources": ("data source", "sources"),
    "samplers": ("sampler", "samplers"),
    "reward_shapers": ("reward shaper", "shapers"),
    "judge_backends": ("judge backend", "backends"),
    "tool_call_parsers": ("tool-call parser", "parsers"),
    "training_backends": ("training backend", "backends"),
}


@dataclass(frozen=True)
class Registration:
    """One named factory and the plugin that registered it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str


def collect(kind: str, pm: pluggy.PluginManager | None = None) -> dict[str, Registration]:
    """Every registration of ``kind``, in plugin load order; a duplicate name is an error."""
    if pm is None:
        from .plugins import get_plugin_manager

        pm = get_plugin_manager()
    found: dict[str, Registration] = {}
    for impl in getattr(pm.hook, HOOKS[kind]).get_hookimpls():

        def register(name: str, factory: Callable[..., Any], _plugin: str = impl.plugin_name) -> None:
            if name in found:
                raise PluginConflictError(
                    f"{kind[:-1].replace('_', ' ')} {name!r} is registered by both "
                    f"{found[name].plugin!r} and {_plugin!r}; disable one with RFT_DISABLE_PLUGINS"
                )
            found[name] = Registration(kind, name, factory, _plugin)

        impl.function(**({"register": register} if "register" in impl.argnames else {}))
    return found


def unknown_name(kind: str, name: object, registrations: dict[str, Registration]) -> str:
    """The message for a name no plugin registered, listing the names that are (plugins' too)."""
    one, many = LABELS[kind]
    known = ", ".join(sorted(registrations)) or f"none (no {one} plugins loaded)"
    return f"unknown {one} {name!r}; known {many}: {known}"


def lookup(kind: str, name: str) -> Registration | None:
    """The registration called ``name``, or None."""
    return collect(kind).get(name)
