"""The few-examples claim behind RFT: with a few dozen training rows, RFT against SFT on the same rows.

    python benchmarks/few_examples.py                     # 64 rows, 60 steps, seeds 0 1 2 (~3 min)
    python benchmarks/few_examples.py --rows 100 --seeds 0 1 2 3 4
    python benchmarks/few_examples.py --json

The task and the starting model are the demo's (rft_plugins/data/demo.py): the tiny model after
its supervised warm-up, which samples the exact digit about a quarter of the time. Each seed draws
``--rows`` new training rows (strings in neither the warm-up's rows nor the validation rows) and
trains two copies of that model on them, with the same number of steps and rows per step:

- RFT: ``rft_plugins.training.run.train``, the demo job's settings (8 samples per prompt, reward 1
  for the exact digit);
- SFT: ``rft_plugins.sft.supervised_finetune`` on the rows' exact answers, at RFT's learning rate
  and schedule (3e-3 after 10 steps of linear warm-up).

All three models (base, SFT, RFT) are then scored on the demo's 50 validation rows, exactly rather
than by sampling: the probability that a sample at temperature 1 is exactly the answer (what the
RFT validation reward estimates) and the share of rows whose greedy answer is exact.

Writes ``few_examples.json`` to ``--output-dir`` (default benchmarks/results/few_examples,
git-ignored), with each run under ``runs/``. torch runs on one thread (see learning_curve.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # learning_curve.py, next to this file

from learning_curve import quiet, spread, task_job  # noqa: E402

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "few_examples"
ARMS = ("base", "sft", "rft")
LABELS = {"base": "base (the demo's warm model)", "sft": "SFT on the rows", "rft": "RFT on the rows"}


def fresh_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` demo-task rows whose strings are in neither the demo's training nor validation rows."""
    from rft_plugins.data.demo import demo_rows

    taken = {row["messages"][0]["content"] for rows in demo_rows() for row in rows}
    fresh: list[dict[str, Any]] = []
    draw = 1000 + seed
    while len(fresh) < count:
        train, valid = demo_rows(draw)
        fresh += [row for row in train + valid if row["messages"][0]["content"] not in taken][: count - len(fresh)]
        taken |= {row["messages"][0]["content"] for row in fresh}
        draw += 1000
    return fresh


def score(model_path: Path, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Exact-answer probability at temperature 1 and greedy exact rate on ``rows``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rft_plugins.sft import exact_probability, greedy_exact_rate

    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_path), AutoTokenizer.from_pretrained(model_path)
    return {"sampled_exact": exact_probability(model, tokenizer, rows), "greedy_exact": greedy_exact_rate(model, tokenizer, rows)}


def run_rft(model: Path, rows: list[dict[str, Any]], valid: list[dict[str, Any]], steps: int, seed: int,
            folder: Path) -> Path:
    """The demo job on ``rows`` for ``steps`` steps; returns the final model's folder."""
    from rft_plugins.training.run import train

    job = task_job(model, steps, seed, eval_interval=steps, eval_samples=1)
    hyperparameters = job["method"]["reinforcement"]["hyperparameters"]
    hyperparameters["n_epochs"] = math.ceil(steps / math.ceil(len(rows) / hyperparameters["batch_size"]))
    with contextlib.redirect_stdout(sys.stderr):
        train(job, output_dir=folder, train_rows=rows, valid_rows=valid, overwrite=True, progress_bar=False)
    return folder / "final"


def run_seed(model: Path, rows_count: int, steps: int, seed: int, folder: Path) -> dict[str, Any]:
    """Base, SFT and RFT scored on the validation rows, for one draw of training rows."""
    from rft_plugins.data.demo import JOB, demo_rows
    from rft_plugins.sft import supervised_finetune

    _, valid = demo_rows()
    rows = fresh_rows(rows_count, seed)
    batch = JOB["method"]["reinforcement"]["hyperparameters"]["batch_size"]
    started = time.perf_counter()
    warmup = JOB["trainer"]["warmup_steps"]  # as RFT's: Adam's first steps at full rate undo the warm-up
    sft = supervised_finetune(model, rows, folder / "sft", batch_size=batch, max_steps=steps, warmup_steps=warmup,
                              seed=seed).path
    sft_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rft = run_rft(model, rows, valid, steps, seed, folder / "rft")
    rft_seconds = time.perf_counter() - started
    return {
        "seed": seed,
        "rows": len(rows),
        "scores": {"base": score(model, valid), "sft": score(sft, valid), "rft": score(rft, valid)},
        "seconds": {"sft": sft_seconds, "rft": rft_seconds},
        "run_dir": str(folder),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per arm and measure, mean/std/min/max across seeds."""
    return {arm: {measure: spread([run["scores"][arm][measure] for run in runs])
                  for measure in ("sampled_exact", "greedy_exact")} for arm in ARMS}


def print_table(report: dict[str, Any]) -> None:
    summary, seeds = report["summary"], report["seeds"]
    print(f"demo task, {report['rows']} training rows, {report['steps']} steps, seed(s) {' '.join(map(str, seeds))}, "
          f"{report['valid_rows']} held-out rows, mean ± std across seeds")
    header = f"{'':<30} {'exact, sampled (T=1)':>22} {'exact, greedy':>16}"
    print(header)
    print("-" * len(header))
    for arm in ARMS:
        cells = [f"{summary[arm][key]['mean']:.3f} ± {summary[arm][key]['std']:.3f}"
                 for key in ("sampled_exact", "greedy_exact")]
        print(f"{LABELS[arm]:<30} {cells[0]:>22} {cells[1]:>16}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=64, help="training rows per seed (default 64)")
    parser.add_argument("--steps", type=int, default=60, help="optimisation steps for both SFT and RFT (default 60)")
    parser.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0, 1, 2], help="one draw of rows per seed")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    args = parser.parse_args(argv)
    if min(args.rows, args.steps) < 1:
        parser.error("--rows and --steps must be at least 1")
    quiet()
    import torch

    torch.set_num_threads(1)
    from rft_plugins.data.demo import build_demo_models, demo_rows

    load_before = os.getloadavg()[0]
    output = args.output_dir.resolve()
    model = build_demo_models(output)
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(model, args.rows, args.steps, seed, output / "runs" / f"seed-{seed}"))
        scores = runs[-1]["scores"]
        print(f"seed {seed}: sampled exact base {scores['base']['sampled_exact']:.3f}, "
              f"SFT {scores['sft']['sampled_exact']:.3f}, RFT {scores['rft']['sampled_exact']:.3f}", file=sys.stderr)
    report = {
        "benchmark": "few_examples",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "load_average_1m": [load_before, os.getloadavg()[0]],
                    "python": platform.python_version(), "torch": torch.__version__},
        "rows": args.rows,
        "steps": args.steps,
        "seeds": args.seeds,
        "valid_rows": len(demo_rows()[1]),
        "runs": runs,
        "summary": summarise(runs),
    }
    path = output / "few_examples.json"
    report["files"] = {"json": str(path)}
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
