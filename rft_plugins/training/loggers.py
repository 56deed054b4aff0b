"""Where a run's metrics go: ``metrics.csv`` always (the run report and the reward curve read it),
then what ``trainer.report_to`` names, as TRL names them: ``tensorboard`` (the default),
``wandb`` and ``mlflow``.

W&B and MLflow are configured as their users expect, by their own environment variables
(``WANDB_PROJECT``, ``WANDB_MODE=offline``, ``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``);
each run is named ``trainer.run_name`` (default: the run folder's name). W&B writes its local
files in the run folder's ``wandb/``; MLflow without a tracking URI logs into the run folder's
``mlruns/`` (a file store, which MLflow 3 allows only with ``MLFLOW_ALLOW_FILE_STORE=true``).
Every logger numbers rows by optimisation steps completed, like ``metrics.csv``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import Job

#: ``report_to`` names, and the distribution each needs
LOGGERS = {"csv": None, "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
#: what ``report_to: all`` means: every one of these that is installed
ALL = ("tensorboard", "wandb", "mlflow")
DEFAULT_PROJECT = "rft"


def _installed(name: str) -> bool:
    module = LOGGERS[name]
    return module is None or importlib.util.find_spec(module) is not None


def installed_loggers() -> list[str]:
    """The loggers ``report_to: all`` stands for here."""
    return [name for name in ALL if _installed(name)]


def _file_store_refused() -> bool:
    """MLflow 3 refuses a file store (``mlruns/``) unless ``MLFLOW_ALLOW_FILE_STORE`` is true."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:  # an MLflow from before the rule
        return False
    return not MLFLOW_ALLOW_FILE_STORE.get()


def missing_logger(names: list[str]) -> str | None:
    """Why a logger in ``names`` cannot log here (not installed, nowhere to log to), or None."""
    for name in names:
        if not _installed(name):
            return f"{name} is not installed (pip install {LOGGERS[name]})"
    if "mlflow" in names and not os.environ.get("MLFLOW_TRACKING_URI") and _file_store_refused():
        return ("mlflow: set MLFLOW_TRACKING_URI (a tracking server, or sqlite:///mlflow.db), or "
                "MLFLOW_ALLOW_FILE_STORE=true to log into the run folder's mlruns/")
    return None


def run_name(job: "Job", folder: Path) -> str:
    """The run's name in W&B and MLflow."""
    return job.trainer.run_name or folder.name


def mlflow_tracking_uri(folder: Path) -> str:
    """``MLFLOW_TRACKING_URI``, else a file store in the run folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (folder / "mlruns").as_uri()


def lightning_loggers(job: "Job", folder: Path) -> list[Any]:
    """The Lightning loggers of a run in ``folder``: the CSV file, then ``report_to``'s."""
    from lightning.pytorch.loggers import MLFlowLogger, WandbLogger

    from .outputs import ResumableCSVLogger, StepsCompleted, StepsCompletedTensorBoardLogger

    class StepsCompletedWandbLogger(StepsCompleted, WandbLogger):
        """W&B, with steps numbered like ``metrics.csv``."""

    class StepsCompletedMLFlowLogger(StepsCompleted, MLFlowLogger):
        """MLflow, with steps numbered like ``metrics.csv``."""

    loggers: list[Any] = [ResumableCSVLogger(folder)]
    name = run_name(job, folder)
    for logger in job.trainer.report_to:
        if logger == "tensorboard":
            loggers.append(StepsCompletedTensorBoardLogger(str(folder), name="tensorboard", version=""))
        elif logger == "wandb":
            project = os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT)
            loggers.append(StepsCompletedWandbLogger(name=name, project=project, save_dir=str(folder)))
        elif logger == "mlflow":
            experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_PROJECT)
            loggers.append(StepsCompletedMLFlowLogger(
                experiment_name=experiment, run_name=name, tracking_uri=mlflow_tracking_uri(folder)
            ))
    return loggers
