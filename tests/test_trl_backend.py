"""``rft train --backend trl``: one job through TRL's real ``GRPOTrainer`` and through the built-in
Lightning loop, on the tiny model: the same metric names, run folder, summary and samples; a
step-aware grader sees the same steps; the TRL run is stopped half-way and resumed; what TRL
cannot do of a job is an error naming the field."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from train_jobs import chat, line_of, run_rft, write_job

from rft_plugins import hookimpl
from rft_plugins.data.demo import answer_check
from rft_plugins.plugins import get_plugin_manager
from rft_plugins.training.job import JobError, load_job

SEEN: list = []


class StepAware:
    """Reward = share of the run done; every training state it sees is kept (``SEEN``)."""

    def __init__(self, config):
        pass

    def grade(self, sample, item, trainer_state=None):
        if trainer_state is None:
            return None
        SEEN.append(trainer_state)
        return trainer_state["global_step"] / trainer_state["max_steps"]


class Plugin:
    @hookimpl
    def rft_register_graders(self, register):
        register("step_aware", StepAware)


GRADER = {
    "type": "multi", "name": "answer", "calculate_output": "0.5 * mentions + 0.5 * progress",
    "graders": {"mentions": answer_check("mentions", "like"), "progress": {"type": "step_aware", "name": "progress"}},
}
#: what only the built-in loop measures: its sampler's log-probs against the policy's (TRL: only under vLLM)
LIGHTNING_ONLY = {"sampling/logprob_difference_max", "sampling/logprob_difference_mean"}


def job_folder(folder: Path, model: Path) -> Path:
    train = [{"messages": chat(f"train question {n}", "Answer in one letter."), "answer": "a"} for n in range(4)]
    train += [{"messages": chat("train question without a reference")}]  # the grader flags it
    valid = [{"messages": chat(f"valid question {n}"), "answer": "e"} for n in range(2)]
    return write_job(folder, model, GRADER, train, valid,
                     {"n_epochs": 2, "batch_size": 2, "eval_interval": 2, "learning_rate_multiplier": 1},
                     num_generations=2, max_completion_length=6, learning_rate=1e-2, save_top_k=2, max_steps=4)


def columns(run: Path) -> set[str]:
    with (run / "metrics.csv").open(newline="") as handle:
        return set(csv.DictReader(handle).fieldnames or [])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_path) -> dict[str, tuple[Path, dict, list]]:
    """The same job trained by each backend, in this process: run folder, summary, the states seen.
    The TRL run stops after step 2 (as a killed run would: no summary) and is resumed to step 4."""
    from rft_plugins import plugins
    from rft_plugins.training.run import train

    done = {}
    for backend in ("lightning", "trl"):
        plugins.reset_for_tests()
        get_plugin_manager().register(Plugin(), name="step-aware")
        SEEN.clear()
        job = job_folder(tmp_path_factory.mktemp(backend), tiny_model_path)
        backend_set = [("trainer.backend", backend)]
        if backend == "trl":
            first = train(job, progress_bar=False, overrides=backend_set, max_steps=2)
            (first.output_dir / "summary.json").unlink()
        result = train(job, progress_bar=False, overrides=backend_set, resume=backend == "trl")
        done[backend] = (result.output_dir, result.to_dict(), list(SEEN))
    plugins.reset_for_tests()
    return done


def test_both_backends_report_the_same_metric_names(runs):
    lightning, trl = columns(runs["lightning"][0]), columns(runs["trl"][0])
    assert lightning - LIGHTNING_ONLY <= trl, sorted(lightning - LIGHTNING_ONLY - trl)
    shared = {
        "step", "epoch", "loss", "kl", "clip_ratio", "grad_norm", "learning_rate", "completion_length_mean",
        "completion_truncated_rate", "train_reward_mean", "valid_reward_mean", "train/answer_reward_mean",
        "train/mentions_reward_mean", "train/progress_reward_mean", "valid/answer_reward_mean",
        "train/invalid_variable_error_rate", "timing/sampling_s", "timing/grading_s", "timing/grading_wait_s",
        "timing/training_s", "timing/full_iteration_s",
    }
    assert shared <= lightning & trl, sorted(shared - (lightning & trl))
    # what TRL adds keeps TRL's names: none of them passes for one of ours
    assert not {name for name in trl - lightning if name.startswith(("train", "valid", "timing/"))}


def test_both_backends_write_the_same_run_folder_and_summary(runs):
    (lightning, lightning_summary, _), (trl, trl_summary, _) = runs["lightning"], runs["trl"]
    assert {path.name for path in lightning.iterdir()} == {path.name for path in trl.iterdir()}
    assert lightning_summary.keys() == trl_summary.keys()
    assert trl_summary["final_step"] == trl_summary["total_steps"] == 4 and trl_summary["resumed_from_step"] == 2
    assert trl_summary["files"].keys() == lightning_summary["files"].keys()
    assert set(lightning_summary["metrics"]) - LIGHTNING_ONLY <= set(trl_summary["metrics"])
    record = json.loads((trl / "run.json").read_text())
    assert record["rft_run"]["outputs"] and record["job"]["trainer"]["backend"] == "trl"
    config = record["trl_config"]
    assert config["per_device_train_batch_size"] * config["gradient_accumulation_steps"] == 4  # 2 prompts x 2
    # validation at steps 0 (the untrained model), 2 and 4, in metrics.csv and samples.jsonl alike, each
    # step once (the resumed TRL run kept the first part's samples, and logged nothing twice)
    for run in (lightning, trl):
        with (run / "metrics.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [int(row["step"]) for row in rows if row["train_reward_mean"]] == [1, 2, 3, 4], run
        assert [int(row["step"]) for row in rows if row["valid_reward_mean"]] == [0, 2, 4], run
        samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        assert [sample["step"] for sample in samples] == [0, 0, 2, 2, 4, 4], run
        assert set(samples[0]) == {"step", "prompt", "completion", "tool_calls", "reward", "sub_rewards", "errors"}
    best = trl_summary["best_checkpoints"]
    assert len(best) == 2 and all((Path(info["path"]) / "README.md").is_file() for info in best)
    assert "`trl` backend" in (trl / "final" / "README.md").read_text()


def test_both_backends_keep_the_best_checkpoints_history_in_their_resume_checkpoints(runs):
    """Early stopping's history (``BestCheckpoints.state_dict``) survives the TRL run's resume: the
    second part ranked step 4 after the first part's 0 and 2, as the uninterrupted loop did."""
    import torch

    from rft_plugins.adapters.trl_run import BEST_STATE_FILE

    lightning, trl = runs["lightning"][0], runs["trl"][0]
    checkpoint = torch.load(lightning / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    lightning_history = checkpoint["callbacks"]["RunState"]["history"]
    trl_history = json.loads((trl / "checkpoints" / "checkpoint-4" / BEST_STATE_FILE).read_text())["history"]
    assert [entry["step"] for entry in lightning_history] == [entry["step"] for entry in trl_history] == [0, 2, 4]


def test_a_step_aware_grader_sees_the_same_steps_on_both_backends(runs):
    for backend in ("lightning", "trl"):
        states = runs[backend][2]  # training and validation grades; the TRL run's first part ran to step 2
        assert {state["global_step"] for state in states} == {0, 1, 2, 3, 4}, backend
        assert {state["max_steps"] for state in states if state["global_step"] > 2} == {4}, backend
        assert all(0 <= state["epoch"] <= 2 for state in states), backend


@pytest.mark.parametrize(
    ("trainer", "reinforcement", "field", "marker", "message"),
    [
        ({"reward_shapers": [{"type": "clip", "max": 1}]}, {}, "trainer.reward_shapers[0]", "- type: clip",
         "reward shaper plugins run only in the built-in loop"),
        ({"num_iterations": 2}, {}, "trainer.num_iterations", "num_iterations:",
         "TRL counts each of the num_iterations updates"),
        ({"devices": 2}, {}, "trainer.devices", "devices:", "trains in one process"),
        ({"sampler_options": {"prompts_per_call": 2}}, {}, "trainer.sampler_options.prompts_per_call",
         "prompts_per_call:", "generation_kwargs only"),
        ({"model_init_kwargs": {"dtype": "bfloat16"}}, {}, "trainer.master_weights", "trainer:",
         "no float32 master copies"),
        ({"precision": "bf16-true"}, {}, "trainer.precision", "precision:", "no transformers equivalent"),
        ({}, {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}},
         "method.reinforcement.response_format", "response_format:", "no constrained decoding"),
    ],
)
def test_what_trl_cannot_do_is_an_error_naming_the_field(tmp_path, tiny_model_path, trainer, reinforcement, field,
                                                          marker, message):
    job = job_folder(tmp_path, tiny_model_path)
    data = yaml.safe_load(job.read_text())
    data["trainer"].update(trainer, backend="trl")
    data["method"]["reinforcement"].update(reinforcement)
    data["method"]["reinforcement"]["grader"] = answer_check("mentions", "like")
    job.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(JobError) as caught:
        load_job(job)  # what rft train does first (the command line's errors: the next test)
    assert str(caught.value).startswith(f"{job}:{line_of(job, marker)}: {field}: "), str(caught.value)
    assert message in caught.value.message


