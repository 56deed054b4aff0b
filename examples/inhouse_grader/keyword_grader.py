"""An in-house grader plugin, used without packaging through ``RFT_PLUGINS``.

    RFT_PLUGINS=keyword_grader PYTHONPATH=examples/inhouse_grader \\
        rft graders run examples/inhouse_grader/grader.json --sample "refund approved" \\
        --item '{"required": ["refund", "approved"]}'

To ship it to colleagues instead, give it a pyproject.toml with
``[project.entry-points.rft_plugins] keywords = "keyword_grader"`` and ``pip install`` it.
"""

from __future__ import annotations

from typing import Any

from rft_plugins import Grade, hookimpl
from rft_plugins.graders.config import GraderConfig, parse_config


class KeywordConfig(GraderConfig):
    field: str = "required"  # the item key listing the words to look for
    case_sensitive: bool = False


class KeywordGrader:
    """Reward: the fraction of the row's required keywords that the answer mentions."""

    def __init__(self, config: dict[str, Any]):
        self.spec = parse_config(KeywordConfig, config)

    def grade(self, sample, item: dict[str, Any]) -> Grade | None:
        required = item.get(self.spec.field) or []
        if not required:
            return None  # not applicable: excluded from reward means
        text = sample.output_text if self.spec.case_sensitive else sample.output_text.lower()
        found = [word for word in required if (word if self.spec.case_sensitive else word.lower()) in text]
        return Grade(reward=len(found) / len(required), scores={"found": found})


@hookimpl
def rft_register_graders(register):
    register("keywords", KeywordGrader)
