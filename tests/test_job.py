"""Job files: loading YAML/JSON, errors naming file, line and field, and "auto" resolution."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from train_jobs import line_of

from rft_plugins.training.job import (
    AUTO_MAX_EPOCHS,
    Job,
    JobError,
    job_from_dict,
    load_job,
    resolve,
    resolve_hyperparameters,
)

GRADER = {
    "type": "string_check",
    "name": "match",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.answer }}",
    "operation": "eq",
}


@pytest.fixture
def job_dir(tmp_path: Path, tiny_model_path: Path) -> Path:
    (tmp_path / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}], "answer": "a"}\n')
    (tmp_path / "valid.jsonl").write_text('{"messages": [{"role": "user", "content": "yo"}], "answer": "b"}\n')
    return tmp_path


def job_dict(model: Path | str, **hyperparameters) -> dict:
    return {
        "model": str(model),
        "training_file": "train.jsonl",
        "validation_file": "valid.jsonl",
        "method": {
            "type": "reinforcement",
            "reinforcement": {"grader": dict(GRADER), "hyperparameters": hyperparameters},
        },
    }


def write_yaml(folder: Path, data: dict, name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_yaml_and_json_jobs_load_the_same(job_dir, tiny_model_path):
    data = job_dict(tiny_model_path, n_epochs=2, batch_size="auto")
    from_yaml = load_job(write_yaml(job_dir, data))
    (job_dir / "job.json").write_text(json.dumps(data, indent=2))
    from_json = load_job(job_dir / "job.json")
    assert from_yaml == from_json
    assert from_yaml.hyperparameters.n_epochs == 2 and from_yaml.hyperparameters.batch_size == "auto"
    # relative data paths resolve against the job file's folder, not the working directory
    assert Path(from_yaml.training_file) == job_dir / "train.jsonl"
    assert Path(from_yaml.validation_file) == job_dir / "valid.jsonl"


def test_relative_model_path_and_grader_file_resolve_against_the_job_folder(job_dir, tiny_model_path):
    (job_dir / "grader.json").write_text(json.dumps(GRADER))
    (job_dir / "model").symlink_to(tiny_model_path)
    data = job_dict("model")
    data["method"]["reinforcement"]["grader"] = "grader.json"
    job = load_job(write_yaml(job_dir, data))
    assert Path(job.model) == job_dir / "model"
    assert job.grader == GRADER


@pytest.mark.parametrize(
    "change, field, marker, message",
    [
        (lambda d: d["trainer"].update(num_generatons=3), "trainer.num_generatons", "num_generatons",
         "did you mean 'num_generations'"),
        (lambda d: d["method"]["reinforcement"]["hyperparameters"].update(n_epochs=100),
         "method.reinforcement.hyperparameters.n_epochs", "n_epochs", "between 1 and 50"),
        (lambda d: d["method"]["reinforcement"]["hyperparameters"].update(batch_size="big"),
         "method.reinforcement.hyperparameters.batch_size", "batch_size", "'auto' or a valid integer"),
        (lambda d: d["method"].update(type="supervised"), "method.type", "type: supervised", "reinforcement"),
        (lambda d: d.pop("training_file"), "training_file", None, "required field is missing"),
        (lambda d: d["method"]["reinforcement"]["grader"].pop("reference"),
         "method.reinforcement.grader.reference", None, "required field is missing"),
        (lambda d: d["method"]["reinforcement"]["grader"].update(type="no_such_grader"),
         "method.reinforcement.grader.type", "no_such_grader", "unknown grader type 'no_such_grader'"),
        (lambda d: d["method"]["reinforcement"]["grader"].update(operation="eqq"),
         "method.reinforcement.grader.operation", "eqq", "'eq', 'ne', 'like' or 'ilike'"),
        (lambda d: d["method"]["reinforcement"]["grader"].update(
            type="label_model", model="m", input=[], labels=["a"], passing_labels=["a"]),
         "method.reinforcement.grader.type", "label_model", "cannot be the top-level"),
        (lambda d: d.update(model="no-such-model"), "model", "no-such-model", "does not exist"),
        (lambda d: d.update(validation_file="missing.jsonl"), "validation_file", "missing.jsonl", "does not exist"),
        (lambda d: d["trainer"].update(sampler="vllm"), "trainer.sampler", "vllm", "unknown sampler 'vllm'"),
        (lambda d: d["trainer"].update(data_source="sql"), "trainer.data_source", "sql", "unknown data source 'sql'"),
        (lambda d: d["trainer"].update(data_source_options={"shuffle": True}), "trainer.data_source_options",
         "data_source_options", "takes no options"),
        (lambda d: d["trainer"].update(reward_shapers=[{"type": "clip", "max": 1}, {"type": "overlong_penalty"}]),
         "trainer.reward_shapers[1].cache", "overlong_penalty", "required field is missing"),
        (lambda d: d["trainer"].update(reward_shapers=[{"type": "group_advantages"}, {"type": "grader_weights", "weights": {"match": 1}}]),
         "trainer.reward_shapers[1]", "grader_weights", "move it earlier"),
        (lambda d: d["trainer"].update(lr_scheduler_type="constant", warmup_steps=10), "trainer.warmup_steps",
         "warmup_steps", "the constant schedule has no warm-up; set lr_scheduler_type: constant_with_warmup"),
    ],
)
def test_a_bad_job_names_file_line_and_field(job_dir, tiny_model_path, change, field, marker, message):
    data = job_dict(tiny_model_path)
    data["trainer"] = {"max_steps": 5}
    change(data)
    path = write_yaml(job_dir, data)
    with pytest.raises(JobError) as caught:
        load_job(path)
    error = caught.value
    assert error.field == field
    assert error.file == str(path)
    assert message in error.message
    if marker is not None:
        assert error.line == line_of(path, marker), str(error)
    assert str(error).startswith(f"{path}:{error.line}: {field}: ")


def test_a_missing_field_points_at_its_parent_mapping(job_dir, tiny_model_path):
    data = job_dict(tiny_model_path)
    del data["method"]["reinforcement"]["grader"]["reference"]
    path = write_yaml(job_dir, data)
    with pytest.raises(JobError) as caught:
        load_job(path)
    assert caught.value.line == line_of(path, "grader:")


def test_syntax_errors_name_the_line(job_dir):
    bad_yaml = job_dir / "bad.yaml"
    bad_yaml.write_text("model: m\nmethod:\n  type: [reinforcement\n  x: 1\n")
    with pytest.raises(JobError) as caught:
        load_job(bad_yaml)
    assert caught.value.file == str(bad_yaml) and caught.value.line in (3, 4, 5)
    assert "invalid YAML" in caught.value.message
    bad_json = job_dir / "bad.json"
    bad_json.write_text('{\n  "model": "m",\n  "method": {,}\n}\n')
    with pytest.raises(JobError) as caught:
        load_job(bad_json)
    assert caught.value.line == 3 and "invalid JSON" in caught.value.message


def test_json_job_errors_have_lines_too(job_dir, tiny_model_path):
    data = job_dict(tiny_model_path, eval_interval=0)
    path = job_dir / "job.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(JobError) as caught:
        load_job(path)
    assert caught.value.field == "method.reinforcement.hyperparameters.eval_interval"
    assert caught.value.line == line_of(path, '"eval_interval"')


def test_missing_job_file_and_non_mapping(job_dir):
    with pytest.raises(JobError, match="job file does not exist"):
        load_job(job_dir / "nope.yaml")
    (job_dir / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(JobError, match="a job is a mapping"):
        load_job(job_dir / "list.yaml")


def test_job_from_dict_for_the_api(job_dir, tiny_model_path):
    job = job_from_dict(job_dict(tiny_model_path), base_dir=job_dir)
    assert isinstance(job, Job) and Path(job.training_file) == job_dir / "train.jsonl"


def plan_for(tiny_model_path, rows: int, trainer: dict | None = None, **hyperparameters):
    data = job_dict(tiny_model_path, **hyperparameters)
    data["trainer"] = trainer or {}
    return Job.model_validate(data)


def test_auto_values_for_small_and_large_datasets(tiny_model_path):
    small = resolve_hyperparameters(plan_for(tiny_model_path, 0), 10)
    assert small.batch_size == 3  # ceil(10 / 4)
    assert small.steps_per_epoch == 4  # ceil(10 / 3)
    assert small.n_epochs == AUTO_MAX_EPOCHS  # 50 steps wanted, capped at 10 epochs
    assert small.total_steps == 40 and small.eval_interval == 4
    assert (small.eval_samples, small.learning_rate_multiplier, small.compute_multiplier) == (1, 1.0, 1.0)
    large = resolve_hyperparameters(plan_for(tiny_model_path, 0), 1000)
    assert large.batch_size == 8 and large.steps_per_epoch == 125
    assert large.n_epochs == 1 and large.total_steps == 125 and large.eval_interval == 12
    one = resolve_hyperparameters(plan_for(tiny_model_path, 0), 1)
    assert (one.batch_size, one.steps_per_epoch, one.eval_interval) == (1, 1, 1)


def test_total_steps_formula_and_max_steps_cap(tiny_model_path):
    plan = resolve_hyperparameters(plan_for(tiny_model_path, 0, n_epochs=3, batch_size=4), 10)
    assert plan.total_steps == math.ceil(10 / 4) * 3 == 9
    capped = resolve_hyperparameters(plan_for(tiny_model_path, 0, {"max_steps": 5}, n_epochs=3, batch_size=4), 10)
    assert capped.total_steps == 5


def test_openai_hyperparameters_map_to_the_loop(tiny_model_path):
    job = plan_for(
        tiny_model_path, 0, {"num_generations": 4, "max_completion_length": 100, "learning_rate": 2e-5, "seed": 3},
        learning_rate_multiplier=0.5, compute_multiplier=2.5, reasoning_effort="high", eval_samples=3, batch_size=2,
    )
    settings = resolve(job, 10)
    assert settings.num_generations == 10  # 4 * compute_multiplier 2.5
    assert settings.max_completion_length == 200  # reasoning_effort high doubles it
    assert settings.learning_rate == pytest.approx(1e-5)  # 2e-5 * 0.5
    assert (settings.batch_size, settings.eval_samples, settings.seed) == (2, 3, 3)
    assert settings.grader == GRADER and settings.model == str(tiny_model_path)
    low = resolve(plan_for(tiny_model_path, 0, {"num_generations": 4}, compute_multiplier=0.1, reasoning_effort="low"), 4)
    assert low.num_generations == 2  # never below a group of 2
    assert low.max_completion_length == 128  # 256 * 0.5
    seeded = plan_for(tiny_model_path, 0).model_copy(update={"seed": 99})
    assert resolve(seeded, 4).seed == 99  # OpenAI's job seed wins over trainer.seed


def test_empty_training_data_is_an_error(tiny_model_path):
    with pytest.raises(JobError, match="no rows"):
        resolve_hyperparameters(plan_for(tiny_model_path, 0), 0)


def test_a_problem_with_no_field_found_after_loading_is_a_job_error(job_dir, tiny_model_path):
    """A plugin's ConfigError may have no field (the setting as a whole, ``field=None``): the loop
    hands it to ``Job.error``, which must give a JobError naming the job file, not crash."""
    job = load_job(write_yaml(job_dir, job_dict(tiny_model_path)))
    error = job.error(None, "the sampler rejects this job")
    assert isinstance(error, JobError)
    assert error.field is None and error.message == "the sampler rejects this job"
    assert error.file is not None and error.file.endswith("job.yaml")
    assert job_from_dict(job_dict(tiny_model_path), check_files=False).error(None, "no file").field is None
