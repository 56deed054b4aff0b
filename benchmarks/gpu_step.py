"""One training step of ``rft train`` next to TRL's ``GRPOTrainer``, on a random-init model of a real shape.

    python benchmarks/gpu_step.py --shape 0.5b --max-new-tokens 256 --output step-0.5b.json
    python benchmarks/gpu_step.py --shape 7b --lora --max-new-tokens 1024 --workdir /tmp/gpu-step --json
    python benchmarks/gpu_step.py --shape tiny --device cpu --prompts 2 --generations 2 --max-new-tokens 8 \\
        --steps 2 --micro-batch-size 2                              # the CPU check (~30 s)

On the GPU machine (../shared/gpu/README.md): run ``../shared/gpu/prepare-carry.sh`` here first, then
the install line it prints followed by the command (``--workdir`` outside ``$OUT``, ``--output $OUT/...``).

Both engines run the same job for ``--steps`` optimisation steps (the first a warm-up, reported apart;
medians of the rest): ``--prompts`` prompts of ~150 tokens (standard-library code to continue) x
``--generations`` samples of up to ``--max-new-tokens``, a ``text_similarity`` grader, loss ``dapo``,
beta 0, epsilon 0.2, constant learning rate, one pass per rollout, micro-batches of
``--micro-batch-size`` samples, gradient checkpointing, bf16 on CUDA (float32 on CPU), LoRA if asked.
The model is a random-init ``Qwen2ForCausalLM`` of Qwen2.5's dimensions (``SHAPES``), built on the
device and saved once in ``--workdir``, with a byte-level BPE trained here on the standard library;
both arms load it with ``from_pretrained``. Random models rarely emit EOS: completions run to length.

Each arm runs in its own process, so its peak memory (CUDA allocator, or RSS on CPU) is its own.
Phase times: ours from the loop's ``timing/*`` metrics (on CUDA each of its readings waits for the
GPU), memory at the last step from its ``memory/*`` metrics; TRL's from vs_trl.py's timed trainer
and step clock, whose readings here first wait for the GPU too (``SynchronizedClock``). A failed
arm (out of memory, ...) is reported with the end of its stderr, and the other arm still runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # vs_trl.py and learning_curve.py

from learning_curve import quiet  # noqa: E402
from vs_trl import _version, rss_mib, step_clock, timed_trainer_class  # noqa: E402

from rft_plugins.tiny_model import CHAT_TEMPLATE  # noqa: E402

ARMS = ("ours", "trl")
#: Qwen2.5's dimensions (the vocabulary is the tokenizer's); ``tiny`` is for the CPU check
SHAPES: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, tie_word_embeddings=True),
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, tie_word_embeddings=True),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, tie_word_embeddings=True),
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, tie_word_embeddings=False),
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
PROMPT_TOKENS = 150
#: ``--lora`` on both arms (ours would default to the same values; they are spelled out for the report)
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}
GRADER = {"type": "text_similarity", "name": "continuation", "input": "{{ sample.output_text }}",
          "reference": "{{ item.reference }}", "evaluation_metric": "fuzzy_match"}
#: settings both arms report under the same name (ours: the loop's resolved ones)
ALIGNED = ("num_generations", "max_completion_length", "learning_rate", "lr_scheduler_type", "loss_type", "beta",
           "epsilon", "num_iterations", "max_grad_norm", "temperature", "top_p", "top_k", "gradient_checkpointing",
           "model_init_kwargs", "seed")
#: a step's figures, from the loop's metrics
OUR_COLUMNS = {"step_s": "timing/full_iteration_s", "sampling_s": "timing/sampling_s",
               "grading_wait_s": "timing/grading_wait_s", "training_s": "timing/training_s",
               "completion_length_mean": "completion_length_mean"}
#: what the two arms do differently that this benchmark does not align
DIFFERENCES = [
    "Full fine-tuning of 16-bit weights: ours keeps float32 master weights, gradients and AdamW moments "
    "(MasterWeightAdamW), ~18 bytes per parameter, so updates below bfloat16's resolution are kept; TRL's AdamW "
    "updates the bfloat16 weights in place with bfloat16 moments, ~8 (ours too with --no-master-weights). "
    "LoRA adapters are float32 in both.",
    "Log-probs: ours runs the LM head over chunks of completion tokens; TRL over a whole micro-batch.",
    "Run outputs: after the last step ours writes a resume checkpoint (optimiser state included) and the "
    "final model, TRL nothing: not in step times, but in ours' whole-arm peak memory and wall time (hence "
    "the peak at the last step's end). The run folder's weights are deleted afterwards.",
    "Grading: ours grades in a thread while the first micro-batch's forward pass runs; TRL in line.",
    "Random streams and prompt order differ (TRL shuffles the dataset); both arms see the same prompts.",
]


# ------------------------------------------------------------------------- model, tokenizer, data
def stdlib_texts(limit_chars: int) -> Iterator[str]:
    """The standard library's Python sources (not site-packages), up to ``limit_chars`` characters."""
    total = 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        yield text
        total += len(text)
        if total >= limit_chars:
            return


