"""The plugin system: entry-point discovery of real installed wheels, env vars, conflicts."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rft_plugins import GraderConfigError, PluginConflictError, PluginLoadError, run_grader
from rft_plugins.registry import collect

PACKAGES = Path(__file__).parent / "plugin_packages"
LENGTH_GRADER = {"type": "length_match", "name": "len", "target": 4}


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


@pytest.fixture(scope="module")
def installed_wheels(tmp_path_factory):
    """Build the fixture plugin packages as wheels and pip-install them (not editable)."""
    wheels = tmp_path_factory.mktemp("wheels")
    for package in ("rft-plugin-fixture", "rft-plugin-broken"):
        _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(PACKAGES / package))
    _pip("install", "--no-deps", "--force-reinstall", *map(str, wheels.glob("*.whl")))
    importlib.invalidate_caches()
    yield
    _pip("uninstall", "-y", "rft-plugin-fixture", "rft-plugin-broken")
    importlib.invalidate_caches()


def _rft(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "rft_plugins.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.usefixtures("installed_wheels")
class TestInstalledPluginPackages:
    def test_entry_point_grader_is_usable_by_type(self):
        assert run_grader(LENGTH_GRADER, "abcd")["reward"] == 1.0
        assert run_grader(LENGTH_GRADER, "abcdef")["reward"] == 0.5
        assert collect("graders")["length_match"].plugin == "fixture_length"

    def test_entry_point_grader_inside_multi(self):
        grader = {
            "type": "multi",
            "name": "combo",
            "graders": {
                "length": LENGTH_GRADER,
                "exact": {"type": "string_check", "name": "e", "input": "{{ sample.output_text }}",
                          "reference": "abcd", "operation": "eq"},
            },
            "calculate_output": "(length + exact) / 2",
        }
        response = run_grader(grader, "abcde")
        assert response["sub_rewards"] == {"length": 0.75, "exact": 0.0}
        assert response["reward"] == pytest.approx(0.375)

    def test_plugin_config_error_names_its_field(self):
        with pytest.raises(GraderConfigError) as error:
            run_grader({"type": "length_match", "name": "len", "target": -1}, "x")
        assert error.value.field == "target"

    def test_broken_plugin_is_reported_and_the_rest_works(self):
        result = _rft("plugins", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        [failure] = [f for f in report["failed"] if f["name"] == "broken"]
        assert failure["distribution"] == "rft-plugin-broken"
        assert "a_dependency_that_is_not_installed" in failure["error"]
        [fixture] = [p for p in report["plugins"] if p["name"] == "fixture_length"]
        assert fixture["distribution"] == "rft-plugin-fixture"
        assert fixture["version"] == "1.2.3"
        assert fixture["hooks"] == ["rft_register_graders"]
        assert fixture["registers"] == {"graders": ["length_match"]}
        graded = _rft("graders", "run", json.dumps(LENGTH_GRADER), "--sample", "abcd")
        assert graded.returncode == 0, graded.stderr
        assert json.loads(graded.stdout)["reward"] == 1.0

    def test_human_listing_names_the_failure(self):
        result = _rft("plugins")
        assert "FAILED broken (distribution rft-plugin-broken)" in result.stdout
        assert "fixture_length (rft-plugin-fixture 1.2.3)" in result.stdout

    def test_strict_mode_makes_a_broken_plugin_fatal(self):
        result = _rft("plugins", env_extra={"RFT_STRICT_PLUGINS": "1"})
        assert result.returncode != 0
        assert "rft-plugin-broken" in result.stderr

    def test_strict_mode_in_process(self, monkeypatch, fresh_plugins):
        monkeypatch.setenv("RFT_STRICT_PLUGINS", "1")
        with pytest.raises(PluginLoadError, match="rft-plugin-broken"):
            fresh_plugins.get_plugin_manager()

    def test_disabled_plugin_is_not_loaded(self, monkeypatch, fresh_plugins):
        monkeypatch.setenv("RFT_DISABLE_PLUGINS", "broken, fixture_length")
        fresh_plugins.get_plugin_manager()
        assert fresh_plugins.failures == []
        assert "length_match" not in collect("graders")


def test_builtins_can_be_disabled_like_any_plugin(monkeypatch):
    monkeypatch.setenv("RFT_DISABLE_PLUGINS", "rft_plugins.default_plugins.string_check")
    with pytest.raises(GraderConfigError) as error:
        run_grader({"type": "string_check", "name": "s", "input": "a", "reference": "a", "operation": "eq"}, "a")
    assert error.value.field == "type"
    assert "known types:" in str(error.value) and "multi" in str(error.value)


def _write_module(directory: Path, name: str, source: str) -> str:
    (directory / f"{name}.py").write_text(source)
    return name


def test_rft_plugins_env_loads_in_house_modules(tmp_path, monkeypatch):
    module = _write_module(tmp_path, "inhouse_grader_plugin", '''
from rft_plugins import hookimpl

class AlwaysHalf:
    def __init__(self, config):
        pass
    def grade(self, sample, item):
        return 0.5

@hookimpl
def rft_register_graders(register):
    register("always_half", AlwaysHalf)
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RFT_PLUGINS", module)
    assert run_grader({"type": "always_half", "name": "h"}, "anything")["reward"] == 0.5


def test_a_name_registered_twice_names_both_plugins(tmp_path, monkeypatch):
    module = _write_module(tmp_path, "clashing_plugin", '''
from rft_plugins import hookimpl

@hookimpl
def rft_register_graders(register):
    register("string_check", object)
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RFT_PLUGINS", module)
    with pytest.raises(PluginConflictError) as error:
        collect("graders")
    assert "rft_plugins.default_plugins.string_check" in str(error.value)
    assert "clashing_plugin" in str(error.value)


def test_unknown_hook_names_are_reported(tmp_path, monkeypatch, fresh_plugins):
    module = _write_module(tmp_path, "typo_plugin", '''
from rft_plugins import hookimpl

@hookimpl
def rft_register_grader(register):
    pass
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RFT_PLUGINS", module)
    fresh_plugins.get_plugin_manager()
    assert fresh_plugins.unknown_hooks == ["plugin 'typo_plugin' implements unknown hook 'rft_register_grader'"]


def test_a_broken_in_house_module_is_skipped(monkeypatch, fresh_plugins):
    monkeypatch.setenv("RFT_PLUGINS", "no_such_module_anywhere")
    fresh_plugins.get_plugin_manager()
    [failure] = [f for f in fresh_plugins.failures if f.name == "no_such_module_anywhere"]
    assert failure.distribution is None and "ModuleNotFoundError" in failure.error
    assert "string_check" in collect("graders")


def test_every_registration_hook_collects_by_name(tmp_path, monkeypatch):
    module = _write_module(tmp_path, "all_kinds_plugin", '''
from rft_plugins import hookimpl

@hookimpl
def rft_register_data_sources(register):
    register("my_source", dict)

@hookimpl
def rft_register_samplers(register):
    register("my_sampler", list)

@hookimpl
def rft_register_reward_shapers(register):
    register("my_shaper", set)

@hookimpl
def rft_register_judge_backends(register):
    register("my_judge", tuple)
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("RFT_PLUGINS", module)
    for kind, name, factory in [("data_sources", "my_source", dict), ("samplers", "my_sampler", list),
                                ("reward_shapers", "my_shaper", set), ("judge_backends", "my_judge", tuple)]:
        registration = collect(kind)[name]
        assert (registration.factory, registration.plugin) == (factory, module)


def test_loading_every_plugin_imports_no_heavy_library():
    """Plugin loading runs on every `rft` call: torch, lightning and transformers wait until used."""
    code = (
        "import sys; from rft_plugins.plugins import get_plugin_manager; get_plugin_manager(); "
        "print(sorted(m for m in ('torch', 'lightning', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
