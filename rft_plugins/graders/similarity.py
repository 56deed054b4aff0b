"""Text similarity metrics in [0, 1], each computed by the library made for it.

One small function per metric family; ``similarity`` picks one by its OpenAI name. Tokenisation
follows each metric's reference implementation, so scores match what those libraries report:

- ``fuzzy_match``: characters, as given (no case folding). ``rapidfuzz.fuzz.ratio`` / 100, the
  normalised Indel similarity ``1 - indel_distance / (len(a) + len(b))``; symmetric, and it does not
  reward an answer for merely containing the reference among other words (``WRatio`` would).
- ``bleu``: ``sacrebleu.sentence_bleu`` / 100 with its sentence-level defaults: ``13a``
  tokenisation, case-sensitive, ``exp`` smoothing and effective n-gram order (a short sentence
  is not zeroed for lacking 4-grams).
- ``gleu``: ``nltk.translate.gleu_score.sentence_gleu`` (1- to 4-grams) over the same ``13a``
  tokens, case-sensitive.
- ``meteor``: ``nltk.translate.meteor_score.meteor_score`` over ``13a`` tokens; NLTK lowercases,
  matches exact words, Porter stems and WordNet synonyms (see ``graders.wordnet``; without
  WordNet, exact and stem matches only).
- ``rouge_1`` .. ``rouge_5``, ``rouge_l``: ``rouge_score`` F-measure (``rougeN``, ``rougeL``)
  with that library's tokenizer: lowercase runs of ``[a-z0-9]``, no stemming. Text with no such
  characters has no tokens.
- ``cosine``: cosine of sentence-transformers embeddings of the raw texts, negatives clipped to 0.

Input length: ``rouge_l`` (a longest-common-subsequence table), ``meteor`` (word alignment) and
``fuzzy_match`` (an edit distance) cost time and memory that grow with the product of the two
lengths: 1 MB each is minutes and gigabytes. ``max_input_chars`` gives the longest input each
metric accepts by default; the grader refuses longer ones before computing anything.

Rules for every metric: identical strings score 1.0 (so "Paris" vs "Paris" is 1 even under
``rouge_2``, which finds no bigrams in it); two blank strings score 1.0 and one blank string
against a non-blank one scores 0.0; results are clamped to [0, 1] (sacrebleu's 100.00000000000004).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, Callable

ROUGE_METRICS: dict[str, str] = {
    "rouge_1": "rouge1",
    "rouge_2": "rouge2",
    "rouge_3": "rouge3",
    "rouge_4": "rouge4",
    "rouge_5": "rouge5",
    "rouge_l": "rougeL",
}
METRICS: tuple[str, ...] = ("fuzzy_match", "bleu", "gleu", "meteor", "cosine", *ROUGE_METRICS)
#: metrics whose cost grows with the product of the two lengths, and the default cap for them
QUADRATIC_METRICS = frozenset({"rouge_l", "meteor", "fuzzy_match"})
QUADRATIC_MAX_INPUT_CHARS = 10_000
#: the default cap for the others (n-gram counts, embeddings): linear, but not free
LINEAR_MAX_INPUT_CHARS = 100_000


def max_input_chars(metric: str) -> int:
    """The longest text (and reference) ``metric`` compares by default, in characters: about a
    second and 100 MB at worst on one core."""
    return QUADRATIC_MAX_INPUT_CHARS if metric in QUADRATIC_METRICS else LINEAR_MAX_INPUT_CHARS

_meteor_lock = threading.Lock()  # NLTK's WordNet reader seeks in shared open files


@lru_cache(maxsize=1)
def _tokenizer_13a() -> Callable[[str], str]:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()


def tokens_13a(text: str) -> list[str]:
    """``mteval-v13a`` tokens (punctuation split off, case kept): BLEU's, shared by GLEU and METEOR."""
    return _tokenizer_13a()(text).split()


def fuzzy_match(text: str, reference: str) -> float:
    """rapidfuzz's normalised Indel similarity of the two strings."""
    from rapidfuzz import fuzz

    return fuzz.ratio(text, reference) / 100.0


def bleu(text: str, reference: str) -> float:
    """Sentence BLEU against one reference, smoothed for single sentences."""
    import sacrebleu

    return sacrebleu.sentence_bleu(text, [reference]).score / 100.0


def gleu(text: str, reference: str) -> float:
    """Google-BLEU: the smaller of n-gram precision and recall, so it is symmetric."""
    from nltk.translate.gleu_score import sentence_gleu

    return float(sentence_gleu([tokens_13a(reference)], tokens_13a(text)))


def meteor(text: str, reference: str, wordnet: Any = None) -> float:
    """METEOR with synonyms from ``wordnet`` (a NLTK WordNet reader), or without when None."""
    from nltk.translate.meteor_score import meteor_score

    hypothesis, references = tokens_13a(text), [tokens_13a(reference)]
    if wordnet is None:
        return float(meteor_score(references, hypothesis, wordnet=NO_SYNONYMS))
    with _meteor_lock:
        return float(meteor_score(references, hypothesis, wordnet=wordnet))


class _NoSynonyms:
    """Stands in for WordNet when there is none: every word is its own only synonym."""

    @staticmethod
    def synsets(word: str, *args: Any, **kwargs: Any) -> list:
        return []


NO_SYNONYMS = _NoSynonyms()


@lru_cache(maxsize=None)
def _rouge_scorer(variant: str) -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer([variant], use_stemmer=False)


def rouge(text: str, reference: str, metric: str = "rouge_1") -> float:
    """ROUGE-N or ROUGE-L F-measure, as the ``rouge-score`` package computes it."""
    variant = ROUGE_METRICS[metric]
    return float(_rouge_scorer(variant).score(reference, text)[variant].fmeasure)


def cosine(text: str, reference: str, model_path: str) -> float:
    """Cosine similarity of sentence embeddings (model loaded once per path), clipped at 0."""
    from .embeddings import load_model

    return max(0.0, load_model(model_path).cosine(text, reference))


def similarity(metric: str, text: str, reference: str, *, wordnet: Any = None, model_path: str | None = None) -> float:
    """``metric``'s similarity of ``text`` to ``reference``, in [0, 1] (see the module rules)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if text == reference:
        return 1.0
    if not text.strip() or not reference.strip():
        return 1.0 if not text.strip() and not reference.strip() else 0.0
    if metric == "fuzzy_match":
        value = fuzzy_match(text, reference)
    elif metric == "bleu":
        value = bleu(text, reference)
    elif metric == "gleu":
        value = gleu(text, reference)
    elif metric == "meteor":
        value = meteor(text, reference, wordnet)
    elif metric == "cosine":
        if model_path is None:
            raise ValueError("cosine similarity needs a model path")
        value = cosine(text, reference, model_path)
    else:
        value = rouge(text, reference, metric)
    return min(1.0, max(0.0, value))
