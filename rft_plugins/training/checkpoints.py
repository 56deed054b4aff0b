"""Checkpoints that are never half-written: Lightning ``.ckpt`` files for resuming, and Hugging Face
folders of the best models by ``valid_reward_mean`` (the ones people load afterwards).

Everything is written under a ``*.tmp`` name in the destination folder and renamed into place
with ``os.replace`` (atomic on one filesystem). A run killed mid-write leaves only a ``.tmp``,
which ``remove_stale_temporaries`` deletes when the run resumes. The Lightning side (the
checkpoint IO plugin and the callback saving ``last.ckpt``) is in ``callbacks.py``; this module
stays free of heavy imports.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ..atomic_files import TMP_SUFFIX, fsync_directory

LAST_CHECKPOINT = "last.ckpt"
#: the file inside each best-checkpoint folder that records its step and metrics
CHECKPOINT_INFO = "rft_checkpoint.json"


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces ``final`` in one rename."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(final.name + TMP_SUFFIX)
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if final.exists():  # move the old one aside first: os.replace cannot overwrite a full folder
        _remove_tree(final)
    os.replace(temporary, final)
    fsync_directory(final.parent)


def _remove_tree(path: Path) -> None:
    """Delete a folder by first renaming it to ``*.tmp``, so a kill mid-delete leaves no half-folder."""
    doomed = path.with_name(path.name + ".old" + TMP_SUFFIX)
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_stale_temporaries(*folders: Path) -> list[Path]:
    """Delete ``*.tmp`` files and folders a killed run left behind; returns what was removed.

    Links are never followed: a folder given as a link is skipped, a ``*.tmp`` link is unlinked
    (a run's own outputs are never links, and what a link points to is not the run's).
    """
    removed = []
    for folder in folders:
        if Path(folder).is_symlink() or not Path(folder).is_dir():
            continue
        for path in Path(folder).glob(f"*{TMP_SUFFIX}"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def best_checkpoints(folder: Path) -> list[dict[str, Any]]:
    """The HF checkpoints kept in ``folder``, best first: ``{"path", "step", "valid_reward_mean", ...}``."""
    found = []
    for info_path in Path(folder).glob(f"*/{CHECKPOINT_INFO}"):
        if info_path.parent.name.endswith(TMP_SUFFIX):
            continue
        info = json.loads(info_path.read_text(encoding="utf-8"))
        info["path"] = str(info_path.parent)
        found.append(info)
    # the higher reward first; on a tie the later step (more training for the same score)
    return sorted(found, key=lambda info: (-info["valid_reward_mean"], -info["step"]))


def best_folder(folder: Path, step: int) -> Path:
    """Where the best checkpoint of ``step`` is kept in ``folder``."""
    return Path(folder) / f"step-{step:06d}"


def keep_best(
    folder: Path, step: int, reward: float, save: Callable[[Path], None], keep: int, metrics: dict[str, Any] | None = None
) -> Path | None:
    """Save the model of ``step`` as an HF folder if it ranks in the best ``keep``; drop the rest.

    The ranking is read back from the folders themselves, so it survives a resumed run. Returns
    the new folder, or None when the model did not make the cut.
    """
    folder = Path(folder)
    kept = [info for info in best_checkpoints(folder) if info["step"] != step]
    candidate: dict[str, Any] = {"step": step, "valid_reward_mean": reward}
    ranked = sorted(kept + [candidate], key=lambda info: (-info["valid_reward_mean"], -info["step"]))
    survivors = ranked[:keep]
    target = None
    if any(info["step"] == step and "path" not in info for info in survivors):
        target = best_folder(folder, step)
        with atomic_directory(target) as temporary:
            save(temporary)
            record = {"step": step, "valid_reward_mean": reward, "metrics": metrics or {}}
            (temporary / CHECKPOINT_INFO).write_text(json.dumps(record, indent=2, default=float), encoding="utf-8")
    for info in ranked[keep:]:
        if "path" in info:
            _remove_tree(Path(info["path"]))
    return target
