"""What a grader's ``sandbox.read_paths`` may open when the trainer runs as root.

Landlock decides which files sandboxed code may read; ordinary file permissions decide the rest.
As root they decide nothing: the sandbox keeps ``CAP_DAC_READ_SEARCH`` (so a Python installed
under ``/root`` stays importable) and, in the weaker mode, runs as uid 0, which owns root's
files. A job's ``read_paths: [/root/.ssh]`` would then hand root-only files to the grader.

So, as root, a listed path grants only what every user of the machine may read: a file readable
by others, in folders others may enter. A listed folder whose whole tree is readable that way
becomes one Landlock rule; one that holds root-only entries becomes rules for its readable parts
only. Links inside are not followed (Landlock checks their target against the rules anyway).
Checked when the pool starts its first worker; entries added to a granted folder later are
covered by its rule, whatever their mode (keep root-only files out of folders you list).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Iterable

logger = logging.getLogger(__name__)

#: how many entries the check walks under all listed paths before it grants nothing more
MAX_CHECKED_ENTRIES = 100_000


def _reachable_by_everyone(path: Path) -> bool:
    """Every folder above ``path`` may be entered by any user."""
    return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in path.parents)


class _Walk:
    """One check of the listed paths, sharing the entry budget."""

    def __init__(self, budget: int):
        self.budget = budget

    def rules(self, path: str) -> tuple[list[str], bool]:
        """Rules granting what everyone may read under ``path``, and whether that is all of it."""
        self.budget -= 1
        if self.budget < 0:
            return [], False
        try:
            info = os.lstat(path)
        except OSError:
            return [], False
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            return [], True  # grants nothing by itself; Landlock checks the target where it lies
        if not stat.S_ISDIR(mode):
            return ([path], True) if mode & stat.S_IROTH else ([], False)
        if not (mode & stat.S_IROTH and mode & stat.S_IXOTH):
            return [], False
        try:
            children = sorted(entry.path for entry in os.scandir(path))
        except OSError:
            return [], False
        found: list[str] = []
        whole = True
        for child in children:
            rules, child_whole = self.rules(child)
            found += rules
            whole = whole and child_whole
        return ([path], True) if whole else (found, False)


def readable_by_everyone(paths: Iterable[str], budget: int = MAX_CHECKED_ENTRIES) -> list[list[str]]:
    """For each listed path, the Landlock rules that grant what every user may read there
    (an empty list: nothing; the path itself: all of it)."""
    walk = _Walk(budget)
    granted: list[list[str]] = []
    for given in paths:
        path = Path(os.path.realpath(given))
        try:
            reachable = path.exists() and _reachable_by_everyone(path)
        except OSError:
            reachable = False
        granted.append(walk.rules(str(path))[0] if reachable else [])
    if walk.budget < 0:
        logger.warning("sandbox read_paths: checked %d entries and granted nothing beyond them", budget)
    return granted


def sandbox_read_rules(paths: Iterable[str]) -> list[str]:
    """The read rules a worker gets for ``read_paths``: as given, or as root what everyone may read."""
    paths = list(paths)
    if os.geteuid() != 0:
        return paths
    return [rule for rules in readable_by_everyone(paths) for rule in rules]