def train_tokenizer(vocab_size: int, text_chars: int) -> Any:
    """A byte-level BPE with Qwen2's normaliser and pre-tokenizer: what transformers rebuilds when it
    loads a tokenizer next to a Qwen2 config, so the ids survive ``AutoTokenizer.from_pretrained``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(stdlib_texts(text_chars), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|pad|>",
                                        bos_token=None, additional_special_tokens=["<|im_start|>", "<|endoftext|>"])
    tokenizer.chat_template = CHAT_TEMPLATE  # ChatML, as the project's tiny model
    return tokenizer


def build_model(folder: Path, shape: str, tokenizer: Any, device: str) -> int:
    """Random-init Qwen2 of ``shape`` made on ``device`` (bfloat16 on CUDA: seconds even for 7B), saved
    with its tokenizer; returns the parameter count. The weights leave the device memory afterwards."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    config = Qwen2Config(vocab_size=len(tokenizer), max_position_embeddings=32768, bos_token_id=None,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, do_sample=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return parameters


def prepare_model(workdir: Path, shape: str, vocab_size: int, device: str) -> tuple[Path, dict[str, Any]]:
    """The model folder for ``shape`` (built once per workdir, like the tokenizer); its facts."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokenizer_dir = workdir / f"tokenizer-{vocab_size}"
    if not (tokenizer_dir / "tokenizer.json").is_file():
        started = time.perf_counter()
        chars = 24_000_000 if vocab_size >= 8000 else 2_000_000  # ~15 s for 32k on one core
        train_tokenizer(vocab_size, chars).save_pretrained(tokenizer_dir)
        print(f"tokenizer ({vocab_size}) trained in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    folder = workdir / f"qwen2-{shape}-{vocab_size}-{'bf16' if device == 'cuda' else 'fp32'}"
    facts_file = folder / "shape.json"
    if not facts_file.is_file():  # written last: a folder without it is incomplete
        started = time.perf_counter()
        parameters = build_model(folder, shape, tokenizer, device)
        facts = {"name": shape, "architecture": "Qwen2ForCausalLM", "parameters": parameters,
                 "vocab_size": len(tokenizer), **SHAPES[shape], "build_seconds": time.perf_counter() - started}
        loaded, text = AutoTokenizer.from_pretrained(folder), "def f(x):\n    return x ** 2  # héllo 世界"
        chat = [{"role": "user", "content": text}]  # transformers may rebuild a tokenizer for the model type
        if (loaded(text)["input_ids"], loaded.apply_chat_template(chat)) != (
                tokenizer(text)["input_ids"], tokenizer.apply_chat_template(chat)):
            raise SystemExit(f"AutoTokenizer.from_pretrained({folder}) gives other ids than the tokenizer trained here")
        facts_file.write_text(json.dumps(facts, indent=2), encoding="utf-8")
        print(f"model {shape} built and saved in {facts['build_seconds']:.1f} s", file=sys.stderr)
    return folder, json.loads(facts_file.read_text(encoding="utf-8"))


def make_rows(tokenizer: Any, count: int) -> list[dict[str, Any]]:
    """``count`` prompts of about ``PROMPT_TOKENS`` tokens: a stretch of a stdlib module to continue,
    with the next lines as the grader's reference."""
    lines = [line for text in stdlib_texts(2_000_000) for line in text.splitlines() if line.strip()]
    sizes = [len(ids) for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]]
    rows, start = [], 0
    while len(rows) < count:
        end, tokens = start, 0
        while tokens < PROMPT_TOKENS:
            tokens, end = tokens + sizes[end % len(lines)] + 1, end + 1
        code = "\n".join(lines[index % len(lines)] for index in range(start, end))
        reference = "\n".join(lines[index % len(lines)] for index in range(end, end + 8))
        rows.append({"messages": [{"role": "user", "content": f"Continue this Python code:\n{code}"}],
                     "reference": reference})
        start = end + 8
    return rows