def test_the_backend_flag_overrides_the_job_and_an_unknown_one_is_named(tmp_path, tiny_model_path):
    job = job_folder(tmp_path, tiny_model_path)
    process = run_rft(job, "--set", "method.reinforcement.grader.graders.progress=null")
    field = "method.reinforcement.grader.graders.progress"
    assert f"command line: {field}: Input should be a valid dictionary" in process.stderr
    no_plugin = "{type: string_check, name: progress, input: x, reference: x, operation: eq}"
    process = run_rft(job, "--backend", "jax", "--set", f"method.reinforcement.grader.graders.progress={no_plugin}")
    assert process.returncode == 2 and not (tmp_path / "run").exists()
    known = "known backends: lightning, trl"
    assert f"command line: trainer.backend: unknown training backend 'jax'; {known}" in process.stderr


def test_trl_completions_with_tool_calls_are_parsed_as_the_loop_parses_them(tiny_model_path):
    """Rows offering tools: the completion's ids are decoded with their special tokens and parsed by
    the job's tool-call parser, so graders read ``sample.output_tools`` under both backends."""
    from transformers import AutoTokenizer

    from rft_plugins.adapters.trl_metrics import GradeLog
    from rft_plugins.adapters.trl_run import Samples
    from rft_plugins.training.settings import ResolvedSettings

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    settings = ResolvedSettings(model=str(tiny_model_path), grader=answer_check("a", "eq"), tool_call_parser="hermes")
    samples = Samples(tokenizer, settings, GradeLog())
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    rows = [{"messages": chat("find it"), "tools": tools, "answer": "x"}, {"messages": chat("plain"), "answer": "y"}]
    text = 'Looking.<tool_call>{"name": "lookup", "arguments": {"q": "it"}}</tool_call><|im_end|>'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prepared, items = samples.prepare([json.dumps(row) for row in rows], ["Looking.", "just text"],
                                      {"completion_ids": [ids, tokenizer("just text")["input_ids"]]})
    assert prepared[0].output_text == "Looking."
    assert prepared[0].output_tools[0]["function"] == {"name": "lookup", "arguments": '{"q": "it"}'}
    assert prepared[1].output_text == "just text" and prepared[1].output_tools == []
    assert items[0]["answer"] == "x" and items[0]["prompt"] == items[0]["messages"]  # as rft train's items


