"""``rft train`` end to end on a tiny model: outputs checked by content, bad inputs, the API, the demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from train_jobs import chat as chat_of, line_of, metric_rows, run_rft, steps_with, write_job as write_job_files

from rft_plugins import hookimpl
from rft_plugins.data.demo import answer_check

GRADER = {
    "type": "multi",
    "name": "answer",
    "graders": {
        "mentions": answer_check("mentions", "like"),
        "nonempty": {**answer_check("nonempty", "ne"), "reference": ""},
    },
    "calculate_output": "0.5 * mentions + 0.5 * nonempty",
}


def chat(text: str) -> list[dict]:
    return chat_of(text, system="Answer in one letter.")


def write_job(folder: Path, model: Path, **trainer) -> Path:
    """A small job: 6 training prompts (2 without ``answer``, so the grader errors on them), 3 valid."""
    train = [{"messages": chat(f"train question {i}"), "answer": "a"} for i in range(4)]
    train += [{"messages": chat(f"train question {i} (no reference)")} for i in range(4, 6)]
    valid = [{"messages": chat(f"valid question {i}"), "answer": "e"} for i in range(3)]
    hyperparameters = {"n_epochs": 2, "batch_size": 2, "eval_interval": 1, "learning_rate_multiplier": 1}
    return write_job_files(
        folder, model, GRADER, train, valid, hyperparameters,
        num_generations=2, max_completion_length=8, learning_rate=1e-2, **trainer,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model_path):
    """One `rft train` subprocess, 4 steps, validating every step; shared by the output checks."""
    folder = tmp_path_factory.mktemp("train")
    job = write_job(folder, tiny_model_path)
    process = run_rft(job, "--max-steps", "4", "--json", "--no-progress")
    assert process.returncode == 0, process.stderr[-3000:]
    return folder / "run", json.loads(process.stdout)


def test_summary_reports_the_final_step(finished_run):
    run, summary = finished_run
    assert summary["final_step"] == summary["total_steps"] == 4
    assert summary["stopped_early"] is False and summary["resumed_from_step"] is None
    assert Path(summary["output_dir"]) == run
    assert json.loads((run / "summary.json").read_text())["final_step"] == 4
    assert 0 <= summary["metrics"]["valid_reward_mean"] <= 1


def test_metrics_csv_has_a_row_per_step_and_openai_named_columns(finished_run):
    run, _ = finished_run
    rows = metric_rows(run / "metrics.csv")
    columns = set(rows[0])
    expected = {
        "step", "loss", "kl", "clip_ratio", "completion_length_mean", "train_reward_mean", "valid_reward_mean",
        "train/answer_reward_mean", "train/mentions_reward_mean", "train/nonempty_reward_mean",
        "valid/mentions_reward_mean", "train/invalid_variable_error_rate", "valid/invalid_variable_error_rate",
        "timing/sampling_s", "timing/full_iteration_s",
    }
    assert expected <= columns, expected - columns
    assert steps_with(rows, "train_reward_mean") == [1, 2, 3, 4]
    assert steps_with(rows, "valid_reward_mean") == [0, 1, 2, 3, 4]  # step 0: the untrained model's baseline
    for row in rows:
        for column in ("train_reward_mean", "valid_reward_mean"):
            if row[column]:
                assert 0.0 <= float(row[column]) <= 1.0
        if row["completion_length_mean"]:
            assert 0 < float(row["completion_length_mean"]) <= 8
    assert (run / "hparams.yaml").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_a_grader_erroring_on_some_samples_costs_only_their_reward(finished_run):
    run, summary = finished_run
    rows = metric_rows(run / "metrics.csv")
    error_rates = [float(row["train/invalid_variable_error_rate"]) for row in rows if row["train/invalid_variable_error_rate"]]
    # the first epoch (3 steps) sees both rows without a reference: some samples flagged, never all
    assert any(rate > 0 for rate in error_rates[:3])
    assert all(rate < 1 for rate in error_rates)
    assert all(float(row["valid/invalid_variable_error_rate"]) == 0 for row in rows if row["valid/invalid_variable_error_rate"])
    assert summary["final_step"] == 4


def test_the_three_best_checkpoints_are_kept_and_load_with_from_pretrained(finished_run, tiny_model_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run, summary = finished_run
    valid = {int(row["step"]): float(row["valid_reward_mean"]) for row in metric_rows(run / "metrics.csv") if row["valid_reward_mean"]}
    kept = sorted((run / "best").iterdir())
    assert len(kept) == 3 and not list(run.rglob("*.tmp"))
    infos = [json.loads((folder / "rft_checkpoint.json").read_text()) for folder in kept]
    kept_steps = {info["step"] for info in infos}
    dropped = set(valid) - kept_steps
    assert len(valid) == 5 and len(dropped) == 2  # the baseline (step 0) and steps 1-4 competed
    assert min(info["valid_reward_mean"] for info in infos) >= max(valid[step] for step in dropped)
    for info in infos:
        assert info["valid_reward_mean"] == pytest.approx(valid[info["step"]])
    assert [entry["step"] for entry in summary["best_checkpoints"]] == [
        info["step"] for info in sorted(infos, key=lambda i: (-i["valid_reward_mean"], -i["step"]))
    ]
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    for folder in kept + [run / "final"]:
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert tokenizer.chat_template and model.config.vocab_size == base.config.vocab_size
    final = AutoModelForCausalLM.from_pretrained(run / "final")
    changed = [
        name for name, parameter in final.state_dict().items() if not torch.equal(parameter, base.state_dict()[name])
    ]
    assert changed, "four optimisation steps at lr 1e-2 left every weight as it was"


def test_reward_curve_is_a_real_png(finished_run):
    from matplotlib.image import imread

    run, _ = finished_run
    png = run / "reward_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000
    height, width, _ = imread(png).shape
    assert (width, height) == (700, 420)


def test_samples_table_has_prompts_completions_rewards_and_details(finished_run):
    run, _ = finished_run
    records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert {record["step"] for record in records} == {0, 1, 2, 3, 4}  # 0: the baseline before training
    assert len(records) == 5 * 3  # every validation, every valid prompt, eval_samples 1
    for record in records:
        assert record["prompt"].startswith("valid question ")
        assert isinstance(record["completion"], str)
        assert record["reward"] == pytest.approx(0.5 * record["sub_rewards"]["mentions"] + 0.5 * record["sub_rewards"]["nonempty"])
    table = (run / "samples.md").read_text()
    assert "| # | prompt | completion | reward | grader details |" in table
    assert "Step 4: 3 samples" in table
    for index in range(3):
        assert f"valid question {index}" in table
    assert "mentions=" in table and "nonempty=" in table
    body = [line for line in table.splitlines() if line.startswith("| ") and "valid question" in line]
    assert len(body) == 3 and all(line.count(" | ") == 4 for line in body)


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("malformed_jsonl", "train.jsonl:3: invalid JSON"),
        ("missing_grader_field", "method.reinforcement.grader.graders.mentions.reference: required field is missing"),
        ("unknown_grader_type", "method.reinforcement.grader.graders.mentions.type: unknown grader type 'fuzzy'"),
        ("missing_model", "model: "),
    ],
)
def test_bad_input_gives_one_clear_error_and_exit_code_2(tmp_path, tiny_model_path, problem, expected):
    job = write_job(tmp_path, tiny_model_path)
    data = yaml.safe_load(job.read_text())
    mentions = data["method"]["reinforcement"]["grader"]["graders"]["mentions"]
    if problem == "malformed_jsonl":
        lines = (tmp_path / "train.jsonl").read_text().splitlines()
        lines[2] = lines[2][:-5]
        (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    elif problem == "missing_grader_field":
        del mentions["reference"]
    elif problem == "unknown_grader_type":
        mentions["type"] = "fuzzy"
    else:
        data["model"] = str(tmp_path / "no-model-here")
    job.write_text(yaml.safe_dump(data, sort_keys=False))
    process = run_rft(job, "--no-progress", timeout=60)
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("Error: ") and expected in lines[0]
    if problem != "malformed_jsonl":
        assert str(job) in lines[0]  # the job file and line are named
    assert "Traceback" not in process.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "setting, field, marker, message",
    [
        ({"sampler_options": {"prompt_per_call": 2}}, "trainer.sampler_options.prompt_per_call", "prompt_per_call",
         "sampler 'transformers' (plugin rft_plugins.default_plugins.samplers): unknown field"),
        ({"precision": "banana"}, "trainer.precision", "precision", "'bf16-mixed'"),
        ({"accelerator": "cpu", "precision": "16-mixed"}, "trainer.precision", "precision", "needs a CUDA GPU"),
        ({"model_init_kwargs": {"dtype": "float8"}}, "trainer.model_init_kwargs.dtype", "dtype", "'bfloat16'"),
        ({"micro_batch_size": 3}, "trainer.micro_batch_size", "micro_batch_size",
         "3 does not divide the 4 samples of a step on each process (2 prompts x 2 generations); use one of 1, 2, 4"),
        ({"accelerator": "cpu", "devices": "many"}, "trainer.devices", "devices", "rejected by Lightning"),
        ({"accelerator": "cpu", "devices": 4, "strategy": "ddp"}, "method.reinforcement.hyperparameters.batch_size",
         "batch_size", "2 prompts per step do not split evenly over 4 processes"),
    ],
    ids=["sampler-options", "precision", "fp16-on-cpu", "dtype", "micro-batch", "devices", "batch-over-processes"],
)
def test_settings_rejected_once_the_model_loads_are_located_in_the_job_too(
    tmp_path, tiny_model_path, setting, field, marker, message
):
    """What only the sampler (it needs the tokenizer) or Lightning can check is still reported
    with the job's file, line and field, and before the run folder is touched."""
    from rft_plugins.training.job import JobError
    from rft_plugins.training.run import train

    job = write_job(tmp_path, tiny_model_path, **setting)
    with pytest.raises(JobError) as caught:
        train(job, progress_bar=False)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(job), line_of(job, marker), field)
    assert message in error.message and "\n" not in str(error)
    assert not (tmp_path / "run").exists()


