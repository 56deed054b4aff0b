"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from a hub, ever
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread per process: tests start subprocesses (DDP ranks, `rft` runs) beside this one,
# and two threads each on the 2-core CI machine stall every op (benchmarks/vs_trl.py measured
# 10-100x). Set before torch is first imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Each test loads plugins afresh, so registrations made in one test never leak into another."""
    from rft_plugins import plugins

    plugins.reset_for_tests()
    yield plugins
    plugins.reset_for_tests()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A random-init causal LM with a character tokenizer, saved like any HF checkpoint."""
    from rft_plugins.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
