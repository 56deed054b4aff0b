"""Our RFT loop next to TRL's ``GRPOTrainer``: same task, model, grader and settings, side by side.

    python benchmarks/vs_trl.py                      # 60 steps, seeds 0-4, both arms, aligned (~5 min)
    python benchmarks/vs_trl.py --settings own-defaults   # the same job, each engine's defaults otherwise
    python benchmarks/vs_trl.py --steps 100 --seeds 0 1 2
    python benchmarks/vs_trl.py --json

Both arms train the ``rft train --demo`` task (see benchmarks/learning_curve.py) from the same
tiny model folder (``rft_plugins.tiny_model`` after the demo's supervised warm-up), graded by the
same grader JSON: (a) through
``rft_plugins.training.run.train``, (b) through ``trl.GRPOTrainer`` with
``rft_plugins.adapters.trl.reward_funcs``. Each arm runs in its own Python process, one after the
other, so that peak memory (``ru_maxrss``) and imports belong to that arm alone.

Aligned: prompts per step (TRL ``per_device_train_batch_size`` = prompts x generations = ours
``micro_batch_size``: one forward/backward per step), generations per prompt, max completion
length, learning rate and its schedule (the demo job's: constant after 10 warm-up steps),
loss ``dapo``, beta 0, epsilon 0.2, group reward scaling, one optimisation pass per rollout,
gradient clipping 1.0, no weight decay, AdamW (torch), float32, no gradient checkpointing (both
engines default to it; a 22k-parameter model gains nothing), temperature 1 without top-k/top-p,
validation every ``eval_interval`` steps with ``eval_samples`` samples per held-out prompt, the
seed value.
``DIFFERENCES`` lists what could not be aligned; it is printed with the table and in the JSON.
With ``--settings own-defaults`` only the job's own fields are shared (model, data, grader,
prompts per step, generations, completion length, learning rate, temperature, steps, validation,
seed); everything else is each engine's default (``OUR_ALIGNED_FIELDS``, ``aligned_trl_settings``).

The bar for the loop: its mean final validation reward reaches TRL's less one standard error of
the difference (``final_valid_gap``, printed under the table with two seeds or more).

Timing per step: ours from the loop's own ``timing/*`` metrics; TRL's from a callback around
each optimisation step and a subclass that times ``_generate`` (sampling) and
``_calculate_rewards`` (grading). "training" is the rest of the step (log-probs, loss, backward,
optimiser). Ours grades in a background thread while the first forward pass runs, so its
grading time is shown twice: the grader's own time, and the time the step waited for it.

Each arm's torch runs on ``--threads`` threads (default 1, the same for both). The tiny model gains
little from a second thread, and with two threads per process on a 2-core machine, any other work
running there stalls every parallel operation: step times then grow 10-100x and say more about
the neighbours than about the loop. ``--threads 2`` measures with both cores on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # learning_curve.py, next to this file

from learning_curve import EVAL_INTERVAL, EVAL_SAMPLES, demo_rows, quiet, spread, task_job  # noqa: E402

ARMS = ("ours", "trl")
#: what the two arms do differently that this benchmark could not (or should not) align
DIFFERENCES = [
    "Random streams: both arms seed Python, NumPy and torch with the same value, but consume the "
    "streams differently (TRL, for one, draws a shuffle of every generation batch from torch's "
    "global generator: trl.trainer.utils.shuffle_sequence_dict), so they see different rollouts; "
    "compare across seeds, not sample by sample.",
    "Last partial batch: none on this task (160 training prompts, 16 per step); where there is one, ours "
    "trains on it and TRL's RepeatSampler drops it.",
    "Grading overlap: ours grades in a background thread while the first forward pass runs; TRL "
    "grades synchronously between generation and the loss.",
    "Run outputs: ours writes metrics CSV, TensorBoard, resume checkpoints every eval_interval, the "
    "best models, the final model, a reward plot and a samples table; the TRL arm saves nothing "
    "(save_strategy='no', report_to none). This is in the run wall time, not in the step time.",
    "Validation: TRL's evaluation also computes the eval loss (an extra forward pass); ours samples "
    "and grades only. Both validate before the first step (the baseline), every eval_interval steps "
    "and after the last step.",
    "Frameworks: Lightning (manual optimisation) vs. transformers Trainer + accelerate; the baseline "
    "memory (RSS before training) differs with what each imports.",
]


# ------------------------------------------------------------------------------- measurements
def rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "mean": statistics.fmean(values)} if values else {}


def reward_figures(train: list[list[float]], valid: list[list[float]], window: int) -> dict[str, float | None]:
    """Final and best valid reward; train reward as the mean of each ``window`` steps (it is noisy)."""
    windows = [statistics.fmean(value for _, value in train[start:start + window])
               for start in range(0, len(train), window)]
    valid_values = [value for _, value in valid]
    return {
        "final_valid_reward": valid_values[-1] if valid_values else None,
        "best_valid_reward": max(valid_values) if valid_values else None,
        "final_train_reward": windows[-1] if windows else None,
        "best_train_reward": max(windows) if windows else None,
    }


# ------------------------------------------------------------------------------------ arm: ours
#: the loop's resolved settings reported next to TRL's (``batch_size`` counts prompts)
OUR_SETTINGS = (
    "batch_size", "num_generations", "max_completion_length", "learning_rate", "loss_type", "beta", "epsilon",
    "epsilon_high", "scale_rewards", "num_iterations", "max_grad_norm", "weight_decay", "temperature", "top_p",
    "top_k", "eval_samples", "seed", "lr_scheduler_type", "warmup_steps", "gradient_checkpointing",
    "mask_truncated_completions", "micro_batch_size",
)


#: trainer fields of the benchmark's job that are settings, not the job: dropped with --settings own-defaults
OUR_ALIGNED_FIELDS = ("lr_scheduler_type", "warmup_steps", "gradient_checkpointing", "micro_batch_size")
SETTINGS = ("aligned", "own-defaults")


def benchmark_job(model: Path, steps: int, seed: int, evals: tuple[int, int], settings: str) -> dict[str, Any]:
    """The demo job for ``steps`` steps; with ``own-defaults``, the loop's defaults for everything but the job."""
    job = task_job(model, steps, seed, *evals)
    if settings == "own-defaults":
        for key in OUR_ALIGNED_FIELDS:
            job["trainer"].pop(key, None)
    return job


