"""Job, grader and data files from someone else, or from a bad day: each is one line naming the
file, the line and the field, ``rft train`` exits 2, and nothing is started (no run folder).

The alias bomb runs in a real ``rft train`` under an address-space limit, with its peak resident
memory polled (psutil), so that a regression fails the test instead of taking the machine down.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml
from click.testing import CliRunner
from memory_probe import MIB
from train_jobs import RFT, chat, line_of, write_job

from rft_plugins.cli import cli
from rft_plugins.data.loading import load_rows
from rft_plugins.data.rows import DataError, validate_row
from rft_plugins.training.job import JobError, load_job
from rft_plugins.training.run import train

GRADER = {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
          "reference": "{{ item.answer }}", "operation": "eq"}
ROWS = [{"messages": chat(f"question {i}"), "answer": "a"} for i in range(4)]


def job_file(folder: Path, model: Path, **trainer) -> Path:
    return write_job(folder, model, GRADER, ROWS, ROWS[:2], {"batch_size": 2}, num_generations=2,
                     max_completion_length=4, **trainer)


def alias_bomb(levels: int) -> str:
    """A YAML document of about 1.5 kB whose ``metadata`` expands to 10 ** levels strings."""
    lines = ["metadata:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def run_measured(args: list[str], address_space: int = 3 << 30) -> tuple[subprocess.CompletedProcess, int, float]:
    """``rft ARGS`` under an address-space limit; (result, peak resident bytes, seconds)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    started = time.monotonic()
    process = subprocess.Popen([RFT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=limit)
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), peak, time.monotonic() - started


def assert_one_line(process: subprocess.CompletedProcess, *expected: str) -> None:
    assert process.returncode == 2, process.stderr[-3000:]
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), process.stderr[-3000:]
    for text in expected:
        assert text in lines[0], lines[0]


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path, tiny_model_path):
    """Before: 7 levels cost 4.5 GB and 20 s before the first check; 9 were killed for memory."""
    job = job_file(tmp_path, tiny_model_path)
    job.write_text(job.read_text() + alias_bomb(9))
    assert job.stat().st_size < 3000
    process, peak, seconds = run_measured(["train", str(job)])
    assert_one_line(process, f"{job}:", "expands to more than 100,000 values", "(RFT_MAX_DOCUMENT_NODES)")
    assert peak < 700 * MIB, f"peak resident memory {peak / MIB:.0f} MiB"  # what importing torch costs
    assert seconds < 30
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("a: &a [1, *a]\n", 1, "a recursive alias"),
        ("metadata: " + "[" * 150 + "]" * 150 + "\n", 1, "nested deeper than 100 levels (RFT_MAX_NESTING)"),
        ("metadata: " + "[" * 100_000 + "]" * 100_000 + "\n", None, "nested deeper than 100 levels"),
        ("model: m\nsuffix: caf\xe9\n".encode("latin-1"), 2, "invalid UTF-8: byte 0xe9 at column 12"),
    ],
    ids=["recursive-alias", "nested-150", "nested-100000", "latin-1"],
)
def test_a_job_file_that_cannot_be_read_safely_names_file_and_line(tmp_path, text, line, message):
    job = tmp_path / "job.yaml"
    job.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(JobError) as caught:
        load_job(job)
    assert (caught.value.file, caught.value.line) == (str(job), line) and message in caught.value.message


def test_document_limits_are_configurable(tmp_path, monkeypatch, tiny_model_path):
    job = job_file(tmp_path, tiny_model_path)
    job.write_text(job.read_text() + "metadata: {notes: '" + "n" * 2000 + "'}\n")
    monkeypatch.setenv("RFT_MAX_DOCUMENT_KB", "1")
    with pytest.raises(JobError, match=r"the file is [\d,]+ bytes; the limit is 1,024 \(RFT_MAX_DOCUMENT_KB\)"):
        load_job(job)
    monkeypatch.setenv("RFT_MAX_DOCUMENT_KB", "64")
    monkeypatch.setenv("RFT_MAX_DOCUMENT_NODES", "40")
    with pytest.raises(JobError, match=r"more than 40 values"):
        load_job(job)
    monkeypatch.delenv("RFT_MAX_DOCUMENT_NODES")
    assert load_job(job).metadata == {"notes": "n" * 2000}


def test_invalid_utf8_in_a_training_file_is_file_line_and_exit_2(tmp_path, tiny_model_path):
    """Before: a UnicodeDecodeError traceback and exit 1."""
    job = job_file(tmp_path, tiny_model_path)
    train_file = tmp_path / "train.jsonl"
    lines = train_file.read_bytes().splitlines(keepends=True)
    train_file.write_bytes(lines[0] + lines[1].replace(b"question 1", b"question \xff") + b"".join(lines[2:]))
    process = subprocess.run([RFT, "train", str(job)], capture_output=True, text=True, timeout=120)
    assert_one_line(process, f"{train_file}:2: invalid UTF-8: byte 0xff at column")
    assert not (tmp_path / "run").exists()


