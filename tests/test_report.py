"""The run report (``report.html``): reading a run folder, choosing charts and samples, rendering
safely, ``rft report``, ``rft train`` writing it, and the page in a real headless Chromium."""

from __future__ import annotations

import base64
import csv
import hashlib
import html.parser
import io
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from report_browser import chromium_binary, open_page

from rft_plugins.cli import cli
from rft_plugins.report import REPORT_FILE, ReportError, read_run, render_report, write_report, write_run_report
from rft_plugins.report.charts import PALETTE, charts_for
from rft_plugins.report.run_data import MAX_TEXT_CHARS
from rft_plugins.report.samples import best_samples, most_improved, worst_samples
from rft_plugins.report.svg import line_chart

HOSTILE = "</script><script>alert(1)</script>"
REPORT_JS = (Path(__file__).parents[1] / "rft_plugins" / "report" / "report.js").read_text()


# ---------------------------------------------------------------------------------- run folders
def write_metrics(folder: Path, rows: list[dict[str, Any]]) -> None:
    """A Lightning-style sparse ``metrics.csv``: one row per logging call, empty cells elsewhere."""
    columns = sorted({column for row in rows for column in row} | {"step", "epoch"})
    with (folder / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def record(step: int, prompt: str, reward: float | None, completion: str = "answer", **extra: Any) -> dict[str, Any]:
    """A validation record as ``outputs.write_samples`` writes it."""
    return {"step": step, "prompt": prompt, "completion": completion, "tool_calls": [], "reward": reward,
            "sub_rewards": {"exact": reward}, "errors": {}, **extra}


def write_samples(folder: Path, records: list[dict[str, Any]]) -> None:
    (folder / "samples.jsonl").write_text("".join(json.dumps(item) + "\n" for item in records))


def training_rows(steps: int, valid_every: int = 2) -> list[dict[str, Any]]:
    """Metrics of a run with a ``multi`` grader ``answer`` (sub-graders ``exact``, ``mentions``),
    one raised error flag, timings and the optimisation columns."""
    rows = []
    for step in range(1, steps + 1):
        reward = step / (2 * steps)
        rows.append({
            "step": step, "train_reward_mean": reward, "train/answer_reward_mean": reward,
            "train/exact_reward_mean": reward / 2, "train/mentions_reward_mean": min(1.0, reward * 1.5),
            "train/other_error_rate": 0.0, "train/invalid_variable_error_rate": 0.25 if step == 1 else 0.0,
            "timing/sampling_s": 0.5, "timing/training_s": 0.25, "timing/full_iteration_s": 0.8,
            "learning_rate": 1e-5, "loss": 0.01 * step, "kl": 0.0, "grad_norm": 1.0 + step,
        })
        if step % valid_every == 0:
            rows.append({"step": step, "valid_reward_mean": reward, "valid/answer_reward_mean": reward,
                         "valid/exact_reward_mean": reward / 2, "valid/other_error_rate": 0.0})
    return rows


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A finished run's files, written by hand: 6 steps, validations at 2, 4 and 6."""
    folder = tmp_path / "run"
    folder.mkdir()
    write_metrics(folder, training_rows(6))
    write_samples(folder, [
        record(2, "p1", 0.0), record(2, "p1", 0.2), record(2, "p2", 0.5), record(2, "p3", 1.0),
        record(4, "p1", 0.5),  # a middle validation: counted, not shown
        record(6, "p1", 1.0), record(6, "p1", 0.8), record(6, "p2", 0.25), record(6, "p3", 1.0),
        record(6, "p4", None, errors={"invalid_variable_error": True}),
    ])
    (folder / "run.json").write_text(json.dumps({
        "job": {"model": "models/tiny", "method": {"reinforcement": {"grader": {"type": "multi", "name": "answer"}}}},
        "plan": {"total_steps": 6, "batch_size": 2}, "settings": {"num_generations": 4, "loss_type": "dapo"},
    }))
    (folder / "summary.json").write_text(json.dumps({"final_step": 6, "total_steps": 6, "seconds": 12.5}))
    return folder


class PageStructure(html.parser.HTMLParser):
    """The elements of a page that could run code or load something: scripts, and every URL."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.urls: list[str] = []
        self.event_handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append("")
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset"):
                self.urls.append(value or "")
            if name.startswith("on"):
                self.event_handlers.append(name)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def structure(page: str) -> PageStructure:
    parser = PageStructure()
    parser.feed(page)
    return parser


# ------------------------------------------------------------------------------- reading a run
def test_read_run_keeps_the_first_and_last_validation_and_counts_them(run_folder):
    run = read_run(run_folder)
    assert run.first_validation.step == 2 and run.last_validation.step == 6 and run.validation_count == 3
    assert [sample.prompt.text for sample in run.last_validation.samples] == ["p1", "p1", "p2", "p3", "p4"]
    assert run.last_validation.reward_mean == pytest.approx((1.0 + 0.8 + 0.25 + 1.0) / 4)  # None does not apply
    assert run.metrics["valid_reward_mean"] == [(2, 1 / 6), (4, 2 / 6), (6, 3 / 6)]
    assert run.record["plan"]["total_steps"] == 6 and run.summary["seconds"] == 12.5
    assert run.notes == []


def test_validations_out_of_order_still_give_the_first_and_last(tmp_path):
    write_samples(tmp_path, [record(4, "a", 0.4), record(2, "a", 0.2), record(6, "a", 0.6), record(2, "b", 0.1)])
    run = read_run(tmp_path)
    assert run.first_validation.step == 2 and [s.prompt.text for s in run.first_validation.samples] == ["a", "b"]
    assert run.last_validation.step == 6 and run.validation_count == 3


def test_a_folder_without_run_files_is_a_report_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    with pytest.raises(ReportError, match="not a run folder"):
        read_run(tmp_path)
    with pytest.raises(ReportError, match="not a folder"):
        read_run(tmp_path / "notes.txt")


def test_missing_files_are_noted_and_the_rest_is_reported(tmp_path):
    write_metrics(tmp_path, training_rows(4))
    run = read_run(tmp_path)
    assert any("samples.jsonl is missing" in note for note in run.notes)
    assert any("run.json is missing" in note for note in run.notes)
    assert not any("summary.json" in note for note in run.notes)  # not written yet: a run still going
    page = render_report(run)
    assert 'id="chart-reward"' in page and "No validation samples" in page
    assert "samples.jsonl is missing" in page


def test_unreadable_files_are_notes_not_failures(tmp_path):
    write_metrics(tmp_path, [*training_rows(2), {"step": "not a step", "loss": 1.0}])
    (tmp_path / "summary.json").write_text("{broken")
    (tmp_path / "run.json").write_text("[1, 2]")
    (tmp_path / "samples.jsonl").write_text('\n'.join([
        json.dumps(record(2, "ok", 1.0)), "{broken", "[]", json.dumps({"step": "two"}), json.dumps({"step": True}),
        json.dumps(record(2, "ok too", float("nan"))),
    ]))
    run = read_run(tmp_path)
    notes = " | ".join(run.notes)
    assert "metrics.csv could not be read" in notes
    assert "summary.json could not be read" in notes and "run.json does not hold a JSON object" in notes
    assert "4 lines are not validation records" in notes
    assert [sample.reward for sample in run.last_validation.samples] == [1.0, None]  # NaN: not applicable
    assert "No metrics to draw" in render_report(run)


def test_nan_and_empty_metric_cells_are_left_out(tmp_path):
    write_metrics(tmp_path, [
        {"step": 1, "train_reward_mean": 0.5, "loss": "nan", "kl": ""},
        {"step": 2, "train_reward_mean": "nan", "loss": "nan", "kl": ""},
        {"step": 3, "train_reward_mean": 0.75, "loss": "inf", "kl": ""},
    ])
    run = read_run(tmp_path)
    assert run.metrics == {"train_reward_mean": [(1, 0.5), (3, 0.75)]}
    assert [chart.title for chart in charts_for(run.metrics)] == ["Reward"]


def test_huge_texts_are_cut_and_the_rest_counted(tmp_path):
    completion = "x" * 1_000_000
    write_samples(tmp_path, [record(1, "p" * 10, 0.5, completion=completion)])
    run = read_run(tmp_path)
    [sample] = run.last_validation.samples
    assert len(sample.completion.text) == MAX_TEXT_CHARS and sample.completion.omitted == 1_000_000 - MAX_TEXT_CHARS
    page = render_report(run)
    assert len(page) < 100_000
    assert f"{1_000_000 - MAX_TEXT_CHARS} more characters in samples.jsonl" in page


# ------------------------------------------------------------------------ charts and samples
def test_charts_follow_the_metric_names(run_folder):
    charts = {chart.title: chart for chart in charts_for(read_run(run_folder).metrics)}
    assert list(charts) == [
        "Reward", "Reward: exact", "Reward: mentions", "Error flags", "Time per phase", "Learning rate", "Loss",
        "KL to the reference", "Gradient norm",
    ]  # "Reward: answer" (the top grader) would repeat "Reward"
    assert [series.label for series in charts["Reward"].series] == ["train", "valid"]
    assert [series.label for series in charts["Reward: mentions"].series] == ["train"]  # never validated
    # only flags raised at least once; other_error stays at 0
    assert [series.label for series in charts["Error flags"].series] == ["train/invalid_variable_error_rate"]
    assert [series.label for series in charts["Time per phase"].series] == ["full_iteration", "sampling", "training"]
    assert charts["Reward"].y_bounds == (0.0, 1.0)
    assert len({series.colour for series in charts["Time per phase"].series}) == 3


def test_no_error_flag_chart_when_none_was_raised(tmp_path):
    rows = [{"step": 1, "train_reward_mean": 0.5, "train/other_error_rate": 0.0, "valid/other_error_rate": 0.0}]
    write_metrics(tmp_path, rows)
    run = read_run(tmp_path)
    assert "Error flags" not in [chart.title for chart in charts_for(run.metrics)]
    assert "No grader error flag was raised" in render_report(run)


def test_best_worst_and_most_improved_samples(run_folder):
    run = read_run(run_folder)
    assert [(s.prompt.text, s.reward) for s in best_samples(run.last_validation, 3)] == [
        ("p1", 1.0), ("p3", 1.0), ("p1", 0.8)]
    assert [(s.prompt.text, s.reward) for s in worst_samples(run.last_validation, 2)] == [("p2", 0.25), ("p1", 0.8)]
    improved = most_improved(run.first_validation, run.last_validation)
    # p1: 0.1 -> 0.9; p3: 1 -> 1; p2: 0.5 -> 0.25; p4 was not graded at the first validation
    assert [(p.last[0].prompt.text, round(p.gain, 6)) for p in improved] == [("p1", 0.8), ("p3", 0.0), ("p2", -0.25)]
    assert len(improved[0].first) == 2 and len(improved[0].last) == 2


def test_one_validation_has_nothing_to_compare(tmp_path):
    write_samples(tmp_path, [record(3, "p", 0.5)])
    run = read_run(tmp_path)
    assert run.first_validation == run.last_validation
    assert most_improved(run.first_validation, run.last_validation) == []
    assert "Needs two validations of the same prompts; 1 ran." in render_report(run)


def test_a_run_without_validation(tmp_path):
    write_metrics(tmp_path, [row for row in training_rows(4) if "valid_reward_mean" not in row])
    write_samples(tmp_path, [])
    run = read_run(tmp_path)
    assert run.last_validation is None and run.validation_count == 0
    [reward] = [chart for chart in charts_for(run.metrics) if chart.title == "Reward"]
    assert [series.label for series in reward.series] == ["train"]
    page = render_report(run)
    assert "No validation samples" in page and 'data-tab="best"' not in page


def test_a_single_step_is_drawn_as_points(tmp_path):
    write_metrics(tmp_path, [{"step": 1, "train_reward_mean": 0.5, "learning_rate": 3e-6},
                             {"step": 1, "valid_reward_mean": 0.25}])
    charts = charts_for(read_run(tmp_path).metrics)
    for chart in charts:
        drawing = str(line_chart(chart))
        assert "<polyline" not in drawing  # one point: no line to draw
        assert drawing.count("<circle") == len(chart.series)
        coordinates = re.findall(r' (?:x|y|x1|y1|x2|y2|cx|cy)="([^"]+)"', drawing)
        assert coordinates and all(math.isfinite(float(value)) for value in coordinates)
    assert '<circle cx="304.0"' in str(line_chart(charts[0]))  # the step sits mid-axis (64 + 480 / 2)


def test_chart_coordinates_and_ticks():
    [chart] = charts_for({"train_reward_mean": [(0, 0.0), (10, 1.0)]})
    drawing = str(line_chart(chart))
    # step 0 -> left edge (64), step 10 -> right edge (544); reward 0 -> bottom (236), 1 -> top (12)
    assert '<polyline points="64.0,236.0 544.0,12.0"' in drawing
    labels = re.findall(r">([^<>]+)</text>", drawing)
    assert {"0", "0.2", "0.4", "0.6", "0.8", "1", "2", "4", "10", "step", "mean reward"} <= set(labels)


# ---------------------------------------------------------------------------------- rendering
def test_hostile_text_stays_text(tmp_path):
    write_metrics(tmp_path, [{"step": 1, "train_reward_mean": 0.5, f"train/{HOSTILE}_reward_mean": 0.5,
                              "train/<b>x</b>_rate": 0.5}])
    write_samples(tmp_path, [record(
        1, f"<img src=x onerror=alert(2)>{HOSTILE}", 0.5, completion=HOSTILE,
        sub_rewards={HOSTILE: 1.0}, errors={"other_error": HOSTILE},
        tool_calls=[{"function": {"name": HOSTILE, "arguments": {"q": HOSTILE}}}],
    )])
    (tmp_path / "run.json").write_text(json.dumps({"job": {"model": HOSTILE}}))
    page = render_report(read_run(tmp_path))
    parsed = structure(page)
    assert parsed.scripts == [REPORT_JS]  # the page's own script, and nothing else
    assert parsed.urls == [] and parsed.event_handlers == []
    assert "<script>alert" not in page and "<img" not in page and "<b>x</b>" not in page
    assert page.count("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;") >= 7  # model, chart, series, ...
    assert "&lt;img src=x onerror=alert(2)&gt;" in page


def test_the_content_security_policy_allows_only_the_inline_style_and_script(run_folder):
    page = render_report(read_run(run_folder))
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    policy = policy.replace("&#39;", "'")
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL).group(1)
    for directive, body in (("script-src", REPORT_JS), ("style-src", style)):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}';" in policy
    assert policy.startswith("default-src 'none';") and "unsafe" not in policy


def test_the_report_shows_the_run_overview(run_folder):
    page = render_report(read_run(run_folder))
    for text in ("models/tiny", "answer (multi)", "<td>6 of 6</td>", "0.1667 at step 2 → 0.5 at step 6",
                 "12.5 s", "<th>num_generations</th><td>4</td>", "<th>loss_type</th><td>dapo</td>"):
        assert text in page, text
    assert page.count('<figure class="chart"') == 9


# ---------------------------------------------------------------------------- writing, the CLI
def test_rft_report_writes_the_page_and_rebuilds_it_identically(run_folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["report", str(run_folder)])
    assert result.exit_code == 0, result.output
    written = run_folder / REPORT_FILE
    assert result.output.strip() == str(written)
    other = tmp_path / "elsewhere.html"
    assert runner.invoke(cli, ["report", str(run_folder), "-o", str(other)]).exit_code == 0
    assert other.read_bytes() == written.read_bytes()


def test_rft_report_on_a_folder_without_a_run_is_one_line_and_status_2(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path} is not a run folder: it holds none of " \
        "metrics.csv, samples.jsonl, summary.json, run.json"


def test_a_report_that_cannot_be_built_does_not_fail_the_run(run_folder, monkeypatch):
    import rft_plugins.report as report

    def broken(run):
        raise ZeroDivisionError(HOSTILE)

    monkeypatch.setattr(report, "render_report", broken)
    path = write_run_report(run_folder)
    page = path.read_text()
    assert path == run_folder / REPORT_FILE
    assert "ZeroDivisionError: &lt;/script&gt;" in page and f"rft report {run_folder}" in page
    with pytest.raises(ZeroDivisionError):
        write_report(run_folder)  # rft report says what went wrong instead


def test_the_committed_screenshot_is_small_and_shows_curves():
    from PIL import Image

    png = Path(__file__).parents[1] / "docs" / "report.png"
    assert png.stat().st_size < 300_000
    image = Image.open(png).convert("RGB")
    assert image.width >= 1000
    assert pixels_near(image, PALETTE[0]) > 500 and pixels_near(image, PALETTE[1]) > 50


# ------------------------------------------------------------------- a real run, a real browser
def pixels_near(image: Any, colour: str, tolerance: int = 40) -> int:
    """How many pixels of ``image`` are within ``tolerance`` of ``colour`` in each channel."""
    target = tuple(int(colour[index:index + 2], 16) for index in (1, 3, 5))
    return sum(
        count for count, pixel in image.getcolors(image.width * image.height)
        if all(abs(channel - wanted) <= tolerance for channel, wanted in zip(pixel, target))
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_path) -> tuple[Path, Any]:
    """A real `rft train` run on the tiny model: 6 steps, validation every 2, some rows without a
    reference (the grader raises invalid_variable_error on them)."""
    from rft_plugins.data.demo import answer_check
    from rft_plugins.plugins import reset_for_tests
    from rft_plugins.training.run import train

    reset_for_tests()
    chat = [{"role": "system", "content": "Answer in one letter."}]
    train_rows = [{"messages": [*chat, {"role": "user", "content": f"question {i}"}], "answer": "a"} for i in range(4)]
    train_rows += [{"messages": [*chat, {"role": "user", "content": f"question {i} (no reference)"}]} for i in range(2)]
    valid_rows = [{"messages": [*chat, {"role": "user", "content": f"held out {i}"}], "answer": "e"} for i in range(3)]
    grader = {"type": "multi", "name": "answer", "calculate_output": "0.5 * mentions + 0.5 * nonempty",
              "graders": {"mentions": answer_check("mentions", "like"),
                          "nonempty": {**answer_check("nonempty", "ne"), "reference": ""}}}
    job = {
        "model": str(tiny_model_path), "training_file": "train.jsonl", "validation_file": "valid.jsonl",
        "method": {"type": "reinforcement", "reinforcement": {"grader": grader, "hyperparameters": {
            "n_epochs": 2, "batch_size": 2, "eval_interval": 2, "eval_samples": 2}}},
        "trainer": {"num_generations": 2, "max_completion_length": 8, "learning_rate": 1e-2},
    }
    folder = tmp_path_factory.mktemp("report") / "run"
    result = train(job, train_rows=train_rows, valid_rows=valid_rows, max_steps=6, output_dir=folder, progress_bar=False)
    reset_for_tests()
    return folder, result


def test_rft_train_writes_the_report(trained_run):
    folder, result = trained_run
    assert result.files["report"] == str(folder / REPORT_FILE)
    page = (folder / REPORT_FILE).read_text()
    assert 'id="chart-reward"' in page and 'id="chart-error-flags"' in page and 'data-tab="improved"' in page
    assert "4 validations ran" in page  # the baseline at step 0, then every 2 steps
    assert "<h2>Notes</h2>" not in page  # every file it reads was there


@pytest.fixture(scope="module")
def browser() -> str:
    """Debian's chromium; skipped only where it cannot be installed (CI runs as root on Debian)."""
    binary = chromium_binary()
    if binary is None:
        if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail("chromium is not installed but could be: run `make chromium` (apt-get install chromium)")
        pytest.skip("no chromium, and apt-get cannot install it here (needs root on Debian): see `make chromium`")
    return binary


def test_the_report_renders_in_headless_chromium(browser, trained_run, tmp_path):
    from PIL import Image

    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("metrics.csv", "samples.jsonl", "run.json", "summary.json"):
        shutil.copy(trained_run[0] / name, folder / name)
    with (folder / "samples.jsonl").open("a") as handle:  # a hostile completion at the last validation
        handle.write(json.dumps(record(6, "Say something nasty", 0.0, completion=HOSTILE)) + "\n")
    page_path = tmp_path / "report.html"
    assert CliRunner().invoke(cli, ["report", str(folder), "-o", str(page_path)]).exit_code == 0

    with open_page(page_path) as page:
        charts = page.evaluate("""[...document.querySelectorAll('figure.chart')].map(figure => {
            const box = figure.querySelector('svg.plot').getBoundingClientRect();
            return {id: figure.id, colours: figure.dataset.colours.split(' '),
                    x: box.x + scrollX, y: box.y + scrollY, width: box.width, height: box.height};
        })""")
        shown_text = page.evaluate("document.body.innerText")
        visible = "[...document.querySelectorAll('[data-panel]')].filter(p => !p.hidden).map(p => p.dataset.panel)"
        panels_first = page.evaluate(visible)
        page.evaluate("document.querySelector('[data-tab=worst]').click()")
        panels_after_click = page.evaluate(visible)
        shown_cards = "[...document.querySelectorAll('[data-panel=worst] > article')].filter(c => !c.hidden).length"
        cards_before = page.evaluate(shown_cards)
        page.evaluate("""(() => { const box = document.getElementById('sample-filter');
                          box.value = 'something nasty'; box.dispatchEvent(new Event('input')); })()""")
        cards_filtered = page.evaluate(shown_cards)
        screenshot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        load = page.load

    assert load.console_errors == [] and load.outside_requests == [] and load.dialogs == []
    assert HOSTILE in shown_text  # shown as text, never run
    assert panels_first == ["best"] and panels_after_click == ["worst"]
    assert cards_before > 1 and cards_filtered == 1
    screenshot.save(tmp_path / "report.png")
    assert {chart["id"] for chart in charts} >= {
        "chart-reward", "chart-reward-mentions", "chart-reward-nonempty", "chart-error-flags", "chart-time-per-phase",
        "chart-learning-rate", "chart-loss", "chart-gradient-norm",
    }
    for chart in charts:
        box = tuple(round(chart[key]) for key in ("x", "y")) + (round(chart["x"] + chart["width"]),
                                                                round(chart["y"] + chart["height"]))
        area = screenshot.crop(box)
        assert area.width > 400 and area.height > 200, chart
        colours = area.getcolors(area.width * area.height)
        assert len(colours) >= 8, (chart["id"], "blank or flat")  # white, grid, axis, text, curves...
        for colour in chart["colours"]:
            assert pixels_near(area, colour) >= 8, (chart["id"], colour)
        background = max(colours)[0] / (area.width * area.height)
        assert background < 0.97, (chart["id"], "nothing drawn")