def run_ours(
    model: Path, steps: int, seed: int, workdir: Path, evals: tuple[int, int], settings: str = "aligned"
) -> dict[str, Any]:
    """The task through ``rft_plugins.training.run.train`` (``rft train``)."""
    from rft_plugins.training.job import job_from_dict, resolve
    from rft_plugins.training.outputs import read_metrics
    from rft_plugins.training.run import train

    train_rows, valid_rows = demo_rows()
    job = benchmark_job(model, steps, seed, evals, settings)
    parsed = job_from_dict(job, check_files=False)
    resolved = resolve(parsed, len(train_rows))  # the settings the loop will use
    rss_before = rss_mib()
    started = time.perf_counter()
    result = train(job, output_dir=workdir / "ours", train_rows=train_rows, valid_rows=valid_rows, overwrite=True,
                   progress_bar=False)
    seconds = time.perf_counter() - started
    metrics = read_metrics(workdir / "ours" / "metrics.csv")

    def column(name: str) -> list[float]:
        return [value for _, value in metrics.get(name, [])]

    return {
        "steps": result.final_step,
        "train_call_seconds": seconds,
        "step_seconds": step_stats(column("timing/full_iteration_s")),
        "sampling_seconds": step_stats(column("timing/sampling_s")),
        "grading_seconds": step_stats(column("timing/grading_s")),
        "grading_wait_seconds": step_stats(column("timing/grading_wait_s")),
        "training_seconds": step_stats(column("timing/training_s")),
        "train_reward": [[step, value] for step, value in metrics.get("train_reward_mean", [])],
        "valid_reward": [[step, value] for step, value in metrics.get("valid_reward_mean", [])],
        "rss_before_training_mib": rss_before,
        "settings": {key: getattr(resolved, key) for key in OUR_SETTINGS}
        | {"eval_interval": evals[0], "max_steps": steps, "precision": parsed.trainer.precision,
           "eval_on_start": parsed.trainer.eval_on_start},
    }


