"""`pip install rft-plugins` without extras: graders, plugins, sandbox and the TRL adapter's
reward functions work, and no part of the training stack is installed or imported.

The light environment is a real virtual environment holding the project's wheel (built here)
and exactly the dependency closure that wheel's metadata names without extras, resolved against
the distributions of this test environment and hard-linked in, not downloaded: fast, offline, and it
fails if the wheel forgets a library the light side imports. Lightning, torch and the rest are
absent from it, so a stray import fails rather than merely showing up in ``sys.modules``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"lightning", "torch", "transformers", "tensorboard", "matplotlib", "datasets", "peft", "accelerate", "trl"}


def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=300, **kwargs)


def _wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    return [Requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]


def dependency_closure(requirements: list[Requirement]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions that ``requirements`` (no extras of ours) pull in, recursively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    pending = [(requirement, "") for requirement in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        activated = {""} | set(requirement.extras)
        if all((name, each) in seen for each in activated):
            continue
        seen.update((name, each) for each in activated)
        found[name] = importlib.metadata.distribution(requirement.name)
        for line in found[name].requires or []:
            pending.extend((Requirement(line), each) for each in activated)
    return found


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)  # a hard link: no copy, and inside the venv for the sandbox's Landlock rules
    except OSError:
        shutil.copy2(source, target)


def _add_distribution(dist: importlib.metadata.Distribution, site: Path) -> None:
    """Hard-link an installed distribution's top-level files and folders into ``site``."""
    root = Path(dist.locate_file(""))
    tops = {Path(str(path)).parts[0] for path in dist.files or [] if not str(path).startswith("..")}
    for top in tops - {"__pycache__"}:
        source, target = root / top, site / top
        if target.exists():
            continue
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_link, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            _link(str(source), str(target))


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory) -> Path:
    """A virtual environment with the light install only; returns its bin folder."""
    work = tmp_path_factory.mktemp("light")
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work / "wheel", ROOT)
    assert built.returncode == 0, built.stderr
    [wheel] = (work / "wheel").glob("rft_plugins-*.whl")
    closure = dependency_closure([r for r in _wheel_requirements(wheel) if r.marker is None or r.marker.evaluate({"extra": ""})])
    venv = work / "venv"
    created = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert created.returncode == 0, created.stderr
    site = Path(_run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    for dist in closure.values():
        _add_distribution(dist, site)
    installed = _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", "--no-index", wheel)
    assert installed.returncode == 0, installed.stderr
    return venv / "bin"


def test_the_light_install_lacks_the_training_stack(light_venv):
    code = "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'].lower() for d in m.distributions()]))"
    names = set(json.loads(_run(light_venv / "python", "-c", code).stdout))
    assert {"rft-plugins", "pluggy", "pydantic", "pyseccomp"} <= names
    assert not names & HEAVY


def test_the_light_install_grades_every_builtin_type_and_serves_trl(light_venv):
    checked = _run(light_venv / "python", ROOT / "tests" / "light_install_check.py")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert set(report["types"]) == {"string_check", "text_similarity", "python", "score_model", "label_model", "endpoint", "multi"}
    rewards = report["rewards"]
    assert {name: report["flags"][name] for name in rewards if report["flags"][name]} == {}
    assert rewards["string_check"] == rewards["python"] == rewards["label_model"] == 1.0
    assert rewards["score_model"] == 0.75 and rewards["endpoint"] == 0.25 and rewards["multi"] == 0.5
    assert all(rewards[name] == pytest.approx(1.0) for name in rewards if name.startswith("text_similarity:"))
    assert report["trl"] == [1.0, 0.0]
    assert report["import_errors"]["local judge"].endswith("pip install 'rft-plugins[local-judge]'")
    for module in ("rft_plugins.training", "rft_plugins.adapters.lightning"):
        message = report["import_errors"][module]
        assert message.startswith("MissingExtraError: ") and "needs the 'train' extra (" in message and "lightning" in message
        assert message.endswith("pip install 'rft-plugins[train]'")
    assert report["report"]["charts"] >= 1  # rft report works without the training stack
    assert report["imported"] == [] and report["installed"] == []


def test_the_training_stack_without_its_extra_is_one_line_naming_it(light_venv):
    checked = _run(light_venv / "python", "-c", "import rft_plugins.training")
    assert checked.returncode != 0
    assert checked.stderr.strip().splitlines()[-1].startswith("rft_plugins.extras.MissingExtraError: rft train")
    assert "pip install 'rft-plugins[train]'" in checked.stderr
    demo = _run(light_venv / "rft", "train", "--demo", cwd=light_venv.parent)
    assert demo.returncode == 1
    [line] = demo.stderr.strip().splitlines()
    assert "lightning" in line and line.endswith("pip install 'rft-plugins[train]'")
    listing = _run(light_venv / "rft", "plugins", "--json")
    assert listing.returncode == 0 and json.loads(listing.stdout)["failed"] == []
