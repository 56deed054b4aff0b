"""``rft_plugins.sft``: the supervised warm-up the demo and the benchmarks use stops where it says,
trains only on the answer, and saves a model that loads like any Hugging Face checkpoint."""

from __future__ import annotations

import pytest

from rft_plugins.data.demo import demo_rows
from rft_plugins.sft import CHECK_EVERY, _encode, exact_probability, supervised_finetune


def test_the_loss_sees_the_answer_and_the_end_of_turn_only(tiny_model_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    rows = demo_rows()[0][:2]
    _, mask, labels = _encode(tokenizer, rows, "answer")
    for row, row_labels, row_mask in zip(rows, labels, mask):
        kept = [token for token in row_labels.tolist() if token != -100]
        assert tokenizer.decode(kept) == row["answer"] + tokenizer.eos_token
        assert row_mask.sum() > len(kept)  # the prompt is read, not learnt


def test_fixed_steps_then_a_loadable_model(tiny_model_path, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = demo_rows()[0][:8]
    result = supervised_finetune(tiny_model_path, rows, tmp_path / "sft", max_steps=3, batch_size=4)
    assert result.steps == 3 and result.path == tmp_path / "sft"
    model = AutoModelForCausalLM.from_pretrained(result.path)
    tokenizer = AutoTokenizer.from_pretrained(result.path)
    assert exact_probability(model, tokenizer, rows) == pytest.approx(result.exact_probability, rel=1e-4)


def test_stop_at_ends_at_the_first_check_that_reaches_it(tiny_model_path, tmp_path):
    rows = demo_rows()[0][:8]
    result = supervised_finetune(tiny_model_path, rows, tmp_path / "sft", max_steps=50, batch_size=4, stop_at=0.0)
    assert result.steps == CHECK_EVERY


def test_the_demo_rebuilds_models_another_version_built(tmp_path):
    """An earlier demo's tiny model (another task and shape, no warm-up record) is not reused."""
    import json

    from rft_plugins.data.demo import DEMO_VERSION, MODEL_SHAPE, build_demo_models
    from rft_plugins.tiny_model import build_tiny_model

    build_tiny_model(tmp_path / "tiny-model", hidden_size=32)
    warm = build_demo_models(tmp_path)
    assert json.loads((tmp_path / "tiny-model" / "config.json").read_text())["hidden_size"] == MODEL_SHAPE["hidden_size"]
    assert json.loads((warm / "warmup.json").read_text())["version"] == DEMO_VERSION
