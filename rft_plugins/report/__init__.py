"""The run report: ``report.html``, one static page per run folder (curves, error flags, time per
phase, learning rate, a sample browser), rebuilt from the folder's files by ``rft report`` and
written by ``rft train`` at the end of every run. See docs/report.md."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from markupsafe import escape

from ..atomic_files import atomic_write_text

from .render import render_report
from .run_data import ReportError, RunData, read_run

__all__ = ["REPORT_FILE", "ReportError", "RunData", "read_run", "render_report", "write_report", "write_run_report"]

REPORT_FILE = "report.html"
logger = logging.getLogger(__name__)


def write_report(folder: str | Path, output: str | Path | None = None) -> Path:
    """Build the report of the run in ``folder`` into ``output`` (default ``folder/report.html``)."""
    path = Path(output) if output is not None else Path(folder) / REPORT_FILE
    atomic_write_text(path, render_report(read_run(folder)))
    return path


def write_run_report(folder: str | Path) -> Path:
    """``write_report`` for ``rft train``: a report that cannot be built must not fail a finished run
    (its model is saved, its summary not yet), so the page then says why, and how to rebuild it."""
    try:
        return write_report(folder)
    except Exception as error:  # noqa: BLE001 - whatever it is, the run's own outputs come first
        logger.warning("the run report could not be built (%s); rebuild it with `rft report %s`", error, folder)
        path = Path(folder) / REPORT_FILE
        atomic_write_text(path, (
            "<!doctype html><meta charset='utf-8'><title>RFT run report</title>"
            f"<p>The report could not be built: {escape(f'{type(error).__name__}: {error}')}</p>"
            f"<p>Rebuild it with <code>rft report {escape(shlex.quote(str(folder)))}</code>.</p>"
        ))
        return path
