"""Models and datasets named by a Hugging Face Hub id (``Qwen/Qwen2.5-0.5B-Instruct``), found in
the local Hugging Face cache first, downloaded only when the hub may be reached.

A job names a model or a dataset by a local path or a hub id; a hub id becomes the local snapshot
folder of the cache (``models--org--name/snapshots/<commit>/``), so everything downstream
(the checks before a run, ``from_pretrained``, ``datasets``) reads a folder. With
``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set, a hub id that is not in the cache is one
error line saying so, and nothing reaches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import RFTError

#: what ``huggingface_hub`` reads as true in its environment variables
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
#: the files ``from_pretrained`` needs of a model repository (not its ONNX, GGUF or original weights)
MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja", "tokenizer*"]
#: old checkpoints without safetensors
LEGACY_WEIGHTS = ["pytorch_model*.bin"]


class HubError(RFTError):
    """A hub id that cannot be resolved: not in the cache while offline, or the hub refused it."""


def hub_offline() -> bool:
    """Whether the hub must not be reached (read now, not when ``huggingface_hub`` was imported)."""
    return any(os.environ.get(name, "").upper() in TRUE_VALUES for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cache_dir() -> str | None:
    """The hub cache as the environment names it now (``HF_HUB_CACHE``, else ``HF_HOME/hub``);
    None for ``huggingface_hub``'s default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None


def is_repo_id(text: str) -> bool:
    """Whether ``text`` can only be a hub id, not a path: ``name`` or ``org/name`` by the hub's
    rules, not starting with ``.``, ``/`` or ``~``."""
    if not text or text[0] in "./~" or "\\" in text:
        return False
    try:
        from huggingface_hub.utils import HFValidationError, validate_repo_id
    except ImportError:  # the light install: no hub client, so no hub ids
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def _where() -> str:
    from huggingface_hub import constants

    return cache_dir() or constants.HF_HUB_CACHE


def cached_snapshot(repo_id: str, repo_type: str = "model", revision: str | None = None) -> Path | None:
    """The snapshot folder of ``repo_id`` at ``revision`` (default ``main``) in the local cache, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, repo_type=repo_type, revision=revision, cache_dir=cache_dir(),
                                   local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError):
        return None
    return Path(folder)


def _not_cached(repo_id: str, kind: str, revision: str | None) -> HubError:
    what = f"{repo_id}@{revision}" if revision else repo_id
    fetch = f"hf download {repo_id}" + (" --repo-type dataset" if kind == "dataset" else "")
    local = "file" if kind == "dataset" else "folder"
    return HubError(
        f"{what} does not exist as a local {local} and is not a {kind} in the local Hugging Face cache ({_where()}); "
        f"HF_HUB_OFFLINE is set, so nothing is downloaded: fetch it first ({fetch}) or name a local {local}"
    )


def model_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """The local folder of the model ``repo_id``: the cached snapshot, else (online) a download of
    the files ``from_pretrained`` needs. ``HubError`` when offline and not cached, or refused."""
    cached = cached_snapshot(repo_id, "model", revision)
    if cached is not None:
        return cached
    if hub_offline():
        raise _not_cached(repo_id, "model", revision)
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir(), allow_patterns=MODEL_FILES))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir(),
                                            allow_patterns=MODEL_FILES + LEGACY_WEIGHTS))
    except Exception as error:  # the hub's refusals and network failures alike: one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubError(f"{repo_id} could not be fetched from the Hugging Face Hub: {first}") from error
    return folder


def dataset_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of the dataset ``repo_id``; None when the hub may be reached and
    ``datasets`` should fetch it. ``HubError`` when offline and not cached."""
    cached = cached_snapshot(repo_id, "dataset", revision)
    if cached is None and hub_offline():
        raise _not_cached(repo_id, "dataset", revision)
    return cached


def push_folder(folder: Path, repo_id: str, private: bool | None = None) -> str:
    """Upload ``folder`` (a model with its card) to the hub repository ``repo_id``, created if
    needed; returns the repository's URL. ``HubError`` when offline or refused."""
    if hub_offline():
        raise HubError(f"cannot upload {folder} to {repo_id}: HF_HUB_OFFLINE is set")
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=url.repo_id, folder_path=str(folder), commit_message="rft train: the final model")
    except Exception as error:  # the hub's refusals (no token, no rights) and network failures alike: one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubError(f"uploading {folder} to {repo_id} failed: {first}") from error
    return str(url)
