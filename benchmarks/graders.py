"""Grader throughput: grades per second through the batch API, on generated samples.

    python benchmarks/graders.py                 # string_check and text_similarity fuzzy_match
    python benchmarks/graders.py --all --n 1000  # every text_similarity metric too
    python benchmarks/graders.py --json
    python benchmarks/graders.py --trl           # also each grader as a TRL reward function

Each case is a grader config graded over the same ``--n`` (sample, item) pairs with
``build_grader(config).grade_batch(samples, items)``, the path training takes, so templates,
sample parsing and the runner's error handling are all in the figure. Building the grader and a
small warm-up (model or WordNet loading) are outside the timing; the best of ``--repeat`` runs
is reported. To measure another grader, add a ``Case`` to ``CASES`` (or ``EXTRA_CASES``).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rft_plugins import build_grader

ANSWER = "{{ sample.output_text }}"
REFERENCE = "{{ item.reference }}"


@dataclass(frozen=True)
class Case:
    """One grader to measure: a label for the table and the grader's JSON config."""

    label: str
    grader: dict[str, Any]
    #: Extra fields to add to every generated item (reference data some graders need).
    item_fields: dict[str, Any] = field(default_factory=dict)


def similarity_case(metric: str) -> Case:
    return Case(
        f"text_similarity {metric}",
        {"type": "text_similarity", "name": metric, "input": ANSWER, "reference": REFERENCE,
         "evaluation_metric": metric},
    )


CASES: list[Case] = [
    Case("string_check eq", {"type": "string_check", "name": "eq", "input": ANSWER, "reference": REFERENCE,
                             "operation": "eq"}),
    similarity_case("fuzzy_match"),
    # Sandboxed: each grade is a round trip to a warm worker process (one per core).
    Case("python (sandboxed)", {"type": "python", "name": "py", "source": (
        "def grade(sample, item):\n    return float(sample['output_text'] == item['reference'])\n")}),
]
#: Measured with ``--all``: slower metrics, worth a smaller ``--n``.
EXTRA_CASES: list[Case] = [
    similarity_case(metric) for metric in ("bleu", "gleu", "meteor", "rouge_1", "rouge_l", "cosine")
]

WORDS = ("the cat dog sat ran on under a mat rug big small red blue quickly slowly city river "
         "answer Paris France capital is of and to").split()


def generate(n: int, seed: int = 0) -> tuple[list[str], list[dict[str, Any]]]:
    """``n`` answers and items: a random reference sentence, answered exactly a third of the
    time and otherwise with some words replaced, so graders see hits, near misses and misses."""
    rng = random.Random(seed)
    samples, items = [], []
    for _ in range(n):
        reference = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        answer = list(reference)
        if rng.random() > 1 / 3:
            for position in rng.sample(range(len(answer)), k=rng.randint(1, len(answer))):
                answer[position] = rng.choice(WORDS)
        samples.append(" ".join(answer))
        items.append({"reference": " ".join(reference)})
    return samples, items


def measure(case: Case, samples: list[str], items: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """Grades per second (best of ``repeat``) and what the grades were, for one case."""
    items = [{**item, **case.item_fields} for item in items]
    with build_grader(case.grader) as grader:
        grader.grade_batch(samples[:10], items[:10])  # warm-up: lazy imports, models, WordNet
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            grades = grader.grade_batch(samples, items)
            seconds.append(time.perf_counter() - started)
    best = min(seconds)
    rewards = [grade.reward for grade in grades if grade.reward is not None]
    return {
        "case": case.label,
        "type": case.grader["type"],
        "n": len(samples),
        "seconds": best,
        "grades_per_second": len(samples) / best,
        "microseconds_per_grade": best / len(samples) * 1e6,
        "mean_reward": statistics.fmean(rewards) if rewards else None,
        "flagged": sum(1 for grade in grades if grade.flagged),
    }


def measure_trl(case: Case, samples: list[str], items: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """The same grades through ``rft_plugins.adapters.trl.reward_func``, as TRL calls it (columns
    as keyword arguments, one list per dataset column)."""
    import asyncio
    import inspect

    from rft_plugins.adapters.trl import reward_func

    items = [{**item, **case.item_fields} for item in items]
    columns = {key: [item[key] for item in items] for key in items[0]}
    prompts = ["prompt"] * len(samples)
    function = reward_func(case.grader)

    def call(count: int) -> list:
        result = function(prompts=prompts[:count], completions=samples[:count],
                          **{key: values[:count] for key, values in columns.items()})
        return asyncio.run(result) if inspect.isawaitable(result) else result

    call(10)
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        rewards = call(len(samples))
        seconds.append(time.perf_counter() - started)
    function.grader.close()
    best = min(seconds)
    present = [reward for reward in rewards if reward is not None]
    return {"case": f"{case.label} (TRL reward function)", "type": case.grader["type"], "n": len(samples),
            "seconds": best, "grades_per_second": len(samples) / best,
            "microseconds_per_grade": best / len(samples) * 1e6,
            "mean_reward": statistics.fmean(present) if present else None, "flagged": None}


def print_table(results: list[dict[str, Any]]) -> None:
    header = f"{'case':<50} {'n':>7} {'grades/s':>11} {'us/grade':>9} {'mean reward':>11} {'flagged':>7}"
    print(header)
    print("-" * len(header))
    for row in results:
        mean = "-" if row["mean_reward"] is None else f"{row['mean_reward']:.3f}"
        flagged = "-" if row["flagged"] is None else row["flagged"]
        print(f"{row['case']:<50} {row['n']:>7} {row['grades_per_second']:>11,.0f} "
              f"{row['microseconds_per_grade']:>9.1f} {mean:>11} {flagged:>7}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per case (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case; the best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="also every other text_similarity metric")
    parser.add_argument("--case", action="append", default=[], help="only cases whose label contains this")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--trl", action="store_true", help="also each case through the TRL adapter's reward function")
    args = parser.parse_args(argv)
    cases = CASES + (EXTRA_CASES if args.all else [])
    if args.case:
        cases = [case for case in cases if any(part in case.label for part in args.case)]
    samples, items = generate(args.n, args.seed)
    results = []
    for case in cases:
        results.append(measure(case, samples, items, args.repeat))
        if args.trl:
            results.append(measure_trl(case, samples, items, args.repeat))
    if args.json:
        print(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                          "results": results}, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
