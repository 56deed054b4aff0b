"""The plugin contract, typed: for every kind a plugin can register, what its factory is given and
what the object it returns must offer.

A registration hook receives ``register(name, factory)``; ``Register[GraderFactory]`` and its
siblings say which factory each hook takes, so a type checker holds a plugin (ours included:
``default_plugins/`` annotates its hooks this way) to the protocol of its kind::

    from rft_plugins import hookimpl
    from rft_plugins.contract import GraderFactory, Register

    @hookimpl
    def rft_register_graders(register: Register[GraderFactory]) -> None:
        register("my_grader", MyGrader)

The protocols of the kinds that only run where training is (samplers, reward shapers, tool-call
parsers, training backends) live beside the code that calls them and are named here for type
checkers only, so importing this module never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, TypeVar, Union, runtime_checkable

from .graders.types import Grade, Sample

if TYPE_CHECKING:
    from .judges.base import JudgeBackend
    from .sampling.base import Sampler
    from .sampling.tool_calls import ToolCallParser
    from .shaping.base import RewardShaper
    from .training.backends import TrainingBackend
    from .training.job.settings import ResolvedSettings

#: what a grader returns for one sample: a reward in [0, 1], a ``Grade`` with details, or None
#: (the grader does not apply to this sample)
GradeResult = Union[float, Grade, None]


@runtime_checkable
class Grader(Protocol):
    """A grader plugin's object. ``grade`` may also take ``trainer_state=None`` (the training's
    steps and epochs, ``rft_plugins.graders.trainer_state``); an ``async def agrade`` of the same
    shape may replace or accompany it (``AsyncGrader``). Optional: ``close()``, ``io_bound``,
    ``thread_safe`` (``rft_plugins.graders.runner.LoadedGrader``)."""

    def grade(self, sample: Sample, item: dict[str, Any]) -> GradeResult: ...


@runtime_checkable
class AsyncGrader(Protocol):
    """A grader whose work waits on I/O: ``agrade`` runs on the event loop, many at once."""

    async def agrade(self, sample: Sample, item: dict[str, Any]) -> GradeResult: ...


@runtime_checkable
class DataSource(Protocol):
    """A data source plugin's object: ``load(location)`` gives the rows of a file, a hub dataset or
    an in-memory object. Optional: a static ``matches(location) -> bool`` on the factory (the
    source picked when a job names none) and ``validates_rows = True`` when ``load`` already checks
    each row as an RFT row (otherwise the loader does)."""

    def load(self, location: Any) -> Iterable[dict[str, Any]]: ...


#: ``factory(config)``: the grader's JSON object, ``type`` and ``name`` included; may raise
#: ``GraderConfigError`` for a bad config
GraderFactory = Callable[[dict[str, Any]], Union[Grader, AsyncGrader]]
#: ``factory(options)``: the job's ``trainer.data_source_options``
DataSourceFactory = Callable[[dict[str, Any]], DataSource]
#: ``factory(tokenizer, options)``: the policy's tokenizer and ``trainer.sampler_options``
SamplerFactory = Callable[[Any, dict[str, Any]], "Sampler"]
#: ``factory(config, settings)``: one ``trainer.reward_shapers`` entry and the run's settings
RewardShaperFactory = Callable[[dict[str, Any], "ResolvedSettings"], "RewardShaper"]
#: ``factory(model, options)``: the grader's ``model`` and its ``judge`` object's options
JudgeBackendFactory = Callable[[str, dict[str, Any]], "JudgeBackend"]
#: ``factory(tokenizer, options)``: the policy's tokenizer and ``trainer.tool_call_parser_options``
ToolCallParserFactory = Callable[[Any, dict[str, Any]], "ToolCallParser"]
#: ``factory()``: an engine ``rft train --backend NAME`` trains with
TrainingBackendFactory = Callable[[], "TrainingBackend"]

FactoryT = TypeVar("FactoryT", bound=Callable[..., Any])
#: the ``register`` callback a registration hook receives, for factories of one kind
Register = Callable[[str, FactoryT], None]

__all__ = [
    "AsyncGrader", "DataSource", "DataSourceFactory", "GradeResult", "Grader", "GraderFactory",
    "JudgeBackendFactory", "Register", "RewardShaperFactory", "SamplerFactory", "ToolCallParserFactory",
    "TrainingBackendFactory",
]
