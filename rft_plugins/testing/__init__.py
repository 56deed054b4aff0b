"""Helpers for testing grader plugins, with or without pytest.

``plugin_manager_with(my_plugin)`` builds a plugin manager holding the built-ins and your plugin
(installed or not); ``installed(pm)`` makes it the one ``run_grader`` and ``build_grader`` use;
``grade_samples(grader, samples, items)`` grades a batch the way a training step does. The
pytest plugin (``rft_plugins.testing.pytest_plugin``, loaded automatically through the
``pytest11`` entry point) wraps the first two in the ``rft_plugin_manager`` fixture.
"""

from ..plugins import installed, plugin_manager_with
from .grading import grade_samples

__all__ = ["grade_samples", "installed", "plugin_manager_with"]
