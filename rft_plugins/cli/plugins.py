"""``rft plugins``: what is installed, what each plugin registered, and what failed to load."""

from __future__ import annotations

import json
from typing import Any

import click

from .. import __version__
from ..errors import PluginConflictError
from ..plugins import distribution_of, failures, get_plugin_manager, unknown_hooks
from ..registry import HOOKS, collect


def plugin_report() -> dict[str, Any]:
    """Loaded plugins (name, distribution, version, hooks, registrations) and load failures."""
    pm = get_plugin_manager()
    registrations: dict[str, dict[str, list[str]]] = {}
    problems: list[str] = list(unknown_hooks)
    for kind in HOOKS:
        try:
            for reg in collect(kind, pm).values():
                registrations.setdefault(reg.plugin, {}).setdefault(kind, []).append(reg.name)
        except PluginConflictError as error:
            problems.append(str(error))
    loaded = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda pair: pair[0]):
        if plugin is None:  # blocked
            continue
        dist = distribution_of(name)
        loaded.append(
            {
                "name": name,
                "distribution": dist.name if dist else ("rft-plugins" if name.startswith("rft_plugins.") else None),
                "version": dist.version if dist else (__version__ if name.startswith("rft_plugins.") else None),
                "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
                "registers": registrations.get(name, {}),
            }
        )
    return {
        "plugins": loaded,
        "failed": [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in failures],
        "blocked": sorted(name for name, plugin in pm.list_name_plugin() if plugin is None),
        "problems": problems,
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their hooks and registrations, and plugins that failed to load.

    Plugins come from the entry-point group `rft_plugins`, from modules named in RFT_PLUGINS,
    and from the built-ins; RFT_DISABLE_PLUGINS blocks some by name.
    """
    report = plugin_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for plugin in report["plugins"]:
        version = f" {plugin['version']}" if plugin["version"] else ""
        source = f" ({plugin['distribution']}{version})" if plugin["distribution"] else ""
        click.echo(f"{plugin['name']}{source}")
        click.echo(f"  hooks: {', '.join(plugin['hooks'])}")
        for kind, names in plugin["registers"].items():
            click.echo(f"  {kind}: {', '.join(names)}")
    for failure in report["failed"]:
        where = f" (distribution {failure['distribution']})" if failure["distribution"] else ""
        click.echo(f"FAILED {failure['name']}{where}: {failure['error']}")
    for name in report["blocked"]:
        click.echo(f"blocked {name}")
    for problem in report["problems"]:
        click.echo(f"problem: {problem}")