def test_an_existing_run_is_not_overwritten_by_accident(finished_run):
    run, _ = finished_run
    job = run.parent / "job.yaml"
    process = run_rft(job, "--no-progress", timeout=60)
    assert process.returncode == 2 and "--resume" in process.stderr and "--overwrite" in process.stderr
    assert (run / "best").is_dir()


class HookRecorder:
    """A plugin that records the lifecycle hooks of a run."""

    def __init__(self):
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def rft_on_train_start(self, module):
        self.calls.append(("train_start", module.global_step))

    @hookimpl
    def rft_on_validation_end(self, step, metrics, samples):
        self.calls.append(("validation_end", (step, metrics["valid_reward_mean"], len(samples))))

    @hookimpl
    def rft_on_train_end(self, metrics, output_dir):
        self.calls.append(("train_end", (output_dir, metrics["valid_reward_mean"])))


def test_api_with_python_rows_fires_hooks_and_stops_early(tmp_path, tiny_model_path, fresh_plugins):
    from rft_plugins.training.run import train

    recorder = HookRecorder()
    fresh_plugins.get_plugin_manager().register(recorder, name="recorder")
    job = yaml.safe_load(write_job(tmp_path, tiny_model_path, early_stopping_patience=1, eval_on_start=False).read_text())
    # a grader that always gives 1: the second validation brings no gain, so training stops there
    job["method"]["reinforcement"]["grader"] = {
        "type": "string_check", "name": "always", "input": "x", "reference": "x", "operation": "eq",
    }
    rows = [{"messages": chat(f"in memory {i}")} for i in range(6)]
    result = train(job, train_rows=rows, valid_rows=rows[:2], max_steps=6, output_dir=tmp_path / "api", progress_bar=False)
    assert result.stopped_early and result.final_step == 2 and result.total_steps == 6
    assert result.metrics["valid_reward_mean"] == 1.0
    assert recorder.calls == [
        ("train_start", 0),
        ("validation_end", (1, 1.0, 2)),
        ("validation_end", (2, 1.0, 2)),
        ("train_end", (str(tmp_path / "api"), 1.0)),
    ]
    assert [info["step"] for info in result.best_checkpoints] == [2, 1]  # a tie ranks the later step first