# --------------------------------------------------------------------------------- the two arms
def our_job(args: argparse.Namespace, output_dir: Path) -> dict[str, Any]:
    """The job as ``rft train`` reads it (``batch_size`` counts prompts, ``micro_batch_size`` samples)."""
    cuda = args.device == "cuda"
    return {
        "model": str(args.model), "training_file": "in-memory",
        "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {
            "n_epochs": 1, "batch_size": args.prompts, "learning_rate_multiplier": 1.0, "eval_interval": args.steps,
            "compute_multiplier": 1.0, "reasoning_effort": "medium"}}},
        "trainer": {
            "num_generations": args.generations, "max_completion_length": args.max_new_tokens, "temperature": 1.0,
            "top_p": 1.0, "top_k": None, "beta": 0.0, "epsilon": 0.2, "loss_type": "dapo", "num_iterations": 1,
            "learning_rate": args.learning_rate, "lr_scheduler_type": "constant", "warmup_steps": 0,
            "micro_batch_size": args.micro_batch_size, "gradient_checkpointing": True,
            "master_weights": args.master_weights, "sampler_options": args.sampler_options,
            "model_init_kwargs": {"dtype": "bfloat16" if cuda else "float32"},
            "precision": "bf16-mixed" if cuda else "32-true", "accelerator": args.device, "devices": 1,
            "lora": LORA if args.lora else None, "max_steps": args.steps, "save_steps": args.steps,
            "logging_steps": 1, "output_dir": str(output_dir), "seed": args.seed,
        },
    }


def trl_config(args: argparse.Namespace, output_dir: Path) -> Any:
    """``GRPOConfig`` for the same job: ``prompts x generations`` samples make one generation batch,
    which one optimiser step consumes in micro-batches (gradient accumulation)."""
    from trl import GRPOConfig

    accumulation = args.prompts * args.generations // args.micro_batch_size
    cuda = args.device == "cuda"
    return GRPOConfig(
        output_dir=str(output_dir), per_device_train_batch_size=args.micro_batch_size,
        gradient_accumulation_steps=accumulation, steps_per_generation=accumulation,
        num_generations=args.generations, max_completion_length=args.max_new_tokens,
        learning_rate=args.learning_rate, lr_scheduler_type="constant", warmup_steps=0, optim="adamw_torch",
        weight_decay=0.0, max_grad_norm=1.0, loss_type="dapo", beta=0.0, epsilon=0.2, scale_rewards="group",
        num_iterations=1, temperature=1.0, top_p=1.0, top_k=0, gradient_checkpointing=True, bf16=cuda,
        use_cpu=not cuda, model_init_kwargs={"dtype": "bfloat16" if cuda else "float32"}, max_steps=args.steps,
        eval_strategy="no", logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True, seed=args.seed,
    )


