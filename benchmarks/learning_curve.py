"""Learning curves of ``rft train``: train and held-out validation reward per step, over seeds.

    python benchmarks/learning_curve.py                        # 60 steps, seeds 0-4 (~2 min)
    python benchmarks/learning_curve.py --steps 100 --seeds 0 1 2 3 4
    python benchmarks/learning_curve.py --json                 # the figures as JSON on stdout
    python benchmarks/learning_curve.py --vary-model           # each seed: its own initial weights and warm-up

The task is the one ``rft train --demo`` trains (rft_plugins/data/demo.py): a tiny model, after
the demo's supervised warm-up (``rft_plugins.sft``: it samples the exact answer about 20% of the
time), learns to answer which digit a string of consonants holds, graded by exact match
(``string_check`` ``eq``). 160 training prompts; the 50 validation prompts use strings never seen
in training. Each seed is one whole ``rft_plugins.training.run.train`` call (the ``rft train``
path, run folder and all); the seed changes data order and sampling, not the initial weights (the
same warm model for every seed), unless ``--vary-model``: then each seed builds its own tiny model
and warm-up from that seed too. The validation reward is also measured once before training
(step 0) with the same loop's validation.

Writes ``learning_curve.json`` (every figure) and ``learning_curve.png`` (mean and spread over
seeds) to ``--output-dir`` (default benchmarks/results/learning_curve, git-ignored), with each
seed's run folder under ``runs/``. torch runs on ``--threads`` threads (default 1): the tiny model
gains little from a second, and with two, any other work on the machine stalls every operation.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rft_plugins.data.demo import JOB, demo_rows  # noqa: E402

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "learning_curve"
#: the demo's loop settings, with validation made denser and less noisy for a curve
EVAL_INTERVAL = 5
EVAL_SAMPLES = 4


def quiet(lightning: bool = True) -> None:
    """Keep the terminal for the table: Lightning's banners, save progress bars, known warnings."""
    if lightning:
        import lightning as _  # noqa: F401  (it sets its loggers' levels on import: set ours after)

        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*too few batches.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def task_job(
    model: str | Path, steps: int, seed: int, eval_interval: int = EVAL_INTERVAL, eval_samples: int = EVAL_SAMPLES
) -> dict[str, Any]:
    """The demo job for ``steps`` optimisation steps: same grader, batch, lr and sampling settings."""
    job = copy.deepcopy(JOB)
    train_rows, _ = demo_rows()
    hyperparameters = job["method"]["reinforcement"]["hyperparameters"]
    steps_per_epoch = math.ceil(len(train_rows) / hyperparameters["batch_size"])
    hyperparameters.update(
        n_epochs=min(50, max(1, math.ceil(steps / steps_per_epoch))),
        eval_interval=eval_interval,
        eval_samples=eval_samples,
    )
    job["model"] = str(Path(model).resolve())
    # a model this small gains nothing from recomputing activations or from micro-batches (one pass
    # per step, as TRL's arm in vs_trl.py)
    samples = hyperparameters["batch_size"] * job["trainer"]["num_generations"]
    job["trainer"].update(max_steps=steps, seed=seed, gradient_checkpointing=False, micro_batch_size=samples)
    return job


