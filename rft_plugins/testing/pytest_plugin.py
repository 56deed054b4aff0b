"""pytest fixtures for grader plugin authors, loaded wherever rft-plugins is installed.

Registered through the ``pytest11`` entry point, so every pytest run where rft-plugins is
installed loads it: it costs the import of ``rft_plugins`` itself (pluggy, pydantic; about 0.2 s),
never torch or Lightning, and defines fixtures only (no hooks, nothing autouse).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import pytest


@pytest.fixture
def rft_plugin_manager() -> Iterator[Callable[..., object]]:
    """A factory: ``rft_plugin_manager(my_plugin)`` holds the built-ins and ``my_plugin``.

    The new plugin manager is the process-wide one until the test ends, so ``run_grader``,
    ``validate_grader`` and ``grade_samples`` see exactly these plugins, whether or not the
    plugin is installed, and nothing else installed on the machine. Keyword arguments are
    ``plugin_manager_with``'s (``builtins=False``, ``entry_points=True``). Returns the
    ``pluggy.PluginManager``.
    """
    from rft_plugins.plugins import installed, plugin_manager_with

    with contextlib.ExitStack() as stack:

        def install(*plugins: object, **options: bool) -> object:
            return stack.enter_context(installed(plugin_manager_with(*plugins, **options)))

        yield install
