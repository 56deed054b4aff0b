"""Optional parts of rft-plugins, and the pip extra that installs each.

``pip install rft-plugins`` is the grader side (graders, plugins, sandbox, the TRL adapter's
reward functions, the CLI). The training stack (Lightning, torch, transformers, TensorBoard,
matplotlib...) comes with ``rft-plugins[train]``. What an extra holds is read from this
package's own metadata (pyproject.toml is the one list), so a missing library is reported as
one line that names the extra to install, not a traceback ending in ``No module named``.
"""

from __future__ import annotations

import functools
import importlib.metadata

from packaging.requirements import Requirement

from .errors import RFTError

DISTRIBUTION = "rft-plugins"


class MissingExtraError(RFTError, ModuleNotFoundError):
    """A part of rft-plugins needs libraries of an extra that is not installed."""


@functools.lru_cache(maxsize=None)
def extra_requirements(extra: str) -> tuple[Requirement, ...]:
    """The requirements that ``rft-plugins[extra]`` adds (none when the metadata is missing)."""
    try:
        requires = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        return ()
    requirements = [Requirement(line) for line in requires]
    return tuple(
        requirement for requirement in requirements
        if requirement.marker is not None
        and requirement.marker.evaluate({"extra": extra})
        and not requirement.marker.evaluate({"extra": ""})
    )


def missing_libraries(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed here."""
    missing = []
    for requirement in extra_requirements(extra):
        try:
            importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement.name)
    return missing


def require_extra(extra: str, feature: str) -> None:
    """Raise ``MissingExtraError`` (one line naming the extra) unless ``extra`` is installed.

    Called where an optional part starts (``rft_plugins.training``, the Lightning adapter), so
    using it without its libraries says what to install before anything fails half-way.
    """
    missing = missing_libraries(extra)
    if missing:
        raise MissingExtraError(
            f"{feature} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'rft-plugins[{extra}]'"
        )
