"""OpenAI's grader image: the packages its python graders may import, and what to say when the
grader's interpreter lacks one.

The Graders guide lists them for ``image_tag`` ``2025-05-08``; the ``grader-image`` extra of
pyproject.toml installs the same packages (``pip install 'rft-plugins[grader-image]'`` into the
environment ``RFT_GRADER_PYTHON`` names). A grader that imports one of them where it is missing
fails on every sample; the hint turns Python's ``No module named 'skbio'`` into what to install.
"""

from __future__ import annotations

import re

#: the extra of rft-plugins that installs OpenAI's grader image
EXTRA = "grader-image"
#: OpenAI's image tag whose package list the extra follows
IMAGE_TAG = "2025-05-08"
#: top-level import name -> PyPI distribution, for every package of OpenAI's image
IMAGE_MODULES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "sympy": "sympy",
    "pandas": "pandas",
    "rapidfuzz": "rapidfuzz",
    "sklearn": "scikit-learn",
    "rouge_score": "rouge-score",
    "deepdiff": "deepdiff",
    "jsonschema": "jsonschema",
    "pydantic": "pydantic",
    "yaml": "pyyaml",
    "nltk": "nltk",
    "sqlparse": "sqlparse",
    "rdkit": "rdkit",
    "skbio": "scikit-bio",
    "ast_grep_py": "ast-grep-py",
}
#: NLTK corpora OpenAI's image carries (downloaded into ``<environment>/nltk_data``)
NLTK_CORPORA = ("punkt", "stopwords", "wordnet", "omw-1.4", "names")

_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


def missing_module(details: str) -> str | None:
    """The top-level module a traceback's last ``ModuleNotFoundError`` names, if any."""
    found = _MISSING_MODULE.findall(details)
    return found[-1].split(".")[0] if found else None


def missing_module_hint(module: str, interpreter: str) -> str:
    """One sentence saying where ``module`` comes from and how to give it to the grader."""
    distribution = IMAGE_MODULES.get(module)
    if distribution is None:
        return (
            f"{module} is not installed for the grader's Python ({interpreter}), and it is not part of OpenAI's "
            f"grader image either: install it there, or set RFT_GRADER_PYTHON to a Python that has it"
        )
    return (
        f"{module} (PyPI: {distribution}) is part of OpenAI's grader image ({IMAGE_TAG}) but not installed for the "
        f"grader's Python ({interpreter}): pip install 'rft-plugins[{EXTRA}]' into that environment, or set "
        f"RFT_GRADER_PYTHON to a Python that has it (docs/sandbox.md)"
    )
