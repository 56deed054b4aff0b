"""Judges for ``score_model`` / ``label_model`` graders, and the HTTP plumbing they share.

A judge backend (``openai``: any OpenAI-compatible chat-completions server; ``transformers``: a
local Hugging Face causal LM) turns rendered chat messages into one reply. Backends are plugins,
registered through ``rft_register_judge_backends`` like any third-party one.
"""
