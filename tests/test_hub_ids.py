"""``model:`` and ``training_file:`` as Hugging Face Hub ids, read from a hub cache laid out as the
hub client leaves it (``models--org--name/snapshots/<commit>/`` and ``refs/main``), offline: the
network is never reached. The dataset holds TRL-style rows (a ``prompt`` text), the run is driven
from the command line with ``--set``, and its final model carries a model card."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from train_jobs import RFT, line_of

COMMIT = "0123456789abcdef0123456789abcdef01234567"
GRADER = {"type": "string_check", "name": "says", "input": "{{ sample.output_text }}",
          "reference": "{{ item.answer }}", "operation": "like"}


def into_hub_cache(cache: Path, repo_id: str, files: Path, repo_type: str = "model") -> Path:
    """Put ``files`` into ``cache`` as the hub client stores ``repo_id`` at ``main``."""
    root = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = root / "snapshots" / COMMIT
    shutil.copytree(files, snapshot)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, tiny_model_path) -> Path:
    """A hub cache with the tiny model as ``rft-test/tiny-chat`` and a dataset of TRL prompt rows
    as ``rft-test/vowels`` (splits train and test)."""
    cache = tmp_path_factory.mktemp("hub-cache")
    into_hub_cache(cache, "rft-test/tiny-chat", tiny_model_path)
    data = tmp_path_factory.mktemp("dataset")
    (data / "data").mkdir()
    rows = {"train": [("apple", "a"), ("ember", "e"), ("igloo", "i"), ("otter", "o")], "test": [("urchin", "u")]}
    for split, pairs in rows.items():
        lines = [json.dumps({"prompt": f"First letter of {word}?", "answer": answer}) for word, answer in pairs]
        (data / "data" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    into_hub_cache(cache, "rft-test/vowels", data, "dataset")
    return cache


def rft_offline(cache: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache),
                   "HF_DATASETS_CACHE": str(tmp / "datasets-cache")}
    return subprocess.run([RFT, "train", *args], capture_output=True, text=True, timeout=300, env=environment)


def write_job(folder: Path, model: str, training_file: str = "rft-test/vowels:train") -> Path:
    job = {
        "model": model, "training_file": training_file, "validation_file": "rft-test/vowels:test",
        "method": {"type": "reinforcement", "reinforcement": {
            "grader": GRADER, "hyperparameters": {"batch_size": 2, "n_epochs": 1, "eval_interval": 1}}},
        "trainer": {"num_generations": 2, "max_completion_length": 4, "output_dir": str(folder / "run")},
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def test_a_hub_model_and_dataset_train_from_the_local_cache(hub_cache, tmp_path):
    job = write_job(tmp_path, "rft-test/tiny-chat")
    process = rft_offline(hub_cache, tmp_path, str(job), "--json", "--no-progress",
                          "--set", "trainer.report_to=none", "--set", "trainer.max_steps=1")
    assert process.returncode == 0, process.stderr[-3000:]
    summary = json.loads(process.stdout)
    assert summary["final_step"] == 1 and 0 <= summary["metrics"]["valid_reward_mean"] <= 1
    run = tmp_path / "run"
    record = json.loads((run / "run.json").read_text())
    assert record["job"]["model"] == "rft-test/tiny-chat"  # the job keeps the hub id
    assert record["job"]["trainer"]["report_to"] == [] and record["job"]["trainer"]["max_steps"] == 1
    assert record["settings"]["model"].endswith(f"models--rft-test--tiny-chat/snapshots/{COMMIT}")
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert {sample["prompt"] for sample in samples} == {"First letter of urchin?"}  # the test split, TRL's prompt
    assert not (run / "tensorboard").exists()  # report_to: none
    card = (run / "final" / "README.md").read_text()
    assert "base_model: rft-test/tiny-chat" in card and '"name": "says"' in card
    assert f"AutoModelForCausalLM.from_pretrained('{run / 'final'}')" in card
    assert f"`valid_reward_mean` **{summary['metrics']['valid_reward_mean']:.4f}** at step 1" in card


@pytest.mark.parametrize(
    ("model", "training_file", "field", "message"),
    [
        ("rft-test/not-cached", "rft-test/vowels:train", "model",
         "rft-test/not-cached does not exist as a local folder and is not a model in the local Hugging Face cache"),
        ("rft-test/tiny-chat", "rft-test/no-such-rows", "training_file",
         "rft-test/no-such-rows does not exist as a local file and is not a dataset in the local Hugging Face cache"),
    ],
)
def test_offline_a_hub_id_not_in_the_cache_is_one_line_naming_the_field(hub_cache, tmp_path, monkeypatch, model,
                                                                         training_file, field, message):
    from rft_plugins.training.job import JobError, load_job

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    job = write_job(tmp_path, model, training_file)
    with pytest.raises(JobError) as caught:
        load_job(job)
    error = str(caught.value)
    assert error.startswith(f"{job}:{line_of(job, field + ':')}: {field}: {message}"), error
    assert "HF_HUB_OFFLINE is set, so nothing is downloaded" in error and str(hub_cache) in error


def test_push_to_hub_offline_is_refused_when_the_job_loads(hub_cache, tmp_path, monkeypatch):
    from rft_plugins.training.job import JobError, load_job

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    overrides = [("trainer.push_to_hub", True), ("trainer.hub_model_id", "me/tiny-rft")]
    with pytest.raises(JobError, match="^command line: trainer.push_to_hub: HF_HUB_OFFLINE is set, so nothing can be"):
        load_job(write_job(tmp_path, "rft-test/tiny-chat"), overrides=overrides)