def test_the_last_step_is_validated_when_the_interval_does_not_divide_it(tmp_path, tiny_model_path, fresh_plugins, capfd):
    import torch

    from rft_plugins.training.run import train

    recorder = HookRecorder()
    fresh_plugins.get_plugin_manager().register(recorder, name="recorder")
    job = write_job(tmp_path, tiny_model_path)
    data = yaml.safe_load(job.read_text())
    data["method"]["reinforcement"]["hyperparameters"]["eval_interval"] = 2
    data["trainer"]["eval_on_start"] = False  # the scheduled validations alone
    job.write_text(yaml.safe_dump(data))
    result = train(job, max_steps=3)
    run = tmp_path / "run"

    assert result.final_step == 3
    # the progress bar shows the step and the rewards, the final validation's included
    bar = capfd.readouterr().out.replace("\r", "\n")
    assert "step=3/3" in bar and f"valid_reward={result.metrics['valid_reward_mean']:.3f}" in bar
    assert f", reward={result.metrics['train_reward_mean']:.3f}" in bar
    validations = [value for name, value in recorder.calls if name == "validation_end"]
    assert [step for step, _, _ in validations] == [2, 3]  # every 2 steps, and the last
    rows = metric_rows(run / "metrics.csv")
    assert steps_with(rows, "valid_reward_mean") == [2, 3]
    final_reward = next(float(row["valid_reward_mean"]) for row in rows if row["step"] == "3" and row["valid_reward_mean"])
    assert result.metrics["valid_reward_mean"] == pytest.approx(final_reward) == pytest.approx(validations[-1][1])
    records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert sorted({record["step"] for record in records}) == [2, 3]
    # the final model competed for the best checkpoints (2 validations, 3 slots: both kept)
    assert sorted(info["step"] for info in result.best_checkpoints) == [2, 3]
    # the resume checkpoint was written after the final validation, with its history
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 3
    assert [entry["step"] for entry in checkpoint["callbacks"]["RunState"]["history"]] == [2, 3]