class SynchronizedClock:
    """``time`` for TRL's step clock on CUDA: a reading first waits for the GPU's queued work, so a
    step includes its kernels, not only their launch; keeps the memory peaks seen at the reading."""

    def __init__(self) -> None:
        import torch

        self.cuda, self.peaks = torch.cuda, (0, 0)

    def perf_counter(self) -> float:
        self.cuda.synchronize()
        self.peaks = (self.cuda.max_memory_allocated(), self.cuda.max_memory_reserved())
        return time.perf_counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def trl_step_clock(cuda: bool) -> Any:
    """vs_trl's step clock that also marks when training starts (setup ends) and, on CUDA, reads a
    ``SynchronizedClock`` at both ends of each step."""

    class DeviceStepClock(type(step_clock())):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.device, self.train_started = SynchronizedClock() if cuda else time, 0.0

        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            self.train_started = time.perf_counter()

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.device.perf_counter()
            super().on_step_begin(*args, **kwargs)

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            self.device.perf_counter()
            super().on_step_end(*args, **kwargs)

    return DeviceStepClock()


def as_json(value: Any) -> Any:
    """What ``json`` cannot write of the settings: pydantic models (our LoRA settings); anything else as text."""
    return value.model_dump() if hasattr(value, "model_dump") else str(value)


