"""``rft graders check``: a grader is tried on each row's reference answer, an empty and a random
answer before training; what looks wrong is listed and the command exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rft_plugins.graders.check import check_grader, reference_sample

RFT = str(Path(sys.executable).with_name("rft"))
ROWS = [{"messages": [{"role": "user", "content": f"q{i}"}], "answer": answer} for i, answer in
        enumerate(["a", "e", "i", "o"])]


def grader(**fields):
    return {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
            "reference": "{{ item.answer }}", "operation": "eq", **fields}


def test_a_sound_grader_passes():
    report = check_grader(grader(), ROWS)
    assert not report.problems and report.to_dict()["ok"]
    assert report.probes["reference: exact"].rewards == [1.0] * 4
    assert report.probes["empty"].mean == 0.0 and report.probes["random"].mean == 0.0


def test_a_reference_the_rows_lack_is_a_problem():
    report = check_grader(grader(reference="{{ item.answr }}"), ROWS)
    assert any("no row has a reference" in line for line in report.problems)


def test_a_grader_that_rewards_the_empty_answer_is_a_problem():
    report = check_grader(grader(operation="like", reference=""), ROWS)  # "" is in every answer
    assert report.probes["empty"].mean == 1.0
    assert any(line.startswith("empty answers score 1.000") for line in report.problems)


def test_answers_in_json_and_multi_sub_graders():
    multi = {
        "type": "multi", "name": "quiz", "calculate_output": "0.5 * answer + 0.5 * close",
        "graders": {
            "answer": grader(name="a", input="{{ sample.output_json.result.letter }}"),
            "close": {"type": "text_similarity", "name": "c", "input": "{{ sample.output_text }}",
                      "reference": "{{ item.answer }}", "evaluation_metric": "fuzzy_match"},
        },
    }
    sample = reference_sample(multi["graders"]["answer"], ROWS[0])
    assert json.loads(sample.output_text) == {"result": {"letter": "a"}}
    report = check_grader(multi, ROWS)
    assert report.probes["reference: quiz.answer"].rewards == [1.0] * 4
    assert report.probes["reference: quiz.close"].rewards == [1.0] * 4
    assert not report.problems
    # random text is no JSON: the sub-grader reading output_json flags it, which is its job
    assert any("invalid_variable_error" in line for line in report.notes)


def test_the_command(tmp_path):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    good = subprocess.run([RFT, "graders", "check", "--grader", json.dumps(grader()), "--data",
                           str(tmp_path / "rows.jsonl"), "--json"], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["ok"] is True
    bad = subprocess.run([RFT, "graders", "check", "--grader", json.dumps(grader(reference="{{ item.answr }}")),
                          "--data", str(tmp_path / "rows.jsonl")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "problem" in bad.stdout and "no row has a reference" in bad.stdout