def test_invalid_utf8_in_a_grader_file_and_in_graders_run_input(tmp_path, tiny_model_path):
    job = job_file(tmp_path, tiny_model_path)
    grader = tmp_path / "grader.json"
    grader.write_bytes(json.dumps(GRADER, indent=1).replace('"exact"', '"ex\\u00e1ct"').encode()
                       .replace(b"\\u00e1", b"\xe1"))
    data = yaml.safe_load(job.read_text())
    data["method"]["reinforcement"]["grader"] = "grader.json"
    job.write_text(yaml.safe_dump(data))
    with pytest.raises(JobError) as caught:
        load_job(job)
    assert caught.value.file == str(grader) and caught.value.line == line_of_bytes(grader, b"\xe1")
    assert "invalid UTF-8: byte 0xe1" in caught.value.message

    samples = tmp_path / "samples.jsonl"
    samples.write_bytes(b'{"sample": "a", "item": {"answer": "a"}}\n{"sample": "\xff"}\n')
    result = CliRunner().invoke(cli, ["graders", "run", json.dumps(GRADER), "--input", str(samples)])
    assert result.exit_code == 2 and f"{samples}:2: invalid UTF-8: byte 0xff at column 13" in result.output


def line_of_bytes(path: Path, marker: bytes) -> int:
    return next(number for number, line in enumerate(path.read_bytes().splitlines(), 1) if marker in line)


def test_a_row_nested_100000_levels_deep_is_one_line(tmp_path):
    """Before: json's RecursionError as a traceback."""
    data = tmp_path / "train.jsonl"
    deep = '{"messages": [{"role": "user", "content": "q"}], "ref": ' + "[" * 100_000 + "]" * 100_000 + "}"
    data.write_text(json.dumps(ROWS[0]) + "\n" + deep + "\n")
    with pytest.raises(DataError, match=rf"^{data}:2: nested deeper than 100 levels \(RFT_MAX_NESTING\)$"):
        load_rows(data)
    nested: object = "leaf"
    for _ in range(150):
        nested = [nested]
    with pytest.raises(DataError, match="nested deeper than 100 levels"):  # rows given in memory too
        validate_row({"messages": chat("q"), "ref": nested}, "row 1")


def test_the_grades_run_concurrency_must_be_at_least_one():
    """Before: ``--concurrency 0`` waited for ever at a gate that admits nobody."""
    result = CliRunner().invoke(cli, ["graders", "run", json.dumps(GRADER), "--sample", "a", "--concurrency", "0"])
    assert result.exit_code == 2 and "--concurrency" in result.output and "0 is not in the range x>=1" in result.output


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("trainer.learning_rate", ".inf", "finite number"),
        ("trainer.learning_rate", ".nan", "finite number"),
        ("trainer.learning_rate", "1e6", "less than or equal to 1"),
        ("method.reinforcement.hyperparameters.learning_rate_multiplier", "1e9", "at most 100"),
        ("trainer.seed", "4294967296", "less than or equal to 4294967295"),
        ("trainer.grader_timeout", ".inf", "finite number"),
        ("trainer.max_completion_length", "1000000000000", "less than or equal to 1048576"),
        ("method.reinforcement.grader.sandbox.wall_time_s", ".inf", "finite number"),
    ],
)
def test_numbers_that_can_only_diverge_or_hang_are_refused_at_job_load(tmp_path, tiny_model_path, field, value, message):
    """Before: ``learning_rate: .inf`` passed the job check; the run died with NaN weights and an
    unrelated torch error."""
    job = job_file(tmp_path, tiny_model_path)
    data = yaml.safe_load(job.read_text())
    if "sandbox" in field:
        data["method"]["reinforcement"]["grader"] = {
            "type": "python", "name": "p", "source": "def grade(sample, item):\n    return 1.0\n", "sandbox": {},
        }
    *parents, last = field.split(".")
    target = data
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = "PLACEHOLDER"
    job.write_text(yaml.safe_dump(data).replace("PLACEHOLDER", value))
    with pytest.raises(JobError) as caught:
        load_job(job)
    assert caught.value.field == field and message in caught.value.message
    assert caught.value.line == line_of(job, last)


def model_copy(source: Path, folder: Path) -> Path:
    return Path(shutil.copytree(source, folder))


def test_a_model_folder_without_weights_or_with_a_corrupt_file_is_one_line(tmp_path, tiny_model_path):
    no_weights = model_copy(tiny_model_path, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    truncated = model_copy(tiny_model_path, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for model, message in ((no_weights, "holds no model weights"), (truncated, "model.safetensors is not a readable "
                                                                   "safetensors file")):
        job = job_file(tmp_path, model)
        with pytest.raises(JobError) as caught:
            load_job(job)
        assert caught.value.field == "model" and message in caught.value.message
        assert caught.value.line == line_of(job, "model:") and "\n" not in str(caught.value)


def test_a_tokenizer_without_a_chat_template_is_refused_before_the_run_folder_is_touched(tmp_path, tiny_model_path):
    """Before: found at the first prompt, after the run folder was started, so the same command
    then failed with "already holds a run"."""
    model = model_copy(tiny_model_path, tmp_path / "no-template")
    (model / "chat_template.jinja").unlink()
    job = job_file(tmp_path, model)
    with pytest.raises(JobError) as caught:
        train(job, progress_bar=False)
    assert caught.value.field == "model" and "has no chat template" in caught.value.message
    assert not (tmp_path / "run").exists()