# ------------------------------------------------------------------------------------- arm: TRL
def trl_config(job: dict[str, Any], output_dir: Path, n_valid: int, settings: str = "aligned") -> Any:
    """``GRPOConfig`` with our job's effective settings; batch sizes count samples, not prompts.

    With ``own-defaults``, only what the job says (batch, generations, completion length, learning
    rate, temperature, steps, validation, seed): TRL's defaults for the rest.
    """
    from trl import GRPOConfig

    trainer, hyper = job["trainer"], job["method"]["reinforcement"]["hyperparameters"]
    return GRPOConfig(
        **(aligned_trl_settings(trainer) if settings == "aligned" else {}),
        output_dir=str(output_dir),
        per_device_train_batch_size=hyper["batch_size"] * trainer["num_generations"],
        num_generations=trainer["num_generations"],
        num_generations_eval=hyper["eval_samples"],
        per_device_eval_batch_size=n_valid * hyper["eval_samples"],
        max_completion_length=trainer["max_completion_length"],
        learning_rate=trainer["learning_rate"],
        temperature=trainer["temperature"],
        use_cpu=True,
        max_steps=trainer["max_steps"],
        eval_strategy="steps",
        eval_steps=hyper["eval_interval"],
        eval_on_start=True,  # as ours: the untrained model's baseline first
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=trainer["seed"],
    )


def aligned_trl_settings(trainer: dict[str, Any]) -> dict[str, Any]:
    """GRPOConfig fields set as our loop has them (what ``own-defaults`` leaves to TRL)."""
    return dict(
        lr_scheduler_type=trainer["lr_scheduler_type"],  # the job's (TRL/transformers default: linear decay)
        warmup_steps=trainer.get("warmup_steps", 0),
        optim="adamw_torch",
        weight_decay=0.0,
        max_grad_norm=1.0,
        loss_type="dapo",
        beta=0.0,
        epsilon=0.2,
        scale_rewards="group",
        num_iterations=1,
        top_p=1.0,
        top_k=0,
        gradient_checkpointing=False,  # TRL's default is True; ours recomputes nothing
        bf16=False,  # TRL's default is bf16 when fp16 is off; ours trains in float32
    )


def timed_trainer_class() -> type:
    """``GRPOTrainer`` that adds up, per mode, the seconds spent sampling and grading."""
    from trl import GRPOTrainer

    class TimedGRPOTrainer(GRPOTrainer):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.phase_seconds = {"sampling": 0.0, "grading": 0.0}

        def _timed(self, phase: str, call: Any, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args)
            finally:
                if self.model.training:  # the train step's, not the evaluation's
                    self.phase_seconds[phase] += time.perf_counter() - started

        def _generate(self, prompts: list) -> Any:
            return self._timed("sampling", super()._generate, prompts)

        def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
            return self._timed("grading", super()._calculate_rewards, inputs, prompts, completions,
                               completion_ids_list)

    return TimedGRPOTrainer


