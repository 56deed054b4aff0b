"""The rank grader through rft-plugins (the built-ins and this plugin, via the pytest plugin)."""

import pytest

import rft_grader_rank
from rft_plugins import GraderConfigError, validate_grader
from rft_plugins.testing import grade_samples

GENE = {"type": "rank", "name": "gene", "reference": "{{ item.gene }}"}


@pytest.fixture(autouse=True)
def plugin(rft_plugin_manager):
    return rft_plugin_manager(rft_grader_rank)


def grade(output, item=None, **config):
    [response] = grade_samples({**GENE, **config}, [output], item if item is not None else {"gene": "BRCA1"})
    return response


@pytest.mark.parametrize(
    ("output", "reward"),
    [
        ("1. TP53\n2. BRCA1\n3. EGFR", 0.5),
        ("Here is my ranking:\n1) BRCA1 - DNA repair\n2) TP53: tumour suppressor\nHope this helps.", 1.0),
        ("- **TP53** (p53)\n- `EGFR`\n- *BRCA1* - likely", pytest.approx(1 / 3)),
        ("Answer: TP53, EGFR, KRAS, BRCA1.", 0.25),
        ("TP53 > BRCA1 > EGFR", 0.5),
        ('["TP53", "BRCA1"]', 0.5),
        ('{"genes": ["BRCA1", "TP53"]}', 1.0),
        ("BRCA1", 1.0),
        ("TP53\nEGFR\nBRCA1", pytest.approx(1 / 3)),
    ],
)
def test_numbered_bulleted_comma_and_json_lists(output, reward):
    assert grade(output)["reward"] == reward


def test_a_repeated_entry_takes_no_second_place():
    response = grade("1. TP53\n2. TP53\n3. tp53\n4. BRCA1")
    assert response["reward"] == 0.5
    assert response["metadata"]["scores"]["repeats"] == 2 and response["metadata"]["scores"]["ranks"] == [2]


def test_a_missing_answer_scores_zero_without_an_error():
    response = grade("1. TP53\n2. EGFR")
    assert response["reward"] == 0.0 and response["metadata"]["scores"]["ranks"] == [None]
    assert not response["metadata"]["errors"]["sample_parse_error"]


@pytest.mark.parametrize(
    "output",
    ["", "   \n ", "I am not able to determine which gene is responsible from the information given here.",
     '[{"gene": "BRCA1"}]', "1. **\n2. ``"],
)
def test_an_unparseable_list_is_a_sample_parse_error(output):
    response = grade(output)
    assert response["reward"] == 0.0 and response["metadata"]["errors"]["sample_parse_error"]


@pytest.mark.parametrize(
    ("curve", "k", "rewards"),
    [("reciprocal", None, [1.0, 0.5, 1 / 3, 0.25, 0.2]), ("top_k", 3, [1.0, 1.0, 1.0, 0.0, 0.0]),
     ("linear", 4, [1.0, 0.75, 0.5, 0.25, 0.0])],
)
def test_curves(curve, k, rewards):
    others = ["A1", "B2", "C3", "D4"]
    outputs = [", ".join(others[:rank] + ["BRCA1"] + others[rank:]) for rank in range(5)]
    config = {**GENE, "curve": curve, **({"k": k} if k else {})}
    got = [response["reward"] for response in grade_samples(config, outputs, {"gene": "BRCA1"})]
    assert got == pytest.approx(rewards)


def test_several_answers_all_against_the_ideal_list_or_any():
    item = {"gene": ["BRCA1", "TP53"]}
    assert grade("TP53, BRCA1, EGFR", item)["reward"] == 1.0
    assert grade("BRCA1, EGFR, TP53", item)["reward"] == pytest.approx((1 + 1 / 3) / 1.5)
    assert grade("BRCA1, EGFR, TP53", item, multiple_answers="any")["reward"] == 1.0
    assert grade("EGFR, TP53", item, multiple_answers="any")["reward"] == 0.5


def test_one_entry_counts_for_one_answer_only():
    response = grade("1. BRCA1", {"gene": ["BRCA1", "brca1"]})
    assert response["metadata"]["scores"]["ranks"] == [1, None] and response["reward"] == pytest.approx(1 / 1.5)


def test_aliases_contains_and_fuzzy_matching():
    assert grade("1. Breast cancer 1", {"gene": [["BRCA1", "breast cancer 1"]]})["reward"] == 1.0
    sentence = "1. The gene BRCA1, which repairs DNA"
    assert grade(sentence)["reward"] == 0.0
    assert grade(sentence, match="contains")["reward"] == 1.0
    assert grade("1. The gene BRCA12 is likely", match="contains")["reward"] == 0.0  # whole words only
    assert grade("1. BRCA-1", match="fuzzy")["reward"] == 1.0
    assert grade("1. BRCA-1", match="fuzzy", fuzzy_threshold=0.95)["reward"] == 0.0


def test_entries_past_max_items_do_not_count():
    assert grade("A, B, C, BRCA1", max_items=3)["reward"] == 0.0
    assert grade("A, B, C, BRCA1", max_items=4)["reward"] == 0.25


def test_a_reference_that_is_not_answers_flags_the_row():
    response = grade("BRCA1", {"gene": [{"symbol": "BRCA1"}]})
    assert response["reward"] == 0.0 and response["metadata"]["errors"]["invalid_variable_error"]
    assert grade("BRCA1", {"gene": []})["metadata"]["errors"]["invalid_variable_error"]


@pytest.mark.parametrize(("change", "field"), [({"curve": "top_k"}, "k"), ({"curve": "log"}, "curve"),
                                               ({"k": 0, "curve": "linear"}, "k"), ({"match": "regex"}, "match")])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(GraderConfigError) as error:
        validate_grader({**GENE, **change})
    assert error.value.field == field
