"""Python graders written for OpenAI's grader image: another interpreter, the same sandbox.

The Graders guide (https://developers.openai.com/api/docs/guides/graders, "Technical
constraints") lists the packages of ``image_tag`` 2025-05-08. CI does not install them (rdkit and
scikit-bio are large): these tests build an interpreter of their own, a virtual environment with
one small package, and check that graders run on it with every isolation layer, that the
trainer's packages stay out of reach, and that a missing package names itself and the extra.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rft_plugins import GraderConfigError, build_grader, run_grader
from rft_plugins.sandbox.grader_image import EXTRA, IMAGE_MODULES
from rft_plugins.sandbox.interpreters import GRADER_PYTHON_ENV

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: OpenAI's list for image_tag 2025-05-08 (Graders guide), as PyPI names
OPENAI_IMAGE = {"numpy", "scipy", "sympy", "pandas", "rapidfuzz", "scikit-learn", "rouge-score", "deepdiff",
                "jsonschema", "pydantic", "pyyaml", "nltk", "sqlparse", "rdkit", "scikit-bio", "ast-grep-py"}


@pytest.fixture(scope="module")
def image_python(tmp_path_factory) -> str:
    """A virtual environment of this Python (no pip, nothing of the trainer's) holding one small
    package, ``imagepkg``: the stand-in for an environment with OpenAI's image."""
    folder = tmp_path_factory.mktemp("grader-env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=60)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()
    package = Path(purelib) / "imagepkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("SCALE = 42\n")
    return str(python)


@pytest.fixture
def listed(image_python, monkeypatch) -> str:
    """The environment listed by the operator as the grader interpreter."""
    monkeypatch.setenv(GRADER_PYTHON_ENV, image_python)
    return image_python


def python_grader(source: str, **fields) -> dict:
    return {"type": "python", "name": "image", "source": source, **fields}


def details(response: dict) -> str:
    return response["metadata"]["errors"]["python_grader_runtime_error_details"] or ""


def test_the_extra_holds_openais_image():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    names = {requirement.split(">")[0].split("<")[0].split("=")[0].strip() for requirement in extras[EXTRA]}
    assert names == OPENAI_IMAGE == set(IMAGE_MODULES.values())
    assert EXTRA not in " ".join(extras["all"])  # CI's `all` must not pull rdkit and scikit-bio


def test_a_grader_runs_on_the_listed_interpreter(listed):
    source = "import sys, imagepkg\ndef grade(sample, item):\n    return imagepkg.SCALE / 42 if sys.prefix != sys.base_prefix else 0.0\n"
    response = run_grader(python_grader(source, image_tag="2025-05-08", pass_threshold=1.0), "x")
    assert response["reward"] == 1.0 and response["passed"] is True


def test_the_trainers_packages_are_out_of_reach(listed):
    """numpy is installed for the trainer, not in the grader's environment: it is missing there,
    and the details say it is part of OpenAI's image and how to install it."""
    response = run_grader(python_grader("import numpy\ndef grade(sample, item):\n    return 1.0\n"), "x")
    assert response["reward"] == 0.0
    text = details(response)
    assert "No module named 'numpy'" in text
    assert f"pip install 'rft-plugins[{EXTRA}]'" in text and listed in text


def test_every_sandbox_layer_holds_on_another_interpreter(listed, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    secret.chmod(0o644)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-trainer-secret")
    source = f"""
import os, socket
def grade(sample, item):
    escaped = []
    try:
        socket.socket()
        escaped.append("socket")
    except OSError:
        pass
    for path in ({str(secret)!r}, {str(PYPROJECT)!r}):
        try:
            open(path).read()
            escaped.append(path)
        except OSError:
            pass
    try:
        open("/tmp/rft-escape-{os.getpid()}", "w").write("x")
        escaped.append("write")
    except OSError:
        pass
    if "OPENAI_API_KEY" in os.environ:
        escaped.append("environment")
    return 1.0 if not escaped else -len(escaped)
"""
    with build_grader(python_grader(source)) as grader:
        assert grader.grade("x").reward == 1.0
        isolation = grader.impl.pool.isolation
    assert isolation["seccomp"] is True and isolation["landlock"]
    assert not Path(f"/tmp/rft-escape-{os.getpid()}").exists()


def test_a_grader_may_pick_a_listed_interpreter_or_the_trainers(listed):
    source = "import imagepkg\ndef grade(sample, item):\n    return 1.0\n"
    assert run_grader(python_grader(source, sandbox={"python": listed}), "x")["reward"] == 1.0
    own = run_grader(python_grader(source, sandbox={"python": sys.executable}), "x")
    assert own["reward"] == 0.0 and "No module named 'imagepkg'" in details(own)
    assert "not part of OpenAI's grader image either" in details(own)


@pytest.mark.parametrize("requested", ["/bin/sh", "{job_folder}/venv/bin/python"])
def test_a_job_file_cannot_choose_an_unlisted_interpreter(listed, tmp_path, requested):
    """The interpreter starts before the sandbox is up: only the operator may allow one."""
    grader = python_grader("def grade(sample, item):\n    return 1.0\n",
                           sandbox={"python": requested.format(job_folder=tmp_path)})
    with pytest.raises(GraderConfigError) as caught:
        build_grader(grader)
    assert caught.value.field == "sandbox.python" and GRADER_PYTHON_ENV in caught.value.message


def test_a_listed_interpreter_that_cannot_run_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv(GRADER_PYTHON_ENV, str(tmp_path / "missing" / "python"))
    with pytest.raises(GraderConfigError) as caught:
        build_grader(python_grader("def grade(sample, item):\n    return 1.0\n"))
    assert caught.value.field == "sandbox.python" and "not an executable file" in caught.value.message


def test_a_missing_package_is_said_once_loudly(listed, caplog):
    """Every sample of such a grader scores 0: the log says so once, naming package and extra."""
    source = "import skbio\ndef grade(sample, item):\n    return 1.0\n"
    with caplog.at_level(logging.ERROR), build_grader(python_grader(source, name="biology")) as grader:
        grades = grader.grade_batch(["a", "b", "c"], [{}, {}, {}])
    assert all(grade.reward == 0.0 and grade.metadata["missing_module"] == "skbio" for grade in grades)
    said = [record.getMessage() for record in caplog.records if "skbio" in record.getMessage()]
    assert len(said) == 1
    assert "'biology'" in said[0] and "scikit-bio" in said[0] and f"rft-plugins[{EXTRA}]" in said[0]

