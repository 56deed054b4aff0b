"""SIGTERM and SIGINT end a run the way a person expects: with a checkpoint, a message, and an
exit status that says the run did not finish.

Without this, Lightning turns SIGTERM into ``SystemExit(None)`` (status 0, no summary, no final
model) and SIGINT into status 1 with whatever was last saved. Here the first signal asks the
run to stop at its next safe moment: the step in progress finishes (and its validation, when one
is due), ``checkpoints/last.ckpt`` is written, and ``RunInterrupted`` ends ``train()``; ``rft
train`` prints one line and exits 128 + the signal number (143 for SIGTERM, 130 for SIGINT). A
second signal stops at once, from the last checkpoint written.

Lightning installs its own SIGTERM handler when ``fit`` starts (chaining ours): it would end the
run at the end of the step, before our checkpoint, so the loop takes the signal back once
training starts (``reclaim``). Data-parallel runs keep Lightning's handling: every process must
stop at the same step, which Lightning's broadcast arranges and a per-process flag cannot.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

from ..errors import RFTError

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(RFTError):
    """A signal ended the run before its last step; ``exit_status`` is the shell's 128 + signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
        self.exit_status = 128 + signum


class StopRequests:
    """Records the first stop signal while ``listening()``; a second one raises at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._listening = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise RunInterrupted(signum, f"stopped at once by a second {signal.Signals(signum).name}; "
                                 "resume from the last checkpoint with --resume")
        self.signum = signum
        logger.warning(
            "%s received: finishing the current step, saving a checkpoint, then stopping "
            "(send it again to stop at once)", self.name,
        )

    @contextmanager
    def listening(self, enabled: bool = True) -> Iterator["StopRequests"]:
        """Handle SIGTERM and SIGINT in this block when ``enabled`` (signal handlers belong to the
        main thread; elsewhere nothing is installed and signals keep their usual effect)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        self._listening = True
        try:
            yield self
        finally:
            self._listening = False
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def reclaim(self) -> None:
        """Put our handlers back over the ones a library installed since ``listening`` began."""
        if self._listening and threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, self._handle)

    def interrupted(self, step: int, total: int, saved: bool) -> RunInterrupted:
        """The error that ends the run now that its checkpoint (if any) is written."""
        where = (
            f"after step {step} of {total}; checkpoints/last.ckpt holds step {step}"
            if saved else f"before step {step + 1} of {total} began training"
        )
        return RunInterrupted(self.signum or signal.SIGTERM, f"stopped by {self.name} {where}; continue with --resume")
