"""Which folder a run may write to, and exactly what it may delete there.

A run folder is ours only when it is empty (or not there yet) or holds a run we wrote: ``run.json``
carries a marker (``"rft_run"``) listing the outputs that run writes. ``--overwrite`` deletes
those names and nothing else; a fresh start never deletes anything. Refused before anything
is written: an empty path (an unset shell variable), ``/``, the home folder or a folder above it,
a file, a folder that cannot be created, a folder holding (or inside) the job's own inputs, a
folder with files of someone else's, and outputs that are symbolic links (``best/`` pointing
elsewhere would have the run prune and delete in the link's target).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import RFTError
from ..atomic_files import TMP_SUFFIX
from .checkpoints import LAST_CHECKPOINT, remove_stale_temporaries

logger = logging.getLogger(__name__)

#: what a run writes into its folder; the marker lists these, ``--overwrite`` removes only them
RUN_OUTPUTS = (
    "checkpoints", "best", "final", "tensorboard", "metrics.csv", "hparams.yaml",
    "reward_curve.png", "samples.jsonl", "samples.md", "report.html", "events.jsonl", "run.json", "summary.json",
    "wandb", "mlruns",  # the local files of W&B and MLflow (trainer.report_to)
)
RUN_RECORD = "run.json"
#: the key of ``run.json`` that says "this folder holds a run rft wrote, with these outputs"
MARKER_KEY = "rft_run"
MARKER_FORMAT = 1
#: names shown when a folder holds files in the way
SHOWN_ENTRIES = 5


class RunError(RFTError):
    """The run cannot start as asked (an earlier run in the way, a resume that does not match,
    a run folder that is not safe to write to)."""


def run_marker() -> dict[str, Any]:
    """The marker a run writes into ``run.json``: the format, and every name it may write."""
    return {"format": MARKER_FORMAT, "outputs": list(RUN_OUTPUTS)}


@dataclass(frozen=True)
class RunFolderPlan:
    """What the checks decided: the folder, the earlier run's record (when the folder holds one
    of ours), the checkpoint to resume from, and the earlier outputs a fresh start removes."""

    folder: Path
    record: dict[str, Any] | None = None
    resume_from: Path | None = None
    remove: tuple[Path, ...] = field(default_factory=tuple)


def _refuse(folder: Path | str, why: str) -> RunError:
    return RunError(f"refusing the run folder {folder}: {why}")


def _checked_path(output_dir: str | Path) -> Path:
    """The folder as an absolute path, refused when it could only be a mistake."""
    if not str(output_dir).strip():
        raise _refuse("''", "the path is empty (an unset shell variable?); name the run folder")
    folder = Path(output_dir).expanduser().resolve()
    home = Path.home().resolve()
    if folder == Path(folder.anchor) or home == folder or home.is_relative_to(folder):
        where = "the root folder" if folder == Path(folder.anchor) else "the home folder or a folder above it"
        raise _refuse(folder, f"it is {where}; a run needs a folder of its own")
    if folder.exists() and not folder.is_dir():
        raise _refuse(folder, "it is a file, not a folder")
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise _refuse(folder, f"it cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        how = "written" if existing == folder else "created"
        raise _refuse(folder, f"it cannot be {how}: {existing} is not writable")
    return folder


def _refuse_inputs(folder: Path, inputs: Iterable[Path]) -> None:
    """A run folder holds outputs only: not the job's own files, nor inside its model folder."""
    held = []
    for given in inputs:
        path = Path(given).expanduser().resolve()
        if path == folder or path.is_relative_to(folder):
            held.append(str(path.relative_to(folder)) if path != folder else path.name)
        elif path.is_dir() and folder.is_relative_to(path):
            raise _refuse(folder, f"it is inside the job's input {path}")
    if held:
        raise _refuse(folder, f"it holds the job's own inputs ({', '.join(held)}); choose another --output-dir")


