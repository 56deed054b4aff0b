"""The learning-curve and vs-TRL benchmarks run end to end (tiny sizes) and report sound figures.

Each script runs as users run it: a real subprocess, real ``rft train`` and ``trl.GRPOTrainer``
runs on the tiny model. (benchmarks/graders.py has its test in test_text_similarity.py.)
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    finished = subprocess.run([sys.executable, str(BENCHMARKS / name), *arguments], capture_output=True, text=True,
                              env=environment, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def is_reward(value: float) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def test_learning_curve_writes_table_png_and_json(tmp_path):
    finished = run_script("learning_curve.py", "--steps", "2", "--seeds", "0", "--eval-interval", "1",
                          "--eval-samples", "1", "--output-dir", str(tmp_path))
    assert "train reward (window)" in finished.stdout and "final valid" in finished.stdout
    assert (tmp_path / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "learning_curve.json").read_text())

    assert report["steps"] == 2 and report["seeds"] == [0]
    assert report["machine"]["torch_threads"] == 1  # the default: robust to other work on the machine
    assert report["task"]["train_prompts"] == 160 and report["task"]["valid_prompts"] == 50
    [run] = report["runs"]
    assert run["steps"] == 2
    assert [step for step, _ in run["train_reward"]] == [1, 2]
    assert [step for step, _ in run["valid_reward"]] == [0, 1, 2]  # before training, then every step
    assert all(is_reward(value) for _, value in run["train_reward"] + run["valid_reward"])
    assert run["initial_valid_reward"] == run["valid_reward"][0][1]
    assert run["best_valid_reward"] == max(value for _, value in run["valid_reward"])
    assert (Path(run["run_dir"]) / "metrics.csv").is_file()  # a whole `rft train` run folder

    summary = report["summary"]
    assert [row["step"] for row in summary["valid_reward"]] == [0, 1, 2]
    for row in summary["valid_reward"] + summary["train_reward"]:
        assert row["std"] == 0.0 and row["min"] == row["mean"] == row["max"]  # one seed: no spread
    assert summary["final_valid_reward"]["mean"] == run["final_valid_reward"]
    assert summary["seconds"]["mean"] > 0


def test_vs_trl_reports_both_arms_side_by_side(tmp_path, capsys):
    finished = run_script("vs_trl.py", "--steps", "2", "--seeds", "0", "--eval-interval", "2", "--eval-samples", "2",
                          "--workdir", str(tmp_path), "--json")
    report = json.loads(finished.stdout)
    assert report["steps"] == 2 and report["seeds"] == [0]
    assert report["differences"] and all(isinstance(text, str) for text in report["differences"])

    ours, trl = report["settings"]["ours"], report["settings"]["trl"]
    assert trl["per_device_train_batch_size"] == ours["batch_size"] * ours["num_generations"]  # samples, not prompts
    assert ours["micro_batch_size"] == trl["per_device_train_batch_size"]  # one forward/backward per step
    assert trl["generation_batch_size"] == trl["per_device_train_batch_size"]  # one rollout per step
    for key in ("num_generations", "max_completion_length", "learning_rate", "seed", "loss_type", "beta", "epsilon",
                "epsilon_high", "scale_rewards", "num_iterations", "max_grad_norm", "weight_decay", "temperature",
                "top_p", "gradient_checkpointing", "mask_truncated_completions", "eval_on_start"):
        assert trl[key] == ours[key], key  # ours: the loop's resolved settings
    assert (ours["lr_scheduler_type"], ours["warmup_steps"]) == ("constant_with_warmup", 10)  # the demo job's
    assert trl["warmup_steps"] == ours["warmup_steps"] and ours["lr_scheduler_type"] in trl["lr_scheduler_type"].lower()
    assert (trl["loss_type"], trl["beta"], trl["epsilon"], trl["num_iterations"]) == ("dapo", 0.0, 0.2, 1)
    assert ours["top_k"] is None and trl["top_k"] == 0  # both: no top-k filtering
    assert "constant" in trl["lr_scheduler_type"].lower() and trl["gradient_checkpointing"] is False
    assert trl["num_generations_eval"] == ours["eval_samples"] == 2

    runs = {run["arm"]: run for run in report["runs"]}
    assert set(runs) == {"ours", "trl"}
    for arm, run in runs.items():
        assert run["steps"] == 2 and run["torch_threads"] == 1, arm
        assert [step for step, _ in run["train_reward"]] == [1, 2], arm
        assert [step for step, _ in run["valid_reward"]] == [0, 2], arm  # the baseline, then the last step
        assert all(is_reward(value) for _, value in run["train_reward"] + run["valid_reward"]), arm
        assert run["final_valid_reward"] == run["valid_reward"][-1][1]
        assert run["best_valid_reward"] == max(value for _, value in run["valid_reward"])
        # the step's parts add up to the step (means are linear; medians need not be)
        parts = sum(run[key]["mean"] for key in ("sampling_seconds", "grading_wait_seconds", "training_seconds"))
        assert math.isclose(parts, run["step_seconds"]["mean"], rel_tol=1e-3), arm
        assert run["sampling_seconds"]["mean"] > 0 and run["grading_seconds"]["mean"] > 0, arm
        assert 0 < run["step_seconds"]["median"] < run["train_call_seconds"] < run["process_seconds"], arm
        assert 100 < run["rss_before_training_mib"] <= run["peak_rss_mib"] < 8192, arm
    assert set(report["summary"]) == {"ours", "trl"}
    assert report["summary"]["trl"]["peak_rss_mib"]["mean"] == pytest.approx(runs["trl"]["peak_rss_mib"])
    assert report["setting_mode"] == "aligned" and report["final_valid_gap"] is None  # one seed: no standard error

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import vs_trl
    finally:
        sys.path.remove(str(BENCHMARKS))
    vs_trl.print_table(report)
    table = capsys.readouterr().out
    assert "ours (rft train)" in table and "TRL GRPOTrainer" in table and "peak RSS (MiB)" in table
    assert "Not aligned:" in table


def import_benchmark(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_vs_trl_judges_ours_against_trl_by_one_standard_error():
    vs_trl = import_benchmark("vs_trl")
    runs = [{"arm": arm, "final_valid_reward": value} for arm, values in
            (("ours", [0.8, 0.9, 1.0]), ("trl", [0.9, 1.0, 1.1])) for value in values]
    gap = vs_trl.final_valid_gap(runs)
    assert gap["ours_minus_trl"] == pytest.approx(-0.1)
    assert gap["standard_error"] == pytest.approx(math.sqrt(2 * 0.01 / 3))  # each arm: variance 0.01, 3 seeds
    assert gap["within_one_se"] is False  # 0.1 behind, one standard error is 0.082
    runs[0]["final_valid_reward"] = 1.0  # ours 0.967, 0.033 behind; one standard error is 0.067
    assert vs_trl.final_valid_gap(runs)["within_one_se"] is True


def test_vs_trl_own_defaults_keep_the_job_and_drop_the_aligned_settings(tmp_path):
    vs_trl = import_benchmark("vs_trl")
    aligned = vs_trl.benchmark_job(tmp_path, 4, 0, (2, 2), "aligned")
    own = vs_trl.benchmark_job(tmp_path, 4, 0, (2, 2), "own-defaults")
    assert aligned["trainer"]["lr_scheduler_type"] == "constant_with_warmup"
    assert not set(vs_trl.OUR_ALIGNED_FIELDS) & set(own["trainer"])
    assert own["method"] == aligned["method"] and own["trainer"]["learning_rate"] == aligned["trainer"]["learning_rate"]
    config = vs_trl.trl_config(own, tmp_path / "trl", 50, "own-defaults")
    assert str(config.lr_scheduler_type).lower().endswith("linear")  # TRL's default schedule
    assert config.gradient_checkpointing is True and config.learning_rate == own["trainer"]["learning_rate"]
    config = vs_trl.trl_config(aligned, tmp_path / "trl", 50, "aligned")
    assert str(config.lr_scheduler_type).lower().endswith("constant_with_warmup") and config.warmup_steps == 10


def test_few_examples_prints_what_it_writes(tmp_path):
    finished = run_script("few_examples.py", "--rows", "8", "--steps", "2", "--seeds", "0", "--output-dir", str(tmp_path))
    report = json.loads((tmp_path / "few_examples.json").read_text())
    assert (report["rows"], report["steps"], report["seeds"], report["valid_rows"]) == (8, 2, [0], 50)
    [run] = report["runs"]
    assert run["rows"] == 8 and set(run["scores"]) == {"base", "sft", "rft"}
    lines = finished.stdout.splitlines()
    for arm, label in (("base", "base"), ("sft", "SFT on the rows"), ("rft", "RFT on the rows")):
        [line] = [line for line in lines if line.startswith(label)]
        sampled, greedy = run["scores"][arm]["sampled_exact"], run["scores"][arm]["greedy_exact"]
        assert all(is_reward(value) for value in (sampled, greedy))
        assert line.split()[-6:] == [f"{sampled:.3f}", "±", "0.000", f"{greedy:.3f}", "±", "0.000"], line
        assert report["summary"][arm]["sampled_exact"]["mean"] == sampled
    assert f"seed 0: sampled exact base {run['scores']['base']['sampled_exact']:.3f}" in finished.stderr
    assert (Path(run["run_dir"]) / "rft" / "metrics.csv").is_file()  # a whole `rft train` run folder
    # the rows are new: neither the warm-up's nor the validation's
    from rft_plugins.data.demo import demo_rows

    taken = {row["messages"][0]["content"] for rows in demo_rows() for row in rows}
    assert not {row["messages"][0]["content"] for row in import_benchmark("few_examples").fresh_rows(100, 0)} & taken


def test_gpu_step_measures_one_step_of_both_arms_on_cpu(tmp_path, capsys):
    finished = run_script("gpu_step.py", "--shape", "tiny", "--device", "cpu", "--prompts", "2", "--generations", "2",
                          "--max-new-tokens", "8", "--steps", "2", "--micro-batch-size", "2", "--workdir", str(tmp_path),
                          "--json")
    report = json.loads(finished.stdout)
    assert report["machine"]["device"] == "cpu" and report["job"]["threads_per_arm"] == 1
    assert report["shape"]["name"] == "tiny" and report["shape"]["vocab_size"] == 2000
    assert report["shape"]["parameters"] > 100_000 and (tmp_path / "qwen2-tiny-2000-fp32" / "shape.json").is_file()
    assert 100 < report["job"]["prompt_tokens_mean"] < 250  # realistic prompts, not a word or two
    assert "--shape tiny" in report["command"] and report["differences"]

    ours, trl = report["settings"]["ours"], report["settings"]["trl"]
    assert ours["micro_batch_size"] == trl["per_device_train_batch_size"] == 2
    assert trl["generation_batch_size"] == ours["batch_size"] * ours["num_generations"] == 4  # one rollout per step
    assert trl["gradient_accumulation_steps"] == trl["steps_per_generation"] == 2
    for key in ("num_generations", "max_completion_length", "learning_rate", "lr_scheduler_type", "loss_type", "beta",
                "epsilon", "num_iterations", "max_grad_norm", "temperature", "top_p", "gradient_checkpointing",
                "model_init_kwargs", "seed"):
        assert trl[key] == ours[key], key
    assert (ours["max_completion_length"], ours["learning_rate"], ours["lr_scheduler_type"]) == (8, 1e-6, "constant")
    assert ours["top_k"] is None and trl["top_k"] == 0  # both: no top-k filtering
    assert ours["lora"] is None and trl["lora"] is None and trl["bf16"] is False and ours["precision"] == "32-true"

    runs, summary = report["arms"], report["summary"]
    assert set(runs) == {"ours", "trl"}
    for arm, run in runs.items():
        assert "error" not in run, run.get("error")
        assert len(run["steps"]) == 2 and run["torch_threads"] == 1, arm
        for step in run["steps"]:
            assert min(step["step_s"], step["sampling_s"], step["training_s"]) > 0, arm
            parts = step["sampling_s"] + step["grading_wait_s"] + step["training_s"]
            assert math.isclose(parts, step["step_s"], rel_tol=1e-6), arm
            assert 0 < step["completion_length_mean"] <= 8, arm
            assert step["sampling_tokens_per_s"] == pytest.approx(step["completion_length_mean"] * 4 / step["sampling_s"])
        assert 0 < run["setup_s"] < run["train_call_s"] < run["process_s"], arm
        assert 100 < run["peak_rss_mib"] < 8192, arm
        first, second = run["steps"]
        assert summary[arm]["warmup_step_s"] == first["step_s"] and summary[arm]["step_s"] == second["step_s"], arm
        assert "peak_gpu_allocated_gib" not in summary[arm]  # on CPU: RSS only
    assert not (tmp_path / "runs-tiny" / "ours" / "checkpoints").exists()  # our run's weights do not pile up
    ratios = summary["ratio"]
    assert {"step_s", "sampling_s", "training_s", "sampling_tokens_per_s", "peak_rss_mib", "setup_s"} <= set(ratios)
    for key, ratio in ratios.items():
        assert ratio == pytest.approx(summary["ours"][key] / summary["trl"][key]), key

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import gpu_step
    finally:
        sys.path.remove(str(BENCHMARKS))
    report["arms"]["trl"] = {"arm": "trl", "error": "torch.OutOfMemoryError: CUDA out of memory.", "out_of_memory": True}
    report["summary"].update(trl=gpu_step.summarise(report["arms"]["trl"]), ratio={})
    gpu_step.print_table(report)
    table = capsys.readouterr().out
    assert "ours (rft train)" in table and "TRL GRPOTrainer" in table and "ours/TRL" in table
    assert "trl failed (out of memory)" in table and "sampling tokens/s" in table