def step_clock() -> Any:
    """A callback timing each optimisation step and collecting the trainer's phase seconds."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.trainer: Any = None
            self.steps: list[dict[str, float]] = []
            self._started = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.trainer.phase_seconds = {"sampling": 0.0, "grading": 0.0}
            self._started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            total = time.perf_counter() - self._started
            phases = dict(self.trainer.phase_seconds)
            self.steps.append({"step": total, **phases, "training": total - phases["sampling"] - phases["grading"]})

    return StepClock()


def run_trl(
    model: Path, steps: int, seed: int, workdir: Path, evals: tuple[int, int], settings: str = "aligned"
) -> dict[str, Any]:
    """The task through ``trl.GRPOTrainer`` with our graders as reward functions."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rft_plugins.adapters.trl import reward_funcs

    train_rows, valid_rows = demo_rows()
    job = benchmark_job(model, steps, seed, evals, settings)

    def dataset(rows: list[dict[str, Any]]) -> Any:
        return Dataset.from_list([{"prompt": row["messages"], "answer": row["answer"]} for row in rows])

    config = trl_config(job, workdir / "trl", len(valid_rows), settings)
    clock = step_clock()
    rss_before = rss_mib()
    started = time.perf_counter()
    trainer = timed_trainer_class()(
        model=AutoModelForCausalLM.from_pretrained(job["model"]),
        processing_class=AutoTokenizer.from_pretrained(job["model"]),
        reward_funcs=reward_funcs(job["method"]["reinforcement"]["grader"]),
        args=config,
        train_dataset=dataset(train_rows),
        eval_dataset=dataset(valid_rows),
        callbacks=[clock],
    )
    clock.trainer = trainer
    trainer.train()
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    return {
        "steps": trainer.state.global_step,
        "train_call_seconds": seconds,
        "step_seconds": step_stats([step["step"] for step in clock.steps]),
        "sampling_seconds": step_stats([step["sampling"] for step in clock.steps]),
        "grading_seconds": step_stats([step["grading"] for step in clock.steps]),
        "grading_wait_seconds": step_stats([step["grading"] for step in clock.steps]),  # synchronous
        "training_seconds": step_stats([step["training"] for step in clock.steps]),
        "train_reward": [[entry["step"], entry["reward"]] for entry in history if "reward" in entry],
        "valid_reward": [[entry["step"], entry["eval_reward"]] for entry in history if "eval_reward" in entry],
        "rss_before_training_mib": rss_before,
        "settings": {key: getattr(config, key) for key in (
            "per_device_train_batch_size", "num_generations", "generation_batch_size", "steps_per_generation",
            "max_completion_length", "learning_rate", "lr_scheduler_type", "warmup_steps", "optim", "loss_type", "beta",
            "epsilon", "epsilon_high", "scale_rewards", "num_iterations", "max_grad_norm", "weight_decay",
            "gradient_checkpointing", "bf16", "temperature", "top_p", "top_k", "mask_truncated_completions",
            "eval_steps", "eval_on_start", "num_generations_eval", "seed", "max_steps")},
    }


def run_arm(
    arm: str, model: Path, steps: int, seed: int, workdir: Path, evals: tuple[int, int], threads: int,
    settings: str = "aligned",
) -> dict[str, Any]:
    """One arm in this process; the figures plus this process's peak memory."""
    quiet(lightning=arm == "ours")  # the TRL arm's memory must not include Lightning
    import torch

    torch.set_num_threads(threads)

    run = run_ours if arm == "ours" else run_trl
    result = run(model, steps, seed, workdir, evals, settings)
    result["settings"] = {key: str(value) if hasattr(value, "value") else value
                          for key, value in result["settings"].items()}  # enums as text
    result.update(reward_figures(result["train_reward"], result["valid_reward"], evals[0]))
    result.update(arm=arm, seed=seed, peak_rss_mib=rss_mib(), torch_threads=torch.get_num_threads())
    return result


