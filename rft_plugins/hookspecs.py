"""The hooks a plugin may implement. Every hook is called with keyword arguments only.

Registration hooks receive ``register(name, factory)``, typed by kind in ``contract`` (what each
factory is given and what its object must offer); lifecycle hooks are named for the moment they
run. An implementation may accept fewer arguments than the spec offers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .contract import (
    DataSourceFactory,
    GraderFactory,
    JudgeBackendFactory,
    Register,
    RewardShaperFactory,
    SamplerFactory,
    ToolCallParserFactory,
    TrainingBackendFactory,
)
from .project import hookspec

if TYPE_CHECKING:  # types only: loading plugins never imports the training stack
    from .training.job import Job
    from .training.lifecycle import RunModule
    from .training.settings import ResolvedSettings


@hookspec
def rft_register_graders(register: Register[GraderFactory]) -> None:
    """Register grader factories: ``register("my_type", factory)``.

    ``factory(config: dict)`` receives the grader's JSON object (``type`` and ``name`` included)
    and returns an object with ``grade(sample, item)`` (or ``async agrade``) returning a float,
    ``None`` (not applicable) or a ``Grade``. It may raise ``GraderConfigError`` for bad config.
    A ``grade(sample, item, trainer_state=None)`` is also given where training is (steps and
    epochs done, the last step; ``rft_plugins.graders.trainer_state``), under either engine.
    """


@hookspec
def rft_register_data_sources(register: Register[DataSourceFactory]) -> None:
    """Register data-source factories that turn a file or object into dataset rows (dicts)."""


@hookspec
def rft_register_samplers(register: Register[SamplerFactory]) -> None:
    """Register rollout samplers: they turn prompts into G completions with token log-probs."""


@hookspec
def rft_register_reward_shapers(register: Register[RewardShaperFactory]) -> None:
    """Register reward shapers: they turn grades into advantages, applied in the job's order."""


@hookspec
def rft_register_judge_backends(register: Register[JudgeBackendFactory]) -> None:
    """Register judge backends for ``score_model`` / ``label_model`` graders (HTTP, local HF...)."""


@hookspec
def rft_register_tool_call_parsers(register: Register[ToolCallParserFactory]) -> None:
    """Register tool-call parsers: ``factory(tokenizer, options: dict)`` returns an object whose
    ``parse(completion, prompt, tools)`` splits a completion (decoded with its special tokens) into
    its text and OpenAI-shaped tool calls (``rft_plugins.sampling.tool_calls.ParsedCompletion``)."""


@hookspec
def rft_register_training_backends(register: Register[TrainingBackendFactory]) -> None:
    """Register training backends, the engines ``rft train --backend NAME`` trains a job with:
    ``factory()`` returns an object with ``check(job)``, ``last_checkpoint(folder)`` and
    ``run(request) -> RunResult`` (``rft_plugins.training.backends.TrainingBackend``). Built in:
    ``lightning``; the TRL adapter adds ``trl``."""


@hookspec
def rft_on_train_start(job: Job | None, settings: ResolvedSettings, module: RunModule) -> None:
    """Called once before the first optimisation step (of a resumed run too), under either backend.

    ``job`` is the job being trained (None for an ``RFTModule`` built from settings alone, outside
    ``rft train``); ``settings`` are its values with "auto" resolved (batch size, steps, ...);
    ``module`` is the model being trained (``rft_plugins.training.lifecycle.RunModule``).
    """


@hookspec
def rft_on_validation_end(
    step: int, metrics: dict[str, float], samples: list[dict[str, Any]], module: RunModule
) -> None:
    """Called after each validation pass with its metrics (``valid_reward_mean`` and per grader).

    ``step`` counts optimisation steps completed (0 for the baseline before the first);
    ``samples`` holds the graded validation samples (``step``, ``prompt``, ``completion``,
    ``reward``, ``sub_rewards``, ``errors``). Set ``module.trainer.should_stop = True`` to stop
    training early. The built-in best checkpoints and early stopping (``BestCheckpoints``) act
    after every implementation of this hook has run.
    """


@hookspec
def rft_on_train_end(metrics: dict[str, float], output_dir: str, module: RunModule) -> None:
    """Called once after training finished and the run folder's outputs were written, with each
    metric's last value and the run's output folder."""