def run_ours(args: argparse.Namespace, rows: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """The job through ``rft_plugins.training.run.train`` (``rft train``); steps from metrics.csv."""
    from rft_plugins import hookimpl
    from rft_plugins.plugins import get_plugin_manager
    from rft_plugins.training.job import job_from_dict, resolve
    from rft_plugins.training.outputs import read_metrics
    from rft_plugins.training.run import train

    folder = workdir / "ours"
    job = our_job(args, folder)
    resolved = resolve(job_from_dict(job, check_files=False), len(rows))

    class StartMark:
        train_started = 0.0

        @hookimpl
        def rft_on_train_start(self) -> None:
            self.train_started = time.perf_counter()

    mark = StartMark()
    get_plugin_manager().register(mark, name="gpu_step_start_mark")
    started = time.perf_counter()
    train(job, output_dir=folder, train_rows=rows, valid_rows=[], overwrite=True, progress_bar=False)
    seconds = time.perf_counter() - started
    metrics = {name: [value for _, value in series] for name, series in read_metrics(folder / "metrics.csv").items()}
    for heavy in ("checkpoints", "final", "best"):  # gigabytes at 7B: the disk is shared with the models
        shutil.rmtree(folder / heavy, ignore_errors=True)
    steps = [dict(zip(OUR_COLUMNS, values)) for values in zip(*(metrics[name] for name in OUR_COLUMNS.values()))]
    settings = {key: getattr(resolved, key) for key in ("batch_size", "micro_batch_size", "lora", *ALIGNED)}
    settings["precision"] = job["trainer"]["precision"]
    peaks = [metrics.get(f"memory/peak_{kind}_gib", [None])[-1] for kind in ("allocated", "reserved")]
    return {"steps": steps, "setup_s": mark.train_started - started, "train_call_s": seconds, "settings": settings,
            "steps_peaks": None if peaks[0] is None else [peak * 2**30 for peak in peaks]}


def run_trl(args: argparse.Namespace, rows: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """The job through ``trl.GRPOTrainer`` with our grader as reward function (TRL loads the model)."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from rft_plugins.adapters.trl import reward_funcs

    config = trl_config(args, workdir / "trl")
    lora = None
    if args.lora:
        from peft import LoraConfig

        lora = LoraConfig(**LORA, task_type="CAUSAL_LM")
    clock = trl_step_clock(args.device == "cuda")
    started = time.perf_counter()
    trainer = timed_trainer_class()(
        model=str(args.model), processing_class=AutoTokenizer.from_pretrained(args.model),
        reward_funcs=reward_funcs(GRADER), args=config, peft_config=lora, callbacks=[clock],
        train_dataset=Dataset.from_list([{"prompt": row["messages"], "reference": row["reference"]} for row in rows]),
    )
    clock.trainer = trainer
    trainer.train()
    seconds = time.perf_counter() - started
    lengths = [entry["completions/mean_length"] for entry in trainer.state.log_history
               if "completions/mean_length" in entry]
    steps = [{"step_s": step["step"], "sampling_s": step["sampling"], "grading_wait_s": step["grading"],
              "training_s": step["training"], "completion_length_mean": length}
             for step, length in zip(clock.steps, lengths)]
    settings = {key: getattr(config, key) for key in (
        "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation", "generation_batch_size",
        "bf16", "max_steps", *ALIGNED)}
    settings["lora"] = LORA if lora else None  # peft replaces target_modules with the modules it found
    return {"steps": steps, "setup_s": clock.train_started - started, "train_call_s": seconds, "settings": settings,
            "steps_peaks": getattr(clock.device, "peaks", None)}


def run_arm(args: argparse.Namespace) -> dict[str, Any]:
    """One arm in this process: its steps, settings and this process's memory peaks."""
    quiet(lightning=args.arm == "ours")  # the TRL arm's memory must not include Lightning
    import torch

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    rows = json.loads(args.rows.read_text(encoding="utf-8"))
    result = (run_ours if args.arm == "ours" else run_trl)(args, rows, args.workdir)
    samples = args.prompts * args.generations
    for step in result["steps"]:
        step["sampling_tokens_per_s"] = step["completion_length_mean"] * samples / step["sampling_s"]
    at_last_step = result.pop("steps_peaks")
    if args.device == "cuda":  # the whole arm's peaks (model load and run outputs included), in GiB
        cuda = torch.cuda
        result.update(device_name=cuda.get_device_name(), peak_gpu_allocated_gib=cuda.max_memory_allocated() / 2**30,
                      peak_gpu_reserved_gib=cuda.max_memory_reserved() / 2**30,
                      steps_peak_gpu_allocated_gib=at_last_step[0] / 2**30,
                      steps_peak_gpu_reserved_gib=at_last_step[1] / 2**30)
    result.update(arm=args.arm, peak_rss_mib=rss_mib(), torch_threads=torch.get_num_threads())
    return result


# ------------------------------------------------------------------------------------ the parent
def spawn_arm(arm: str, args: argparse.Namespace, model: Path, rows_file: Path, workdir: Path) -> dict[str, Any]:
    """One arm in a fresh Python process; its figures, or its error (the end of its stderr)."""
    result_file = workdir / f"{arm}.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), *args.argv, "--device", args.device, "--arm", arm,
               "--model", str(model), "--rows", str(rows_file), "--workdir", str(workdir), "--result", str(result_file)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.device == "cpu":
        environment["OMP_NUM_THREADS"] = str(args.threads)
    started = time.perf_counter()
    try:
        finished = subprocess.run(command, capture_output=True, text=True, env=environment,
                                  timeout=args.arm_timeout or None)
        code, stderr = finished.returncode, finished.stderr
    except subprocess.TimeoutExpired as expired:
        code, stderr = None, f"{expired.stderr or ''}\ntimed out after {args.arm_timeout} s"
        stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    seconds = time.perf_counter() - started
    if code != 0 or not result_file.is_file():
        tail = "\n".join(stderr.strip().splitlines()[-25:])
        return {"arm": arm, "error": tail, "exit_code": code, "process_s": seconds,
                "out_of_memory": "out of memory" in stderr.lower()}
    return {**json.loads(result_file.read_text(encoding="utf-8")), "process_s": seconds}


def summarise(run: dict[str, Any]) -> dict[str, float]:
    """An arm's figures: medians over the steps after the first, the first (warm-up) apart."""
    if "error" in run:
        return {}
    first, measured = run["steps"][0], run["steps"][1:] or run["steps"]
    figures = {key: statistics.median(step[key] for step in measured) for key in first}
    figures.update({f"warmup_{key}": first[key] for key in ("step_s", "sampling_s", "training_s")})
    figures.update({key: run[key] for key in (
        "peak_gpu_allocated_gib", "peak_gpu_reserved_gib", "steps_peak_gpu_allocated_gib", "peak_rss_mib",
        "setup_s", "process_s") if run.get(key) is not None})
    return figures


FIGURES = [
    ("step time (s)", "step_s"), ("  sampling (s)", "sampling_s"), ("  training: model work (s)", "training_s"),
    ("  waiting for grades (s)", "grading_wait_s"), ("sampling tokens/s", "sampling_tokens_per_s"),
    ("completion length, mean (tokens)", "completion_length_mean"), ("warm-up step (s)", "warmup_step_s"),
    ("  sampling (s)", "warmup_sampling_s"), ("  training (s)", "warmup_training_s"),
    ("peak GPU memory allocated (GiB)", "peak_gpu_allocated_gib"),
    ("peak GPU memory reserved (GiB)", "peak_gpu_reserved_gib"),
    ("  allocated at last step's end (GiB)", "steps_peak_gpu_allocated_gib"), ("peak RSS (MiB)", "peak_rss_mib"),
    ("setup: model load + trainer (s)", "setup_s"), ("process wall time (s)", "process_s"),
]


def print_table(report: dict[str, Any]) -> None:
    job, shape, summary = report["job"], report["shape"], report["summary"]
    print(f"{shape['name']} ({shape['parameters'] / 1e6:,.1f} M parameters{', LoRA r=16' if job['lora'] else ''}) "
          f"on {report['machine']['device_name']}: {job['prompts']} prompts x {job['generations']} generations x "
          f"{job['max_new_tokens']} new tokens, micro-batch {job['micro_batch_size']}; "
          f"medians of steps 2-{job['steps']}")
    header = f"{'':<38} {'ours (rft train)':>16} {'TRL GRPOTrainer':>16} {'ours/TRL':>9}"
    print(header + "\n" + "-" * len(header))
    for label, key in FIGURES:
        values = [summary.get(arm, {}).get(key) for arm in ARMS]
        if all(value is None for value in values):
            continue
        digits = 0 if key.endswith(("per_s", "mib")) else 2
        cells = ["-" if value is None else f"{value:.{digits}f}" for value in values]
        ratio = summary["ratio"].get(key)
        print(f"{label:<38} {cells[0]:>16} {cells[1]:>16} {'-' if ratio is None else f'{ratio:.2f}':>9}")
    for arm, run in report["arms"].items():
        if "error" in run:
            print(f"\n{arm} failed{' (out of memory)' if run['out_of_memory'] else ''}:\n{run['error']}")
    print("\nNot aligned:\n" + "\n".join(f"- {difference}" for difference in report["differences"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="0.5b", help="model dimensions (default 0.5b)")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters r=16 on all linear layers")
    parser.add_argument("--sampler-options", type=json.loads, default={}, metavar="JSON",
                        help='ours: trainer.sampler_options, e.g. \'{"generation_kwargs": {"cache_implementation": "static"}}\'')
    parser.add_argument("--no-master-weights", dest="master_weights", action="store_false",
                        help="ours: AdamW on the bfloat16 weights in place, as TRL (no float32 masters)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8)")
    parser.add_argument("--generations", type=int, default=8, help="samples per prompt (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="max completion length (default 256)")
    parser.add_argument("--micro-batch-size", type=int, default=8, help="samples per forward/backward (default 8)")
    parser.add_argument("--steps", type=int, default=3, help="optimisation steps, the first a warm-up (default 3)")
    parser.add_argument("--learning-rate", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, help="BPE vocabulary (default 32000; 2000 for --shape tiny)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per arm on CPU (default 1)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="which arms to run, in order")
    parser.add_argument("--arm-timeout", type=float, default=0, help="seconds before an arm is stopped (0: none)")
    parser.add_argument("--workdir", type=Path, help="keeps tokenizer and models for reuse (default: temporary)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    parser.add_argument("--output", type=Path, help="also write the JSON report here (after each arm)")
    for hidden in ("--arm", "--model", "--rows", "--result"):  # what the parent passes to an arm's process
        parser.add_argument(hidden, type=None if hidden == "--arm" else Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.steps < 2 or min(args.prompts, args.generations, args.max_new_tokens, args.threads) < 1:
        parser.error("--steps must be at least 2 (the first is a warm-up); sizes and --threads at least 1")
    if (args.prompts * args.generations) % args.micro_batch_size:
        parser.error("--micro-batch-size must divide --prompts x --generations")
    if args.arm:
        args.result.write_text(json.dumps(run_arm(args), default=as_json), encoding="utf-8")
        return 0

    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    vocab = args.vocab_size or (2000 if args.shape == "tiny" else 32000)
    with tempfile.TemporaryDirectory(prefix="rft-gpu-step-") as temporary:
        workdir = (args.workdir or Path(temporary)).resolve()
        run_dir = workdir / f"runs-{args.shape}{'-lora' if args.lora else ''}"
        run_dir.mkdir(parents=True, exist_ok=True)
        quiet(lightning=False)
        model, shape = prepare_model(workdir, args.shape, vocab, args.device)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        rows = make_rows(tokenizer, args.prompts * args.steps)
        rows_file = run_dir / "rows.json"
        rows_file.write_text(json.dumps(rows), encoding="utf-8")
        prompt_tokens = [len(tokenizer(tokenizer.apply_chat_template(row["messages"], add_generation_prompt=True,
                                                                      tokenize=False))["input_ids"]) for row in rows]
        report: dict[str, Any] = {
            "benchmark": "gpu_step", "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": shlex.join(["python", "benchmarks/gpu_step.py", *args.argv]),
            "machine": {"device": args.device, "device_name": torch.cuda.get_device_name() if args.device == "cuda"
                        else platform.processor() or "CPU", "cpus": os.cpu_count(), "python": platform.python_version(),
                        "torch": torch.__version__, **{name: _version(name) for name in
                                                        ("transformers", "trl", "lightning", "peft")}},
            "shape": shape,
            "job": {"prompts": args.prompts, "generations": args.generations, "max_new_tokens": args.max_new_tokens,
                    "micro_batch_size": args.micro_batch_size, "steps": args.steps, "lora": args.lora,
                    "master_weights": args.master_weights, "sampler_options": args.sampler_options,
                    "learning_rate": args.learning_rate, "prompt_tokens_mean": statistics.fmean(prompt_tokens),
                    "grader": GRADER, "threads_per_arm": args.threads if args.device == "cpu" else None},
            "arms": {}, "settings": {}, "summary": {"ratio": {}}, "differences": DIFFERENCES,
        }
        for arm in args.arms:
            run = spawn_arm(arm, args, model, rows_file, run_dir)
            report["arms"][arm] = run
            report["settings"][arm] = run.get("settings")
            report["summary"][arm] = summarise(run)
            print(f"{arm}: {'failed' if 'error' in run else 'done'} in {run['process_s']:.1f} s", file=sys.stderr)
            ours, trl = report["summary"].get("ours", {}), report["summary"].get("trl", {})
            report["summary"]["ratio"] = {key: ours[key] / trl[key] for key in ours if trl.get(key)}
            if args.output:
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0 if any("error" not in run for run in report["arms"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