# ------------------------------------------------------------------------------------ the parent
def spawn_arm(
    arm: str, model: Path, steps: int, seed: int, workdir: Path, evals: tuple[int, int], threads: int,
    settings: str = "aligned",
) -> dict[str, Any]:
    """Run one arm in a fresh Python process (its own memory and imports); returns its figures."""
    result_file = workdir / f"{arm}-seed{seed}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--arm", arm, "--model", str(model),
               "--steps", str(steps), "--seeds", str(seed), "--workdir", str(workdir), "--result", str(result_file),
               "--eval-interval", str(evals[0]), "--eval-samples", str(evals[1]), "--threads", str(threads),
               "--settings", settings]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                   "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, env=environment)
    if finished.returncode != 0:
        raise RuntimeError(f"the {arm} arm (seed {seed}) failed with exit code {finished.returncode}:\n"
                           f"{finished.stderr[-4000:]}")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    result["process_seconds"] = time.perf_counter() - started
    return result


#: the table's rows: label, figure key, how to read it from one run
FIGURES = [
    ("step wall time, median (s)", "step_s", lambda run: run["step_seconds"]["median"]),
    ("  sampling (s)", "sampling_s", lambda run: run["sampling_seconds"]["median"]),
    ("  grading: grader time (s)", "grading_s", lambda run: run["grading_seconds"]["median"]),
    ("  grading: step waited (s)", "grading_wait_s", lambda run: run["grading_wait_seconds"]["median"]),
    ("  training (s)", "training_s", lambda run: run["training_seconds"]["median"]),
    ("train call wall time (s)", "train_call_s", lambda run: run["train_call_seconds"]),
    ("process wall time (s)", "process_s", lambda run: run["process_seconds"]),
    ("final valid reward", "final_valid_reward", lambda run: run["final_valid_reward"]),
    ("best valid reward", "best_valid_reward", lambda run: run["best_valid_reward"]),
    ("final train reward (last window)", "final_train_reward", lambda run: run["final_train_reward"]),
    ("best train reward (best window)", "best_train_reward", lambda run: run["best_train_reward"]),
    ("peak RSS (MiB)", "peak_rss_mib", lambda run: run["peak_rss_mib"]),
    ("RSS before training (MiB)", "rss_before_training_mib", lambda run: run["rss_before_training_mib"]),
]


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per arm, each figure's mean/std/min/max across seeds."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for arm in ARMS:
        mine = [run for run in runs if run["arm"] == arm]
        if mine:
            summary[arm] = {key: spread([float(read(run)) for run in mine])
                            for _, key, read in FIGURES if all(read(run) is not None for run in mine)}
    return summary


