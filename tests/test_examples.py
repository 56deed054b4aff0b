"""The examples run end to end, as a user would run them (subprocess, tiny models, CPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_inhouse_grader_through_rft_plugins_env():
    output = run("-m", "rft_plugins.cli", "graders", "run", "examples/inhouse_grader/grader.json",
                 "--sample", "Refund approved", "--item", '{"required": ["refund", "approved", "today"]}',
                 env={"RFT_PLUGINS": "keyword_grader", "PYTHONPATH": "examples/inhouse_grader"})
    response = json.loads(output)
    assert response["sub_rewards"] == {"keywords": 2 / 3, "polite": 0.0}
    assert abs(response["reward"] - 0.8 * 2 / 3) < 1e-9


def test_trl_example():
    output = run("examples/trl_grpo.py", "--steps", "2")
    assert len(re.findall(r"^step \d+: says_yes=\d\.\d{3} close_to_reference=\d\.\d{3}$", output, re.M)) == 2


def test_lightning_example():
    output = run("examples/lightning_callback.py", "--epochs", "1")
    assert re.search(r"^epoch 0: answer_similarity=\d\.\d{3}$", output, re.M)


def test_sft_then_rft_example_learns_after_the_switch():
    output = run("examples/lightning_sft_then_rft.py", "--epochs", "6", "--switch-epoch", "1")
    rewards = [float(value) for value in re.findall(r"^epoch \d \((?:SFT|SFT\+RFT)\): has_a=(\d\.\d{3})$", output, re.M)]
    assert len(rewards) == 6 and "epoch 0 (SFT):" in output and "epoch 1 (SFT+RFT):" in output
    assert rewards[0] <= 0.25 and max(rewards[2:]) >= 0.5  # flat under SFT alone, rising with RFT
    assert re.search(r"^20 RFT steps; best held-out reward \d\.\d{3}$", output, re.M)  # 4 batches x 5 epochs


def test_trl_job_example_runs_on_trl_as_written(tmp_path):
    """examples/trl_job: a job in TRL's names and rows, on TRL's GRPOTrainer, as its comment says."""
    import shutil

    folder = tmp_path / "trl_job"
    shutil.copytree(ROOT / "examples" / "trl_job", folder)
    run("-c", f"from rft_plugins.tiny_model import build_tiny_model; build_tiny_model({str(folder / 'tiny-model')!r})")
    output = run("-m", "rft_plugins.cli", "train", str(folder / "job.yaml"), "--backend", "trl", "--json",
                 "--no-progress", "--set", "trainer.max_steps=3", "--output-dir", str(tmp_path / "run"))
    summary = json.loads(output)
    assert summary["final_step"] == 3 and 0 <= summary["metrics"]["valid_reward_mean"] <= 1
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["trl_config"]["per_device_train_batch_size"] == 8
    assert record["trl_config"]["gradient_accumulation_steps"] == 2 and record["plan"]["batch_size"] == 4