def _refuse_links(folder: Path) -> None:
    links = [name for name in RUN_OUTPUTS if (folder / name).is_symlink()]
    if links:
        raise _refuse(
            folder, f"{', '.join(links)} is a symbolic link; a run writes and prunes its outputs in place, "
            "so they are never links (remove the link or choose another folder)",
        )


def read_run_record(folder: Path) -> dict[str, Any] | None:
    """``run.json`` of a run we wrote (it carries the marker), else None."""
    try:
        record = json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    marker = record.get(MARKER_KEY) if isinstance(record, dict) else None
    if not isinstance(marker, dict) or not isinstance(marker.get("outputs"), list):
        return None
    return record


def _listed_outputs(folder: Path, record: dict[str, Any]) -> tuple[Path, ...]:
    """What the earlier run's marker lists, as paths in ``folder`` (plus the ``*.tmp`` a kill may
    have left of each): plain names that a run writes, never a path elsewhere."""
    names = [name for name in record[MARKER_KEY]["outputs"] if isinstance(name, str) and name in RUN_OUTPUTS]
    suffixes = ("", TMP_SUFFIX, ".old" + TMP_SUFFIX)
    return tuple(folder / f"{name}{suffix}" for name in names for suffix in suffixes)


def lightning_checkpoint(folder: Path) -> Path | None:
    """The built-in loop's resume checkpoint in ``folder``, if there is one."""
    last = folder / "checkpoints" / LAST_CHECKPOINT
    return last if last.is_file() else None


def plan_run_folder(
    output_dir: str | Path, inputs: Iterable[Path], resume: bool, overwrite: bool,
    last_checkpoint: Callable[[Path], Path | None] = lightning_checkpoint,
) -> RunFolderPlan:
    """Check the run folder before anything is written; ``RunError`` says why it cannot be used.
    ``last_checkpoint`` finds what ``--resume`` continues from (the training backend's kind)."""
    folder = _checked_path(output_dir)
    _refuse_inputs(folder, inputs)
    _refuse_links(folder)
    entries = sorted(os.listdir(folder)) if folder.is_dir() else []
    record = read_run_record(folder) if entries else None
    if record is None:
        if entries:
            shown = ", ".join(entries[:SHOWN_ENTRIES])
            if len(entries) > SHOWN_ENTRIES:
                shown += f" and {len(entries) - SHOWN_ENTRIES} more"
            raise _refuse(
                folder, f"it holds files that are not an rft run ({shown}); a run starts in an empty or new "
                "folder (a run folder written before run.json had its marker: remove its outputs yourself)",
            )
        if resume:
            logger.warning("nothing to resume in %s: starting from step 0", folder)
        return RunFolderPlan(folder)
    last = last_checkpoint(folder) if resume else None
    if last is not None:
        return RunFolderPlan(folder, record, resume_from=last)
    if resume:
        logger.warning("nothing to resume in %s (no checkpoint in checkpoints/): starting from step 0", folder)
    elif not overwrite:
        raise RunError(
            f"{folder} already holds a run; continue it with --resume, replace it with --overwrite "
            "(which deletes only that run's outputs), or choose another --output-dir"
        )
    return RunFolderPlan(folder, record, remove=_listed_outputs(folder, record))


def _remove(path: Path) -> None:
    """Delete one output; a link is unlinked, never followed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def prepare_run_folder(plan: RunFolderPlan) -> None:
    """Make the folder ready (everything was checked): remove an earlier run's listed outputs for
    a fresh start, or a killed run's ``*.tmp`` for a resume; create the folder."""
    for path in plan.remove:
        _remove(path)
    if plan.resume_from is not None:
        for name in RUN_OUTPUTS:
            for suffix in (TMP_SUFFIX, ".old" + TMP_SUFFIX):
                _remove(plan.folder / f"{name}{suffix}")
        remove_stale_temporaries(plan.folder / "checkpoints", plan.folder / "best")
    plan.folder.mkdir(parents=True, exist_ok=True)
