"""``trainer.report_to``: the metrics of ``metrics.csv`` also reach TensorBoard, W&B and MLflow
(real loggers, offline: W&B's offline mode, an MLflow file store in the run folder); and every
saved model (``final/``, ``best/step-N/``) carries its model card."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from train_jobs import RFT, chat, metric_rows, write_job

GRADER = {"type": "string_check", "name": "says_a", "input": "{{ sample.output_text }}",
          "reference": "a", "operation": "like"}


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory, tiny_model_path) -> Path:
    folder = tmp_path_factory.mktemp("report-to")
    job = write_job(
        folder, tiny_model_path, GRADER, [{"messages": chat(f"question {n}")} for n in range(4)],
        [{"messages": chat("held out")}], {"batch_size": 2, "n_epochs": 1, "eval_interval": 1},
        num_generations=2, max_completion_length=4, save_top_k=2, run_name="logged",
    )
    environment = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_PROJECT": "rft-tests",
                   "MLFLOW_ALLOW_FILE_STORE": "true"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.run(
        [RFT, "train", str(job), "--no-progress", "--set", "trainer.report_to=[tensorboard, wandb, mlflow]"],
        capture_output=True, text=True, timeout=300, env=environment,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return folder / "run"


def test_every_logger_gets_the_metric_names_of_metrics_csv(logged_run, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the run's file store back
    rows = metric_rows(logged_run / "metrics.csv")
    assert [int(row["step"]) for row in rows if row["train_reward_mean"]] == [1, 2]
    # TensorBoard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logged_run / "tensorboard")).Reload()
    assert [event.step for event in events.Scalars("train_reward_mean")] == [1, 2]
    assert {"valid_reward_mean", "train/says_a_reward_mean", "loss", "timing/full_iteration_s"} <= set(
        events.Tags()["scalars"])
    # MLflow: a file store in the run folder, the run named as the job says
    from mlflow.tracking import MlflowClient

    client = MlflowClient((logged_run / "mlruns").as_uri())
    [run] = client.search_runs([client.get_experiment_by_name("rft").experiment_id])
    assert run.info.run_name == "logged"
    assert [metric.step for metric in client.get_metric_history(run.info.run_id, "train_reward_mean")] == [1, 2]
    assert {"valid_reward_mean", "train/says_a_reward_mean", "loss"} <= set(run.data.metrics)
    assert run.data.params["num_generations"] == "2"
    # W&B, offline: the run's record file holds the metric names and the run's name
    [record] = (logged_run / "wandb").glob("offline-run-*/run-*.wandb")
    data = record.read_bytes()
    for name in (b"train_reward_mean", b"valid_reward_mean", b"train/says_a_reward_mean", b"logged", b"rft-tests"):
        assert name in data, name


def test_final_and_every_best_model_carry_a_model_card(logged_run):
    summary = json.loads((logged_run / "summary.json").read_text())
    best = summary["best_checkpoints"]
    assert len(best) == 2
    for info in best:
        card = (Path(info["path"]) / "README.md").read_text()
        assert f"`valid_reward_mean` **{info['valid_reward_mean']:.4f}** at step {info['step']}" in card
        assert f"from_pretrained('{info['path']}')" in card
        assert '"name": "says_a"' in card and "report_to:" in card  # the grader JSON and the job
    final = (logged_run / "final" / "README.md").read_text()
    top = best[0]
    assert f"best of the run: `valid_reward_mean` **{top['valid_reward_mean']:.4f}** at step {top['step']}" in final
    assert final.startswith("---\nlibrary_name: transformers\n")
    # what the card says to run works
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoModelForCausalLM.from_pretrained(logged_run / "final").config.model_type == "olmo2"
    assert AutoTokenizer.from_pretrained(logged_run / "final").chat_template


def test_a_logger_that_is_not_installed_or_cannot_log_is_a_job_error(tmp_path, tiny_model_path, monkeypatch):
    from rft_plugins.training import loggers
    from rft_plugins.training.job import JobError, load_job

    job = write_job(tmp_path, tiny_model_path, GRADER, [{"messages": chat("q")}], [], {}, report_to="mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(JobError, match="trainer.report_to: mlflow: set MLFLOW_TRACKING_URI"):
        load_job(job)
    monkeypatch.setitem(loggers.LOGGERS, "wandb", "wandb_is_not_here")
    job.write_text(job.read_text().replace("report_to: mlflow", "report_to: [wandb]"))
    with pytest.raises(JobError, match=r"job.yaml:\d+: trainer.report_to: wandb is not installed"):
        load_job(job)