def run_seed(model: Path, steps: int, seed: int, folder: Path, eval_interval: int, eval_samples: int) -> dict[str, Any]:
    """One ``rft train`` run: its reward per step (train every step, valid every ``eval_interval``)."""
    from rft_plugins.training.outputs import read_metrics
    from rft_plugins.training.run import train

    train_rows, valid_rows = demo_rows()
    job = task_job(model, steps, seed, eval_interval, eval_samples)
    started = time.perf_counter()
    result = train(job, output_dir=folder, train_rows=train_rows, valid_rows=valid_rows, overwrite=True,
                   progress_bar=False)
    seconds = time.perf_counter() - started
    metrics = read_metrics(folder / "metrics.csv")
    valid = metrics.get("valid_reward_mean", [])  # step 0: the run's own baseline validation
    return {
        "seed": seed,
        "steps": result.final_step,
        "seconds": round(seconds, 2),
        "train_reward": [[step, value] for step, value in metrics.get("train_reward_mean", [])],
        "valid_reward": [[step, value] for step, value in valid],
        "initial_valid_reward": valid[0][1],
        "final_valid_reward": valid[-1][1],
        "best_valid_reward": max(value for _, value in valid),
        "run_dir": str(folder),
    }


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample std (0 for one seed), min and max of one figure across seeds."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def window_means(points: list[list[float]], ends: list[int]) -> dict[int, float]:
    """Mean train reward over each window ``(previous end, end]``: a readable figure per row."""
    means, start = {}, 0
    for end in ends:
        values = [value for step, value in points if start < step <= end]
        if values:
            means[end] = statistics.fmean(values)
        start = end
    return means


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-step figures across seeds (steps every run reached), and the final/best/initial ones."""

    def across(key: str) -> list[dict[str, float]]:
        by_step: dict[int, list[float]] = {}
        for run in runs:
            for step, value in run[key]:
                by_step.setdefault(int(step), []).append(value)
        return [{"step": step, **spread(values)} for step, values in sorted(by_step.items())
                if len(values) == len(runs)]

    valid = across("valid_reward")
    ends = [row["step"] for row in valid if row["step"] > 0]
    windows: dict[int, list[float]] = {}
    for run in runs:
        for step, value in window_means(run["train_reward"], ends).items():
            windows.setdefault(step, []).append(value)
    return {
        "train_reward": across("train_reward"),
        "valid_reward": valid,
        "train_reward_window": [{"step": step, **spread(values)} for step, values in sorted(windows.items())
                                if len(values) == len(runs)],
        **{key: spread([run[key] for run in runs])
           for key in ("initial_valid_reward", "final_valid_reward", "best_valid_reward", "seconds")},
    }


def plot(summary: dict[str, Any], path: Path, title: str) -> Path:
    """Mean train and valid reward against step, each with its min-max band across seeds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), dpi=100)
    axes = figure.subplots()
    for key, label, style in (("train_reward", "train reward", "-"), ("valid_reward", "valid reward (held out)", "o-")):
        rows = summary[key]
        steps = [row["step"] for row in rows]
        line = axes.plot(steps, [row["mean"] for row in rows], style, label=label, markersize=4)[0]
        axes.fill_between(steps, [row["min"] for row in rows], [row["max"] for row in rows],
                          color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xlabel("step")
    axes.set_ylabel("mean reward")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _figure(row: dict[str, float] | None) -> str:
    if row is None:
        return "-"
    return f"{row['mean']:.3f} ± {row['std']:.3f}"


def print_table(report: dict[str, Any]) -> None:
    summary = report["summary"]
    windows = {row["step"]: row for row in summary["train_reward_window"]}
    seeds = len(report["runs"])
    print(f"rft train, demo task ({report['task']['model']}), {seeds} seed(s), mean ± std across seeds")
    header = f"{'step':>5}  {'train reward (window)':>22}  {'valid reward':>15}  {'valid min-max':>13}"
    print(header)
    print("-" * len(header))
    for row in summary["valid_reward"]:
        band = f"{row['min']:.2f}-{row['max']:.2f}"
        print(f"{row['step']:>5}  {_figure(windows.get(row['step'])):>22}  {_figure(row):>15}  {band:>13}")
    print(f"final valid {_figure(summary['final_valid_reward'])}, best valid {_figure(summary['best_valid_reward'])}, "
          f"{summary['seconds']['mean']:.1f} s per run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="optimisation steps per run (default 60)")
    parser.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="one run per seed")
    parser.add_argument("--eval-interval", type=int, default=EVAL_INTERVAL, help="steps between validations")
    parser.add_argument("--eval-samples", type=int, default=EVAL_SAMPLES, help="samples per validation prompt")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; see above)")
    parser.add_argument("--vary-model", action="store_true",
                        help="each seed also builds its own tiny model and warm-up (initial weights seeded too)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    args = parser.parse_args(argv)
    if min(args.steps, args.eval_interval, args.eval_samples, args.threads) < 1:
        parser.error("--steps, --eval-interval, --eval-samples and --threads must be at least 1")
    quiet()
    import torch

    torch.set_num_threads(args.threads)

    from rft_plugins.data.demo import build_demo_models

    load_before = os.getloadavg()[0]  # other work on the machine skews the timings: say how much
    output = args.output_dir.resolve()
    model = build_demo_models(output)  # the demo's tiny model and its warm-up, built once
    runs = []
    for seed in args.seeds:
        if args.vary_model:
            model = build_demo_models(output / "models" / f"seed-{seed}", seed=seed)
        with contextlib.redirect_stdout(sys.stderr):  # Lightning's model summary: stdout is for the report
            runs.append(run_seed(model, args.steps, seed, output / "runs" / f"seed-{seed}", args.eval_interval,
                                 args.eval_samples))
        print(f"seed {seed}: final valid reward {runs[-1]['final_valid_reward']:.3f} in {runs[-1]['seconds']:.1f} s",
              file=sys.stderr)
    train_rows, valid_rows = demo_rows()
    job = task_job(model, args.steps, args.seeds[0], args.eval_interval, args.eval_samples)
    report = {
        "benchmark": "learning_curve",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "load_average_1m": [load_before, os.getloadavg()[0]],
                    "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()},
        "task": {
            "name": "demo digit task (rft_plugins/data/demo.py)",
            "model": f"tiny OLMo-2 (rft_plugins.tiny_model, {'each run its seed' if args.vary_model else 'seed 0'}) "
                     "after the demo's supervised warm-up",
            "grader": job["method"]["reinforcement"]["grader"]["name"],
            "train_prompts": len(train_rows),
            "valid_prompts": len(valid_rows),
            "hyperparameters": job["method"]["reinforcement"]["hyperparameters"],
            "trainer": {key: job["trainer"][key] for key in
                        ("num_generations", "max_completion_length", "learning_rate", "temperature")},
        },
        "steps": args.steps,
        "seeds": args.seeds,
        "vary_model": args.vary_model,
        "runs": runs,
        "summary": summarise(runs),
    }
    png = plot(report["summary"], output / "learning_curve.png",
               f"rft train, demo task: {len(runs)} seed(s), mean and min-max")
    report["files"] = {"png": str(png), "json": str(output / "learning_curve.json")}
    (output / "learning_curve.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
        print(f"wrote {report['files']['png']} and {report['files']['json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
