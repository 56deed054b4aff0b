"""The kit for plugin authors: `rft new-grader`, the pytest plugin's fixture, grade_samples."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from rft_plugins import GraderConfigError, PluginLoadError, hookimpl, run_grader
from rft_plugins.cli import cli
from rft_plugins.scaffold import GraderPackageNames
from rft_plugins.testing import grade_samples

pytest_plugins = ["pytester"]


def _run(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=240, env=env, cwd=cwd)


def test_a_generated_package_passes_its_own_tests_installed_and_is_listed(tmp_path):
    """What docs/writing-a-grader-plugin.md walks through, from `rft new-grader` to `rft graders run`."""
    created = _run(sys.executable, "-m", "rft_plugins.cli", "new-grader", "city_match", "-d", str(tmp_path))
    assert created.returncode == 0, created.stderr
    package = tmp_path / "rft-grader-city-match"
    site = tmp_path / "site"  # installed apart from the test environment, which others share
    installed = _run(sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                     "--no-build-isolation", "--target", str(site), str(package))
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    tested = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests"), env=env, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "4 passed" in tested.stdout
    listing = _run(sys.executable, "-m", "rft_plugins.cli", "plugins", "--json", env=env)
    [plugin] = [p for p in json.loads(listing.stdout)["plugins"] if p["name"] == "city_match"]
    assert plugin["distribution"] == "rft-grader-city-match" and plugin["registers"] == {"graders": ["city_match"]}
    grader = json.dumps({"type": "city_match", "name": "city", "reference": "{{ item.answer }}"})
    graded = _run(sys.executable, "-m", "rft_plugins.cli", "graders", "run", grader, "--sample", "Paris ",
                  "--item", '{"answer": "paris"}', env=env)
    assert graded.returncode == 0, graded.stderr
    assert json.loads(graded.stdout)["reward"] == 1.0
    invalid = json.dumps({**json.loads(grader), "ignore_case": "maybe"})
    refused = _run(sys.executable, "-m", "rft_plugins.cli", "graders", "validate", invalid, env=env)
    assert refused.returncode == 1 and "ignore_case" in refused.stderr


@pytest.mark.parametrize(
    ("name", "names"),
    [("city_match", ("city_match", "rft-grader-city-match", "rft_grader_city_match", "CityMatchGrader")),
     ("bleu-2", ("bleu_2", "rft-grader-bleu-2", "rft_grader_bleu_2", "Bleu2Grader"))],
)
def test_package_names_derive_from_the_grader_name(name, names):
    derived = GraderPackageNames.from_name(name)
    assert (derived.grader_type, derived.distribution, derived.module, derived.class_name) == names


def test_new_grader_refuses_bad_names_and_existing_folders(tmp_path):
    runner = CliRunner()
    for bad in ("Bad", "2fast", "a__b", "with space", "trailing_"):
        result = runner.invoke(cli, ["new-grader", bad, "-d", str(tmp_path)])
        assert result.exit_code != 0 and "grader name" in str(result.exception)
    assert runner.invoke(cli, ["new-grader", "ok", "-d", str(tmp_path)]).exit_code == 0
    again = runner.invoke(cli, ["new-grader", "ok", "-d", str(tmp_path)])
    assert again.exit_code != 0 and "already exists" in str(again.exception)


class EchoLength:
    def __init__(self, config):
        self.target = config["target"]

    def grade(self, sample, item):
        return float(len(sample.output_text) == self.target)


class EchoPlugin:
    @hookimpl
    def rft_register_graders(self, register):
        register("echo_length", EchoLength)


ECHO = {"type": "echo_length", "name": "len", "target": 3}


def test_the_fixture_holds_the_builtins_and_the_given_plugin(rft_plugin_manager):
    with pytest.raises(GraderConfigError):
        run_grader(ECHO, "abc")  # not installed anywhere
    rft_plugin_manager(EchoPlugin())
    assert run_grader(ECHO, "abc")["reward"] == 1.0
    assert run_grader({"type": "string_check", "name": "s", "input": "a", "reference": "a", "operation": "eq"}, "")["reward"] == 1.0


def test_the_fixture_without_builtins(rft_plugin_manager):
    rft_plugin_manager(EchoPlugin(), builtins=False)
    with pytest.raises(GraderConfigError, match="known types: echo_length$"):
        run_grader({"type": "string_check", "name": "s", "input": "a", "reference": "a", "operation": "eq"}, "")


def test_a_misspelt_hook_is_an_error_in_the_fixture(rft_plugin_manager):
    class Typo:
        @hookimpl
        def rft_register_grader(self, register):
            register("x", EchoLength)

    with pytest.raises(PluginLoadError, match="unknown hook 'rft_register_grader'"):
        rft_plugin_manager(Typo())


def test_the_fixture_is_undone_after_each_test(pytester):
    pytester.makepyfile(
        """
        from rft_plugins import GraderConfigError, hookimpl, run_grader
        import pytest

        class Plugin:
            @hookimpl
            def rft_register_graders(self, register):
                register("always_one", lambda config: type("G", (), {"grade": lambda self, s, i: 1.0})())

        GRADER = {"type": "always_one", "name": "one"}

        def test_with_the_plugin(rft_plugin_manager):
            rft_plugin_manager(Plugin())
            assert run_grader(GRADER, "x")["reward"] == 1.0

        def test_after_it():
            with pytest.raises(GraderConfigError):
                run_grader(GRADER, "x")
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


class SlowAsync:
    io_bound = True

    def __init__(self, config):
        pass

    async def agrade(self, sample, item):
        await asyncio.sleep(0.3)
        return float(sample.output_text == item["answer"])


class SlowPlugin:
    @hookimpl
    def rft_register_graders(self, register):
        register("slow", SlowAsync)


def test_grade_samples_goes_through_the_concurrent_batch_path(rft_plugin_manager):
    rft_plugin_manager(SlowPlugin())
    started = time.monotonic()
    responses = grade_samples({"type": "slow", "name": "s"}, ["a", "b", "a", "c", "a", "d"], {"answer": "a"})
    assert time.monotonic() - started < 1.5  # six 0.3 s grades at once, not one after another
    assert [response["reward"] for response in responses] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert responses[0]["metadata"]["name"] == "s" and responses[0]["metadata"]["type"] == "slow"


def test_grade_samples_items_per_sample_and_mismatches():
    exact = {"type": "string_check", "name": "s", "input": "{{ sample.output_text }}", "reference": "{{ item.a }}",
             "operation": "eq"}
    assert [r["reward"] for r in grade_samples(exact, ["x", "y"], [{"a": "x"}, {"a": "y"}])] == [1.0, 1.0]
    assert [r["reward"] for r in grade_samples(exact, ["x", "y"], {"a": "x"})] == [1.0, 0.0]
    with pytest.raises(ValueError, match="2 samples but 1 items"):
        grade_samples(exact, ["x", "y"], [{"a": "x"}])
