"""A first end-to-end check of the grader path through the public API."""

from rft_plugins import run_grader


def test_string_check_through_run_grader():
    grader = {
        "type": "string_check",
        "name": "capital",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.answer }}",
        "operation": "ilike",
    }
    response = run_grader(grader, "It is PARIS.", {"answer": "paris"})
    assert response["reward"] == 1.0
    assert response["metadata"]["name"] == "capital"
    assert response["metadata"]["errors"]["invalid_variable_error"] is False
