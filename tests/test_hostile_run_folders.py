"""Run folders a careless user points ``rft train`` at, and runs stopped at awkward moments.

Nothing a user owns is ever deleted: a folder is a run folder only when it is empty or holds a
run we wrote (``run.json``'s marker), ``--overwrite`` deletes only what that marker lists, and the
folders that can only be mistakes are refused before anything is written. A signal ends a run
with a checkpoint, a message and a non-zero exit; a run killed right after a checkpoint keeps
the metrics row of that step.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
from train_jobs import RFT, chat, metric_rows, run_rft, steps_with, write_job

from rft_plugins.training.interrupts import RunInterrupted
from rft_plugins.training.run import RunError, train
from rft_plugins.training.run_folder import MARKER_KEY, plan_run_folder, prepare_run_folder

GRADER = {"type": "string_check", "name": "has_a", "input": "{{ sample.output_text }}",
          "reference": "{{ item.answer }}", "operation": "like"}


def small_job(folder: Path, model: Path, **trainer) -> Path:
    """4 prompts, 2 per step; validation only at the last step unless asked (no baseline: the first
    metrics row is then a training step's, which the signal tests wait for)."""
    trainer.setdefault("eval_on_start", False)
    rows = [{"messages": chat(f"question {i}"), "answer": "a"} for i in range(4)]
    hyperparameters = {"n_epochs": 20, "batch_size": 2, "eval_interval": trainer.pop("eval_interval", 100)}
    return write_job(folder, model, GRADER, rows, rows[:2], hyperparameters,
                     num_generations=2, max_completion_length=4, learning_rate=1e-3, **trainer)


def user_files(folder: Path) -> dict[str, str]:
    """A user's own files, some named like run outputs."""
    files = {"checkpoints/model.pt": "mine", "best/notes.md": "mine too", "metrics.csv": "a,b\n1,2\n",
             "final/README": "keep", "thesis.tex": "years of work"}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return files


def assert_untouched(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        assert (folder / name).read_text() == text, name


def test_a_folder_of_user_files_is_refused_and_left_as_it_was(tmp_path, tiny_model_path):
    """Before: a fresh start deleted checkpoints/, best/, final/ and metrics.csv without a word."""
    job = small_job(tmp_path, tiny_model_path)
    project = tmp_path / "project"
    project.mkdir()
    files = user_files(project)
    for overwrite in (False, True):  # --overwrite deletes only a marked run's outputs: there are none
        with pytest.raises(RunError, match=r"holds files that are not an rft run \(best, checkpoints, final"):
            train(job, output_dir=project, overwrite=overwrite, progress_bar=False)
    assert_untouched(project, files)
    assert sorted(os.listdir(project)) == ["best", "checkpoints", "final", "metrics.csv", "thesis.tex"]


@pytest.mark.parametrize("where", ["root", "home", "inputs", "model", "file", "under_a_file"])
def test_folders_that_can_only_be_mistakes_are_refused(tmp_path, tiny_model_path, monkeypatch, where):
    job = small_job(tmp_path, tiny_model_path)
    home = tmp_path / "home"
    home.mkdir()
    if where == "home":
        monkeypatch.setenv("HOME", str(home))
    (tmp_path / "a_file").write_text("x")
    folder, reason = {
        "root": (Path("/"), "it is the root folder"),
        "home": (home, "it is the home folder"),
        "inputs": (tmp_path, "it holds the job's own inputs (job.yaml, train.jsonl, valid.jsonl)"),
        "model": (tiny_model_path / "run", "it is inside the job's input"),
        "file": (tmp_path / "a_file", "it is a file, not a folder"),
        "under_a_file": (tmp_path / "a_file" / "run", "it cannot be created"),
    }[where]
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(RunError, match=re.escape(reason)):
        if where == "root":  # the check alone: were it to regress, a test must not train into /
            plan_run_folder(folder, [], resume=False, overwrite=True)
        else:
            train(job, output_dir=folder, progress_bar=False)
    assert sorted(os.listdir(tmp_path)) == before


def test_an_empty_output_dir_is_an_error_not_the_working_folder(tmp_path, tiny_model_path):
    job = small_job(tmp_path, tiny_model_path)
    process = subprocess.run([RFT, "train", str(job), "--output-dir", ""], capture_output=True, text=True,
                             cwd=tmp_path, timeout=60)
    assert process.returncode == 2 and "is empty (an unset shell variable?)" in process.stderr
    assert sorted(os.listdir(tmp_path)) == ["job.yaml", "train.jsonl", "valid.jsonl"]


def test_overwrite_deletes_only_what_the_earlier_runs_marker_lists(tmp_path, tiny_model_path):
    job = small_job(tmp_path, tiny_model_path)
    run = tmp_path / "run"
    train(job, max_steps=1, progress_bar=False)
    record = json.loads((run / "run.json").read_text())
    assert record[MARKER_KEY]["outputs"][:3] == ["checkpoints", "best", "final"]
    (run / "notes.txt").write_text("the user's, added later")
    victim = tmp_path / "victim.txt"
    victim.write_text("outside the folder")
    # a marker edited to list paths outside the folder, or files that are not run outputs
    record[MARKER_KEY]["outputs"] += ["../victim.txt", str(victim), "notes.txt"]
    (run / "run.json").write_text(json.dumps(record))

    with pytest.raises(RunError, match="already holds a run; continue it with --resume, replace it with --overwrite"):
        train(job, max_steps=1, progress_bar=False)
    result = train(job, max_steps=1, overwrite=True, progress_bar=False)
    assert result.final_step == 1 and (run / "final" / "config.json").is_file()
    assert (run / "notes.txt").read_text() == "the user's, added later" and victim.read_text() == "outside the folder"


def test_resume_refuses_a_best_folder_that_is_a_link_and_deletes_nothing_through_it(tmp_path):
    """Before: ``--resume`` deleted ``*.tmp`` files in the link's target."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({MARKER_KEY: {"format": 1, "outputs": ["best"]}, "job": {}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "draft.tmp").write_text("the user's")
    (run / "best").symlink_to(elsewhere)
    with pytest.raises(RunError, match="best is a symbolic link"):
        plan_run_folder(run, [], resume=True, overwrite=False)
    assert (elsewhere / "draft.tmp").read_text() == "the user's"


def test_resume_removes_only_a_killed_runs_temporaries(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_text("ckpt")
    (run / "checkpoints" / "last.ckpt.tmp").write_text("half-written")
    (run / "final.tmp").mkdir()
    (run / "user.tmp").write_text("the user's")
    (run / "run.json").write_text(json.dumps({MARKER_KEY: {"format": 1, "outputs": ["checkpoints"]}, "job": {}}))
    plan = plan_run_folder(run, [], resume=True, overwrite=False)
    prepare_run_folder(plan)
    assert plan.resume_from == run / "checkpoints" / "last.ckpt"
    assert sorted(os.listdir(run)) == ["checkpoints", "run.json", "user.tmp"]
    assert os.listdir(run / "checkpoints") == ["last.ckpt"]


def test_the_demo_never_replaces_a_users_files_or_an_earlier_run(tmp_path, tiny_model_path):
    """Before: ``rft train --demo --output-dir DIR`` deleted the run in DIR and replaced the
    user's job.yaml and train.jsonl with the demo's."""
    folder = tmp_path / "work"
    folder.mkdir()
    files = {"job.yaml": "model: mine\n", "train.jsonl": "{}\n", "run.json": "{}"}
    for name, text in files.items():
        (folder / name).write_text(text)
    process = run_rft("--demo", "--output-dir", folder, "--no-progress", timeout=60)
    assert process.returncode == 2, process.stderr[-2000:]
    assert "holds files that are not the demo's (job.yaml, run.json, train.jsonl)" in process.stderr
    assert_untouched(folder, files)
    assert sorted(os.listdir(folder)) == sorted(files)


def launch(job: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([RFT, "train", str(job), "--no-progress", "--json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


KILL_AFTER_CHECKPOINT = '''
import os, signal

_replace = os.replace


def replace(source, destination, *args, **kwargs):
    """Rename, then die at once when the rename put a resume checkpoint in place."""
    _replace(source, destination, *args, **kwargs)
    if str(destination).endswith("last.ckpt"):
        os.kill(os.getpid(), signal.SIGKILL)


os.replace = replace
'''


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory, tiny_model_path) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Two ``rft train`` processes at once (the machine has two cores; each uses one thread): one
    sent SIGTERM once its first step is logged, one killed with SIGKILL the moment its first
    resume checkpoint is renamed into place."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("SIGTERM", "SIGKILL")}
    (folders["SIGKILL"] / "kill_after_checkpoint.py").write_text(KILL_AFTER_CHECKPOINT)
    env = {**os.environ, "RFT_PLUGINS": "kill_after_checkpoint",
           "PYTHONPATH": os.pathsep.join([str(folders["SIGKILL"]), os.environ.get("PYTHONPATH", "")])}
    processes = {
        # no scheduled checkpoint before the end: the one the signal asks for is the only one
        "SIGTERM": launch(small_job(folders["SIGTERM"], tiny_model_path, save_steps=1000)),
        "SIGKILL": launch(small_job(folders["SIGKILL"], tiny_model_path, save_steps=1), "--max-steps", "2", env=env),
    }
    first_row = folders["SIGTERM"] / "run" / "metrics.csv"  # the first step's row: training is on
    deadline = time.monotonic() + 180
    while not first_row.is_file() and time.monotonic() < deadline:
        assert processes["SIGTERM"].poll() is None, processes["SIGTERM"].stderr.read()[-3000:]
        time.sleep(0.02)
    processes["SIGTERM"].send_signal(signal.SIGTERM)
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=180)
        results[name] = (folders[name], subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def checkpoint_step(run: Path) -> int:
    return int(torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"])


def assert_stopped_at_a_checkpoint(run: Path, message: str, name: str) -> None:
    """The run ended after a whole step, whose checkpoint and metrics row are written, unfinished."""
    step = checkpoint_step(run)
    assert message == f"stopped by {name} after step {step} of 40; checkpoints/last.ckpt holds step {step}; " \
        "continue with --resume"
    assert steps_with(metric_rows(run / "metrics.csv"), "train_reward_mean") == list(range(1, step + 1))
    assert not (run / "final").exists() and not (run / "summary.json").exists()


def test_sigterm_ends_the_run_with_a_checkpoint_a_message_and_exit_143(stopped_runs):
    """Before: SIGTERM made ``rft train --json`` exit 0 with nothing on stdout and no final model."""
    folder, process = stopped_runs["SIGTERM"]
    assert process.returncode == 143, process.stderr[-3000:]
    last_line = process.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Stopped: ") and process.stdout == ""
    assert_stopped_at_a_checkpoint(folder / "run", last_line.removeprefix("Stopped: "), "SIGTERM")


def test_sigint_ends_the_run_the_same_way(tmp_path, tiny_model_path):
    """Ctrl-C in the Python API (the main thread): ``RunInterrupted`` with the shell's status 130."""
    job = small_job(tmp_path, tiny_model_path, save_steps=1000)
    first_row = tmp_path / "run" / "metrics.csv"

    def interrupt_once_training() -> None:
        while not first_row.is_file():
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    swallow = signal.signal(signal.SIGINT, lambda *_: None)  # were the run not listening, ignore it
    try:
        threading.Thread(target=interrupt_once_training, daemon=True).start()
        with pytest.raises(RunInterrupted) as caught:
            train(job, progress_bar=False)
    finally:
        signal.signal(signal.SIGINT, swallow)
    assert caught.value.exit_status == 130
    assert_stopped_at_a_checkpoint(tmp_path / "run", str(caught.value), "SIGINT")


def test_a_run_killed_right_after_a_checkpoint_keeps_that_steps_metrics_row(stopped_runs):
    """Before: Lightning wrote a step's row only after the checkpoint hooks, so the resumed run
    went on past a step that had no row (3 of 3 tries)."""
    folder, process = stopped_runs["SIGKILL"]
    assert process.returncode == -signal.SIGKILL
    assert checkpoint_step(folder / "run") == 1
    assert steps_with(metric_rows(folder / "run" / "metrics.csv"), "train_reward_mean") == [1]
