"""What the lifecycle hooks (``rft_on_train_start``, ``rft_on_validation_end``, ``rft_on_train_end``)
receive as ``module``, whatever the training backend: the Lightning loop's ``RFTModule`` or the
TRL backend's ``TRLModule``. Typing only: nothing here is imported at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from .settings import ResolvedSettings


class TrainerControl(Protocol):
    """The part of ``module.trainer`` a hook may use: ``should_stop = True`` ends training after
    this step; ``is_global_zero`` is True in the one process (of a data-parallel run) that writes files."""

    should_stop: bool

    @property
    def is_global_zero(self) -> bool: ...


class RunModule(Protocol):
    """The policy being trained, its tokenizer, the run's resolved settings and its trainer."""

    @property
    def trainer(self) -> TrainerControl: ...

    @property
    def model(self) -> torch.nn.Module: ...

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase: ...

    @property
    def settings(self) -> ResolvedSettings: ...

    def save_hf(self, path: str) -> None:
        """Save the model (the adapter alone with LoRA) and tokenizer as a Hugging Face folder."""
