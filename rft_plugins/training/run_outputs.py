"""What every training backend writes into its run folder, the same way: ``run.json`` before the
first step; after the last, the final model with its card, the reward curve, the samples table,
the run report, ``summary.json``, and the upload to the hub when the job asks for one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..atomic_files import atomic_write_text
from .checkpoints import atomic_directory, best_checkpoints
from .interrupts import StopRequests
from .model_card import write_model_card
from .run_folder import MARKER_KEY, prepare_run_folder, run_marker

if TYPE_CHECKING:
    from .backends import RunRequest
    from .best_checkpoints import BestCheckpoints


@dataclass
class RunContext:
    """What a backend's run holds besides its trainer: the run folder, the stop signals it
    listens for, and ``best`` (best checkpoints and early stopping; None when blocked, see
    ``best_checkpoints_blocked``)."""

    output_dir: Path
    best: "BestCheckpoints | None" = None
    stop: StopRequests = field(default_factory=StopRequests)  # SIGTERM / SIGINT during the run

    @property
    def best_dir(self) -> Path:
        """Where the best models go, one ``step-N`` folder each."""
        return self.output_dir / "best"

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping ended the run (before its last step)."""
        return self.best is not None and self.best.stopped_early


@dataclass
class RunResult:
    """Where everything went, and how the run ended."""

    output_dir: Path
    final_step: int
    total_steps: int
    stopped_early: bool
    resumed_from_step: int | None
    metrics: dict[str, float]
    best_checkpoints: list[dict[str, Any]]
    files: dict[str, str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        return cls(**{**data, "output_dir": Path(data["output_dir"])})


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (dataclasses and pydantic models included), for records and hparams."""
    def fallback(item: Any) -> Any:
        return item.model_dump() if hasattr(item, "model_dump") else str(item)

    return json.loads(json.dumps(value, default=fallback))


def hyperparameters(request: "RunRequest") -> dict[str, Any]:
    """The run's settings and step plan, as loggers and ``run.json`` record them."""
    return plain({**asdict(request.settings), **asdict(request.plan)})


#: the name under which ``RFT_DISABLE_PLUGINS`` turns best checkpoints and early stopping off
#: (theirs when they were a built-in plugin; ``BestCheckpoints`` is no plugin any more)
BEST_CHECKPOINTS_BLOCK_NAME = "rft_plugins.default_plugins.validation_callbacks"


def best_checkpoints_blocked() -> bool:
    """True when ``RFT_DISABLE_PLUGINS`` names ``BEST_CHECKPOINTS_BLOCK_NAME``: no ``best/``, no early stop."""
    from ..plugins import get_plugin_manager

    return get_plugin_manager().is_blocked(BEST_CHECKPOINTS_BLOCK_NAME)


def run_context(request: "RunRequest") -> RunContext:
    """The run's ``RunContext``: its ``BestCheckpoints`` keep models with their model card."""
    from .best_checkpoints import BestCheckpoints

    job = request.job

    def card(folder: Path, step: int, reward: float, destination: Path) -> None:
        write_model_card(folder, job, step, reward, where="this checkpoint (one of the run's best)",
                         load_from=destination)

    context = RunContext(request.folder)
    if not best_checkpoints_blocked():
        context.best = BestCheckpoints(context.best_dir, job.trainer.save_top_k, job.trainer.early_stopping_patience,
                                       model_card=card)
    return context


def start_run_folder(request: "RunRequest", resumed_from: int | None, extra: dict[str, Any] | None = None) -> None:
    """Everything is checked: prepare the folder (first process only), drop metric rows a killed
    run logged past its checkpoint, record the job in ``run.json`` (with ``extra``)."""
    from .outputs import truncate_metrics

    if request.folder_plan is None:
        return
    folder = request.folder
    prepare_run_folder(request.folder_plan)
    if resumed_from is not None:
        truncate_metrics(folder / "metrics.csv", resumed_from)
    record = {
        MARKER_KEY: run_marker(), "job": request.job.model_dump(mode="json"), "plan": asdict(request.plan),
        "settings": hyperparameters(request), **(extra or {}),
    }
    atomic_write_text(folder / "run.json", json.dumps(record, indent=2, default=str))


def hub_repository(request: "RunRequest") -> str | None:
    """The hub repository ``push_to_hub`` uploads to (TRL's default: the run folder's name)."""
    trainer = request.job.trainer
    return (trainer.hub_model_id or request.folder.name) if trainer.push_to_hub else None


def write_outputs(
    request: "RunRequest", save_model: Callable[[Path], None], records: list[dict[str, Any]],
    final_step: int, metrics: dict[str, float], resume_checkpoint: Path | None,
) -> dict[str, str]:
    """``final/`` (the model, saved by ``save_model``, and its card), the reward curve, the samples
    table, the run report, then the upload to the hub; returns the files for the summary."""
    from ..report import write_run_report
    from .outputs import plot_reward_curve, write_samples

    folder, job = request.folder, request.job
    best = best_checkpoints(folder / "best")
    repository = hub_repository(request)
    with atomic_directory(folder / "final") as temporary:
        save_model(temporary)
        write_model_card(temporary, job, final_step, metrics.get("valid_reward_mean"), best[0] if best else None,
                         where="this model (the last step)", load_from=repository or folder / "final")
    files = {"final_model": str(folder / "final")}
    if resume_checkpoint is not None:
        files["resume_checkpoint"] = str(resume_checkpoint)
    csv_path = folder / "metrics.csv"
    files["metrics_csv"] = str(csv_path)
    if "tensorboard" in job.trainer.report_to:
        files["tensorboard"] = str(folder / "tensorboard")
    if csv_path.is_file():
        title = f"{Path(job.model).name}: {job.grader.get('name', job.grader.get('type'))}"
        files["reward_curve"] = str(plot_reward_curve(csv_path, folder / "reward_curve.png", title=title))
    jsonl, markdown = write_samples(records, folder)
    files.update(samples_jsonl=str(jsonl), samples_table=str(markdown))
    if (folder / "best").is_dir():
        files["best_checkpoints"] = str(folder / "best")
    files["report"] = str(write_run_report(folder))  # made from the files written above
    if repository is not None:
        from ..hub import push_folder

        files["hub"] = push_folder(folder / "final", repository, job.trainer.hub_private_repo)
    return files


def finish_run(request: "RunRequest", result: RunResult) -> RunResult:
    """Write ``summary.json`` (first process only): the run is finished."""
    if request.folder_plan is not None:
        atomic_write_text(request.folder / "summary.json", json.dumps(result.to_dict(), indent=2, default=str))
    return result