def test_both_backends_write_openai_metrics_events_for_each_step_once(runs):
    for backend in ("lightning", "trl"):
        run = runs[backend][0]
        events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
        # step 0 is the baseline; the TRL run was stopped at step 2 and resumed: still each step once
        assert [event["data"]["step"] for event in events] == [0, 1, 2, 3, 4], backend
        with (run / "metrics.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        for event in events:
            data, step = event["data"], event["data"]["step"]
            planned = 2 if backend == "trl" and step <= 2 else 4  # the first TRL run was given max_steps 2
            assert data["total_steps"] == planned and event["type"] == "metrics"
            (train,) = [row for row in rows if int(row["step"]) == step and row["train_reward_mean"]] or [None]
            (valid,) = [row for row in rows if int(row["step"]) == step and row["valid_reward_mean"]] or [None]
            if train is not None:
                assert data["train_mean_reward"] == pytest.approx(float(train["train_reward_mean"])), backend
                assert data["timing"]["step"]["sampling"] == pytest.approx(float(train["timing/sampling_s"]))
            if valid is not None:
                assert data["full_valid_mean_reward"] == pytest.approx(float(valid["valid_reward_mean"])), backend
                assert data["timing"]["step"]["eval"] > 0
            assert (train is not None) == (step > 0) and (valid is not None) == (step in (0, 2, 4))
