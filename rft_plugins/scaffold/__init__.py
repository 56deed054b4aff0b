"""``rft new-grader``: a new grader plugin package that installs, registers and passes its tests.

The files are templates under ``grader-package/`` (``string.Template``: ``${name}``, so grader
templates such as ``{{ item.answer }}`` stay as they are), laid out as the package they make.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import __version__
from ..errors import RFTError

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")


class ScaffoldError(RFTError):
    """The package cannot be written as asked (a bad name, a folder in the way)."""


@dataclass(frozen=True)
class GraderPackageNames:
    """The names a grader package uses, all derived from the grader type."""

    grader_type: str  # "my_grader": {"type": "my_grader"}, the entry point's name
    distribution: str  # "rft-grader-my-grader": pip install / PyPI
    module: str  # "rft_grader_my_grader"
    class_name: str  # "MyGraderGrader"

    @classmethod
    def from_name(cls, name: str) -> "GraderPackageNames":
        """Names from what the user typed (``my_grader`` or ``my-grader``)."""
        if not _NAME.fullmatch(name):
            raise ScaffoldError(
                f"grader name {name!r}: use lower-case letters and digits, words joined by _ or - (e.g. my_grader)"
            )
        grader_type = name.replace("-", "_")
        camel = "".join(word.capitalize() for word in grader_type.split("_"))
        return cls(grader_type, f"rft-grader-{grader_type.replace('_', '-')}", f"rft_grader_{grader_type}", f"{camel}Grader")


def _templates() -> list[tuple[str, str]]:
    """(path relative to the package root, template text) for every template file."""
    root = resources.files(__package__) / "grader-package"
    found: list[tuple[str, str]] = []

    def walk(folder, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".tmpl"):
                found.append((prefix + entry.name[: -len(".tmpl")], entry.read_text()))

    walk(root, "")
    return sorted(found)


def write_grader_package(name: str, parent: Path) -> Path:
    """Write the package for grader type ``name`` into ``parent/<distribution>``; returns that folder."""
    names = GraderPackageNames.from_name(name)
    target = Path(parent) / names.distribution
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or folder")
    values = {
        "name": names.grader_type,
        "distribution": names.distribution,
        "module": names.module,
        "class_name": names.class_name,
        "rft_version": __version__,
    }
    for relative, text in _templates():
        path = target / relative.replace("module/", f"{names.module}/").replace("test_grader", f"test_{names.grader_type}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(string.Template(text).substitute(values))
    return target