def final_valid_gap(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Ours minus TRL in final valid reward, with the standard error of that difference of means.

    ``within_one_se``: ours reaches at least TRL's mean less one standard error (the bar this
    benchmark sets for the loop). None without both arms or with fewer than two seeds.
    """
    finals = {arm: [run["final_valid_reward"] for run in runs if run["arm"] == arm] for arm in ARMS}
    if min(len(values) for values in finals.values()) < 2:
        return None
    error = math.sqrt(sum(statistics.variance(values) / len(values) for values in finals.values()))
    gap = statistics.fmean(finals["ours"]) - statistics.fmean(finals["trl"])
    return {"ours_minus_trl": gap, "standard_error": error, "within_one_se": gap >= -error}


def print_table(report: dict[str, Any]) -> None:
    summary, seeds = report["summary"], report["seeds"]
    print(f"demo task, {report['setting_mode']} settings, {report['steps']} steps, seed(s) {' '.join(map(str, seeds))}"
          f"{', mean ± std across seeds' if len(seeds) > 1 else ''}; {report['machine']['cpus']} CPU cores, "
          f"{report['machine']['torch_threads']} torch thread(s) per arm, "
          "load average {:.1f} before, {:.1f} after".format(*report["machine"]["load_average_1m"]))
    header = f"{'':<34} {'ours (rft train)':>18} {'TRL GRPOTrainer':>18}"
    print(header)
    print("-" * len(header))
    for label, key, _ in FIGURES:
        cells = []
        for arm in ARMS:
            figure = summary.get(arm, {}).get(key)
            if figure is None:
                cells.append("-")
                continue
            digits = 0 if "rss" in key else (1 if key.endswith("_s") and figure["mean"] >= 1 else 3)
            text = f"{figure['mean']:.{digits}f}"
            if len(seeds) > 1:
                text += f" ± {figure['std']:.{digits}f}"
            cells.append(text)
        print(f"{label:<34} {cells[0]:>18} {cells[1]:>18}")
    gap = report.get("final_valid_gap")
    if gap:
        verdict = "yes" if gap["within_one_se"] else "NO"
        print(f"final valid reward, ours - TRL: {gap['ours_minus_trl']:+.3f} (standard error {gap['standard_error']:.3f}); "
              f"ours reaches TRL's within one standard error: {verdict}")
    print("\nNot aligned:")
    for difference in DIFFERENCES:
        print(f"- {difference}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="optimisation steps per run (default 60)")
    parser.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="one run per arm per seed")
    parser.add_argument("--eval-interval", type=int, default=EVAL_INTERVAL, help="steps between validations")
    parser.add_argument("--eval-samples", type=int, default=EVAL_SAMPLES, help="samples per validation prompt")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per arm (default 1; see above)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="which arms to run")
    parser.add_argument("--settings", choices=SETTINGS, default="aligned",
                        help="aligned (default): every setting the same in both arms; own-defaults: the job's "
                        "fields only, each engine's defaults for the rest (learning-rate schedule included)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    parser.add_argument("--output", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--workdir", type=Path, help="model and run folders (default: a temporary folder)")
    # what the parent passes to the process of one arm
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.steps, args.eval_interval, args.eval_samples, args.threads) < 1:
        parser.error("--steps, --eval-interval, --eval-samples and --threads must be at least 1")
    evals = (args.eval_interval, args.eval_samples)

    if args.arm:  # one arm, in this process
        result = run_arm(args.arm, args.model, args.steps, args.seeds[0], args.workdir, evals, args.threads,
                         args.settings)
        args.result.write_text(json.dumps(result), encoding="utf-8")
        return 0

    load_before = os.getloadavg()[0]  # other work on the machine skews the timings: say how much
    with tempfile.TemporaryDirectory(prefix="rft-vs-trl-") as temporary:
        workdir = (args.workdir or Path(temporary)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        from rft_plugins.data.demo import build_demo_models

        quiet(lightning=False)

        model = build_demo_models(workdir)  # the demo's tiny model after its supervised warm-up
        runs = []
        for number, seed in enumerate(args.seeds):
            for arm in args.arms if number % 2 == 0 else args.arms[::-1]:  # neither arm always runs first
                runs.append(spawn_arm(arm, model, args.steps, seed, workdir / args.settings / f"seed-{seed}", evals,
                                      args.threads, args.settings))
                print(f"{arm}, seed {seed}: {runs[-1]['process_seconds']:.1f} s", file=sys.stderr)

    import torch

    train_rows, valid_rows = demo_rows()
    report = {
        "benchmark": "vs_trl",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads,
                    "load_average_1m": [load_before, os.getloadavg()[0]],
                    "python": platform.python_version(), "torch": torch.__version__,
                    "trl": _version("trl"), "transformers": _version("transformers"),
                    "lightning": _version("lightning"), "platform": platform.platform()},
        "task": {"name": "demo digit task (rft_plugins/data/demo.py)", "train_prompts": len(train_rows),
                 "valid_prompts": len(valid_rows), "eval_interval": args.eval_interval,
                 "eval_samples": args.eval_samples},
        "steps": args.steps,
        "seeds": args.seeds,
        "setting_mode": args.settings,
        "settings": {run["arm"]: run["settings"] for run in runs},
        "runs": runs,
        "summary": summarise(runs),
        "final_valid_gap": final_valid_gap(runs),
        "differences": DIFFERENCES,
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


if __name__ == "__main__":
    sys.exit(main())
