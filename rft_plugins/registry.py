"""Collects what plugins register (graders, data sources, samplers, reward shapers, ...) by name,
and builds one from its name: the single path from a name in a config to a working object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pluggy
from pydantic import ValidationError

from .errors import ConfigError, PluginConflictError, first_line
from .fields import nested
from .options import first_problem

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


#: turns what a factory raised into the error users see about its config (None: let it propagate)
Rejection = Callable[[Exception, "Registration"], "ConfigError | None"]


@dataclass(frozen=True)
class Registration:
    """One named factory and the plugin that registered it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str

    def create(self, *factory_args: Any, rejected: Rejection | None = None) -> Any:
        """The factory's object for ``factory_args``. A factory rejects its config by raising;
        ``rejected`` turns that into the kind's ``ConfigError`` (naming the plugin), or returns
        None to let the exception through (a bug in the plugin, not in the config)."""
        try:
            return self.factory(*factory_args)
        except Exception as error:
            problem = rejected(error, self) if rejected is not None else None
            if problem is None or problem is error:
                raise
            raise problem from error


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


def find(kind: str, name: object, field: str | None, error: type[ConfigError] = ConfigError) -> Registration:
    """The registration of ``kind`` called ``name``. A name no plugin registered is ``error`` about
    ``field`` listing the names that are, so a typo reads the same for every kind of plugin."""
    registrations = collect(kind)
    registration = registrations.get(name) if isinstance(name, str) else None
    if registration is None:
        raise error(field=field, message=unknown_name(kind, name, registrations))
    return registration


def build(
    kind: str, name: object, *factory_args: Any, field: str | None, error: type[ConfigError] = ConfigError,
    rejected: Rejection | None = None,
) -> Any:
    """What the plugin that registered ``name`` as a ``kind`` builds from ``factory_args`` (a
    grader's config; a tokenizer and a sampler's options; ...): ``find`` then ``create``, so every
    kind reports an unknown name and a rejected config the same way, as ``error`` subclasses of
    ``ConfigError`` naming the field."""
    return find(kind, name, field, error).create(*factory_args, rejected=rejected)


def rejected_options(error: type[ConfigError], field: str, label: str = "") -> Rejection:
    """A ``Rejection`` for factories that take options: any exception is ``error`` about ``field``
    (``field.<option>`` when pydantic names the option), saying ``<label>'<name>' (plugin p): <first
    line>``, so that a plugin's own message reaches the user, as one line."""
    def rejection(failure: Exception, registration: Registration) -> ConfigError:
        where, message = first_problem(failure) if isinstance(failure, ValidationError) else ("", first_line(failure))
        message = f"{label}{registration.name!r} (plugin {registration.plugin}): {message}"
        return error(field=nested(field, where), message=message)

    return rejection
