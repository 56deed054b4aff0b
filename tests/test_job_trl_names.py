"""What TRL users bring to a job file: GRPOConfig / TrainingArguments names, TRL's ``prompt`` rows,
and ``--set`` for any field. Names that mean the same are translated; the others are errors that
say what to write instead, at the line the user wrote them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from train_jobs import line_of

from rft_plugins.data.rows import DataError, validate_row
from rft_plugins.training.job import JobError, load_job, resolve, resolve_hyperparameters

GRADER = {"type": "string_check", "name": "match", "input": "{{ sample.output_text }}",
          "reference": "{{ item.answer }}", "operation": "eq"}


@pytest.fixture
def write(tmp_path: Path, tiny_model_path: Path):
    """``write(trainer={...}, **hyperparameters)`` -> a job file over 8 training rows."""
    rows = "".join('{"messages": [{"role": "user", "content": "q%d"}], "answer": "a"}\n' % n for n in range(8))
    (tmp_path / "train.jsonl").write_text(rows)

    def write(trainer: dict | None = None, **hyperparameters) -> Path:
        job = {
            "model": str(tiny_model_path), "training_file": "train.jsonl",
            "method": {"type": "reinforcement",
                       "reinforcement": {"grader": GRADER, "hyperparameters": hyperparameters}},
            "trainer": trainer or {},
        }
        path = tmp_path / "job.yaml"
        path.write_text(yaml.safe_dump(job, sort_keys=False))
        return path

    return write


def test_trl_names_that_mean_the_same_are_translated(write):
    job = load_job(write({
        "per_device_train_batch_size": 4, "num_train_epochs": 3.0, "bf16": False, "use_vllm": False,
        "top_k": 0, "eval_steps": 2, "num_generations_eval": 2, "use_cpu": True,
    }))
    trainer, hyper = job.trainer, job.hyperparameters
    assert (trainer.micro_batch_size, hyper.n_epochs, trainer.precision) == (4, 3, "32-true")
    assert (trainer.top_k, hyper.eval_interval, hyper.eval_samples, trainer.accelerator) == (None, 2, 2, "cpu")
    assert load_job(write({"bf16": True})).trainer.precision == "bf16-mixed"


def test_gradient_accumulation_becomes_the_prompts_per_step_it_implies(write):
    """TRL: per_device_train_batch_size x gradient_accumulation_steps samples per step; ours counts
    prompts, each with num_generations samples."""
    job = load_job(write({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "num_generations": 4}))
    assert job.hyperparameters.batch_size == 2 and job.trainer.micro_batch_size == 4
    plan = resolve_hyperparameters(job, 8)
    assert plan.batch_size * plan.num_generations == 4 * 2  # the samples of TRL's step
    settings = resolve(job, 8)
    assert settings.batch_size * settings.num_generations // settings.micro_batch_size == 2  # passes per step


@pytest.mark.parametrize(
    ("trainer", "hyperparameters", "field", "message"),
    [
        ({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "num_generations": 4}, {"batch_size": 3},
         "trainer.gradient_accumulation_steps", "makes 2 prompts per step (8 samples / 4 generations), but"),
        ({"per_device_train_batch_size": 3, "gradient_accumulation_steps": 1, "num_generations": 2}, {},
         "trainer.gradient_accumulation_steps", "3 samples per step are not whole groups of num_generations 2"),
        ({"gradient_accumulation_steps": 2}, {}, "trainer.gradient_accumulation_steps",
         "needs per_device_train_batch_size"),
        ({"use_vllm": True}, {}, "trainer.use_vllm", "rollout engines are sampler plugins"),
        ({"per_device_train_batch_size": 4, "micro_batch_size": 4}, {}, "trainer.per_device_train_batch_size",
         "TRL's name for trainer.micro_batch_size, which the job sets too"),
        ({"num_train_epochs": 2.5}, {}, "trainer.num_train_epochs", "whole passes over the data, not 2.5"),
        ({"bf16": True, "fp16": True}, {}, "trainer.bf16", "both true"),
        ({"bf16": True, "precision": "32-true"}, {}, "trainer.bf16", "which the job sets too"),
        ({"per_device_eval_batch_size": 8}, {}, "trainer.per_device_eval_batch_size",
         "unknown field (TRL's per_device_eval_batch_size has no counterpart here): validation samples batch_size"),
        ({"steps_per_generation": 2}, {}, "trainer.steps_per_generation", "a step samples all its prompts at once"),
        ({"vllm_mode": "colocate"}, {}, "trainer.vllm_mode", "sampler plugins"),
        ({"per_device_train_batch_size": 0}, {}, "trainer.per_device_train_batch_size", "must be at least 1"),
        ({"report_to": ["comet"]}, {}, "trainer.report_to", "unknown logger 'comet'; known: csv, tensorboard"),
        ({"backend": "deepspeed"}, {}, "trainer.backend", "unknown training backend 'deepspeed'; known backends:"),
    ],
)
def test_trl_names_that_differ_are_errors_at_the_line_written(write, trainer, hyperparameters, field, message):
    path = write(trainer, **hyperparameters)
    with pytest.raises(JobError) as caught:
        load_job(path)
    error = caught.value
    assert (error.field, error.file) == (field, str(path)), str(error)
    assert message in error.message, str(error)
    assert error.line == line_of(path, field.rsplit(".", 1)[-1] + ":"), str(error)


def test_num_train_epochs_hint_no_longer_suggests_num_iterations(write):
    """The issue: an unknown num_train_epochs was 'did you mean num_iterations'; it is n_epochs now."""
    assert load_job(write({"num_train_epochs": 2})).hyperparameters.n_epochs == 2


def test_set_overrides_any_field_typed_as_yaml(write):
    path = write({"learning_rate": 1e-5})
    job = load_job(path, overrides=[
        ("trainer.learning_rate", 0.5), ("trainer.lora.r", 4), ("method.reinforcement.hyperparameters.n_epochs", 2),
        ("trainer.report_to", ["none"]), ("trainer.per_device_train_batch_size", 2),
    ])
    assert job.trainer.learning_rate == 0.5 and job.trainer.lora.r == 4 and job.hyperparameters.n_epochs == 2
    assert job.trainer.report_to == [] and job.trainer.micro_batch_size == 2


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        (("trainer.learning_rate", 2.0), "trainer.learning_rate", "less than or equal to 1"),
        (("trainer.num_generatons", 4), "trainer.num_generatons", "did you mean 'num_generations'"),
        (("model.path", "x"), "model", "cannot set model.path: model is a str value"),
        (("trainer.backend", "nope"), "trainer.backend", "unknown training backend 'nope'"),
    ],
)
def test_a_bad_override_is_reported_on_the_command_line_with_its_field(write, override, field, message):
    with pytest.raises(JobError) as caught:
        load_job(write(), overrides=[override])
    assert (caught.value.file, caught.value.line, caught.value.field) == ("command line", None, field)
    assert message in caught.value.message
    assert str(caught.value).startswith(f"command line: {field}: ")


def test_the_cli_reads_set_values_as_yaml():
    from rft_plugins.training.job_overrides import parse_override

    assert parse_override("trainer.report_to=[wandb, mlflow]") == ("trainer.report_to", ["wandb", "mlflow"])
    assert parse_override("trainer.lora=null") == ("trainer.lora", None)
    assert parse_override("suffix='007'") == ("suffix", "007")
    for bad in ("trainer.learning_rate", "=3", "a=[1"):
        with pytest.raises(ValueError):
            parse_override(bad)


def test_trl_prompt_rows_stand_for_their_messages():
    text = validate_row({"prompt": "2+2?", "answer": "4"}, "row 1")
    assert text["messages"] == [{"role": "user", "content": "2+2?"}] and text["prompt"] == "2+2?"
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert validate_row({"prompt": chat}, "row 2")["messages"] == chat
    openai = {"messages": chat, "prompt": "kept as data"}
    assert validate_row(openai, "row 3") is openai  # OpenAI's form first: the prompt is reference data
    with pytest.raises(DataError, match=r"row 4: prompt\[0\]\.role: the last message must be from the user"):
        validate_row({"prompt": [{"role": "assistant", "content": "x"}]}, "row 4")
    with pytest.raises(DataError, match="messages: required field is missing .OpenAI's messages, or TRL's prompt"):
        validate_row({"answer": "4"}, "row 5")