def test_demo_job_runs_and_matches_the_quickstart_example(tmp_path):
    """The demo's files are the quickstart example's; its before/after line is the run's metrics.csv."""
    from rft_plugins.data.demo import JOB, VALID_ROWS, demo_rows, jsonl_text
    from rft_plugins.training.outputs import read_metrics

    quickstart = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
    train, valid = demo_rows()
    assert (quickstart / "train.jsonl").read_text() == jsonl_text(train)
    assert (quickstart / "valid.jsonl").read_text() == jsonl_text(valid)
    assert yaml.safe_load((quickstart / "job.yaml").read_text()) == JOB
    assert not {row["messages"][0]["content"] for row in train} & {row["messages"][0]["content"] for row in valid}
    process = run_rft("--demo", "--output-dir", tmp_path / "demo", "--max-steps", "2", "--no-progress")
    assert process.returncode == 0, process.stderr[-3000:]
    folder = tmp_path / "demo"
    assert (folder / "run" / "final" / "config.json").is_file() and (folder / "job.yaml").is_file()
    warmup = json.loads((folder / "sft-model" / "warmup.json").read_text())
    assert f"supervised warm-up (sft-model/): {warmup['steps']} steps" in process.stderr
    assert f"probability {warmup['exact_probability']:.2f} on training prompts" in process.stderr
    valid_reward = read_metrics(folder / "run" / "metrics.csv")["valid_reward_mean"]
    assert [step for step, _ in valid_reward] == [0, 2]
    (_, before), (_, after) = valid_reward
    assert (f"Held-out validation reward (exact match, {VALID_ROWS} prompts): {before:.2f} at step 0 (before RFT) "
            f"-> {after:.2f} at step 2") in process.stdout
    assert str(folder / "run" / "final") in process.stdout
    assert 0.1 < before < 0.5  # the warm-up stops part of the way: RFT has something to reinforce


def test_a_data_parallel_run_prepares_and_reports_once(tmp_path, tiny_model_path):
    """Two CPU processes (DDP over gloo): Lightning re-runs the command for rank 1, which must not
    treat rank 0's fresh run folder as an earlier run, nor write outputs or print a second summary."""
    job = write_job(tmp_path, tiny_model_path, accelerator="cpu", devices=2, strategy="ddp", save_steps=2)
    process = run_rft(job, "--max-steps", "2", "--json", "--no-progress")
    assert process.returncode == 0, process.stderr[-3000:]
    summary = json.loads(process.stdout)  # one JSON document: rank 1 printed nothing
    assert summary["final_step"] == 2
    run = tmp_path / "run"
    assert sorted(folder.name for folder in (run / "best").iterdir()) == ["step-000000", "step-000001", "step-000002"]
    assert steps_with(metric_rows(run / "metrics.csv"), "train_reward_mean") == [1, 2]


def test_help_explains_the_job_outputs_and_resume():
    import click
    from click.testing import CliRunner

    from rft_plugins.cli import cli

    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0
    for text in ("method.type: reinforcement", "--resume", "--demo", "reward_curve.png", "best/step-N/", "status 2"):
        assert text in result.output, text
    for text in ("trainer.output_dir", "trainer.max_steps", "exactly", "train and valid reward", "at the last step"):
        assert text in " ".join(result.output.split()), text  # what each option overrides and promises
    options = [param for param in cli.commands["train"].params if isinstance(param, click.Option)]
    assert all(len(option.help or "") >= 60 for option in options), [o.name for o in options if len(o.help or "") < 60]
