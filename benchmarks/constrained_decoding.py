"""Grammar engines for ``response_format`` compared: schema coverage and cost per generation step.

    python benchmarks/constrained_decoding.py                 # every engine installed, the default sizes
    python benchmarks/constrained_decoding.py --engines xgrammar --rows 8 --new-tokens 16 --json

Engines: xgrammar (the one ``rft train`` uses, ``rft_plugins.sampling.structured``),
lm-format-enforcer and outlines (outlines-core backend), each through its Hugging Face
``generate`` integration; an engine that is not installed is reported as such. The model is a
random-init tiny Qwen2 with a byte-level BPE trained on the spot (``--vocab-size``, 32k by default,
as real tokenizers have: the vocabulary is what grammar engines pay for), on the CPU.

Coverage: each schema in ``SCHEMAS`` (the features OpenAI's structured outputs support) is compiled,
sampled ``--samples`` times at temperature 1, and every finished sample validated with jsonschema.
Speed: ``--rows`` sequences x ``--new-tokens`` tokens under one schema, the time per generation step
against unconstrained generation, plus the one-off compile time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_step import prepare_model  # noqa: E402  (the tiny model and BPE tokenizer, built once)

ENGINES = ("xgrammar", "lm-format-enforcer", "outlines")
ANSWER = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]},
                                            "score": {"type": "number"}},
          "required": ["answer", "score"], "additionalProperties": False}
#: one schema per feature of OpenAI's structured-outputs subset
SCHEMAS: dict[str, dict[str, Any]] = {
    "enum + number": ANSWER,
    "nested object": {"type": "object", "properties": {"user": ANSWER}, "required": ["user"],
                      "additionalProperties": False},
    "array, min/max items": {"type": "object", "properties": {"tags": {
        "type": "array", "items": {"type": "string", "maxLength": 5}, "minItems": 1, "maxItems": 3}},
        "required": ["tags"], "additionalProperties": False},
    "anyOf": {"type": "object", "properties": {"value": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}},
              "required": ["value"], "additionalProperties": False},
    "nullable": {"type": "object", "properties": {"note": {"type": ["string", "null"]}}, "required": ["note"],
                 "additionalProperties": False},
    "$defs and $ref": {"type": "object", "properties": {"a": {"$ref": "#/$defs/item"}, "b": {"$ref": "#/$defs/item"}},
                       "required": ["a", "b"], "additionalProperties": False,
                       "$defs": {"item": {"type": "object", "properties": {"id": {"type": "integer"}},
                                          "required": ["id"], "additionalProperties": False}}},
    "recursive $ref": {"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 4}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"},
                                                                 "maxItems": 1}},
        "required": ["name", "children"], "additionalProperties": False}}},
    "pattern": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}},
                "required": ["code"], "additionalProperties": False},
    "format date": {"type": "object", "properties": {"day": {"type": "string", "format": "date"}},
                    "required": ["day"], "additionalProperties": False},
    "integer bounds": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}},
                       "required": ["n"], "additionalProperties": False},
    "const": {"type": "object", "properties": {"kind": {"const": "answer"}}, "required": ["kind"],
              "additionalProperties": False},
}


def processor_factory(engine: str, model: Any, tokenizer: Any, eos: list[int]) -> Callable[[dict, int], dict]:
    """For ``engine``, a function ``(schema, rows) -> generate() keyword arguments`` that constrain it."""
    if engine == "xgrammar":
        from transformers import LogitsProcessorList

        from rft_plugins.sampling.structured import StructuredDecoding

        decoding = StructuredDecoding(tokenizer, model.config.vocab_size, eos)
        response = lambda schema: {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}  # noqa: E731
        return lambda schema, rows: {"logits_processor": LogitsProcessorList(
            [decoding.constraint(response(schema), rows)])}
    if engine == "lm-format-enforcer":
        from lmformatenforcer import JsonSchemaParser
        from lmformatenforcer.integrations.transformers import (
            build_token_enforcer_tokenizer_data,
            build_transformers_prefix_allowed_tokens_fn,
        )

        data = build_token_enforcer_tokenizer_data(tokenizer)
        return lambda schema, rows: {"prefix_allowed_tokens_fn": build_transformers_prefix_allowed_tokens_fn(
            data, JsonSchemaParser(schema))}
    import outlines
    from outlines.backends import get_json_schema_logits_processor
    from transformers import LogitsProcessorList

    wrapped = outlines.from_transformers(model, tokenizer)
    return lambda schema, rows: {"logits_processor": LogitsProcessorList(
        [get_json_schema_logits_processor("outlines_core", wrapped, json.dumps(schema))])}


def generate(model: Any, tokenizer: Any, prompt: list[int], rows: int, new_tokens: int, extra: dict) -> list[str]:
    """``rows`` samples of ``prompt`` (each row a copy, so per-row processors see their own rows)."""
    import torch

    ids = torch.tensor([prompt] * rows)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0,
                         max_new_tokens=new_tokens, pad_token_id=tokenizer.pad_token_id, **extra)
    return tokenizer.batch_decode(out[:, len(prompt):], skip_special_tokens=True)


def coverage(make: Callable, model: Any, tokenizer: Any, prompt: list[int], samples: int, new_tokens: int) -> dict:
    """Per schema: compiled or the error; how many finished samples validate."""
    import jsonschema

    report = {}
    for name, schema in SCHEMAS.items():
        try:
            texts = generate(model, tokenizer, prompt, samples, new_tokens, make(schema, samples))
        except Exception as error:  # an unsupported feature: each engine raises its own way
            report[name] = {"supported": False, "error": f"{type(error).__name__}: {str(error)[:160]}"}
            continue
        parsed = []
        for text in texts:
            try:
                parsed.append(json.loads(text))
            except json.JSONDecodeError:
                continue
        valid = sum(jsonschema.Draft202012Validator(schema).is_valid(value) for value in parsed)
        report[name] = {"supported": True, "finished": len(parsed), "valid": valid, "example": texts[0][:80]}
    return report


def step_time(model: Any, tokenizer: Any, prompt: list[int], rows: int, new_tokens: int, extra: dict) -> float:
    """Seconds per generated token step (all rows), forced to run every step (no EOS)."""
    started = time.perf_counter()
    generate(model, tokenizer, prompt, rows, new_tokens, extra)
    return (time.perf_counter() - started) / new_tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--vocab-size", type=int, default=32000, help="the BPE's vocabulary (default 32000)")
    parser.add_argument("--rows", type=int, default=64, help="sequences per generate call in the speed test")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens per sequence in the speed test")
    parser.add_argument("--samples", type=int, default=4, help="samples per schema in the coverage test")
    parser.add_argument("--repeats", type=int, default=3, help="speed measurements per engine (median)")
    parser.add_argument("--workdir", type=Path, help="keeps the tokenizer and model (default: temporary)")
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    args = parser.parse_args(argv)

    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="rft-constrained-") as temporary:
        folder, _ = prepare_model(args.workdir or Path(temporary), "tiny", args.vocab_size, "cpu")
        model, tokenizer = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Answer in JSON."}], add_generation_prompt=True,
                                           tokenize=True, return_dict=False)
    eos = [tokenizer.eos_token_id]
    free = statistics.median(step_time(model, tokenizer, prompt, args.rows, args.new_tokens, {})
                             for _ in range(args.repeats))
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "vocab_size": len(tokenizer), "rows": args.rows,
                              "new_tokens": args.new_tokens, "unconstrained_step_ms": free * 1000, "engines": {}}
    for engine in args.engines:
        module = {"lm-format-enforcer": "lmformatenforcer"}.get(engine, engine)
        if importlib.util.find_spec(module) is None:
            report["engines"][engine] = {"installed": False}
            continue
        started = time.perf_counter()
        try:
            make = processor_factory(engine, model, tokenizer, eos)
            make(ANSWER, 1)  # tokenizer preprocessing and the first compile
        except Exception as error:  # an integration that does not work with this transformers
            report["engines"][engine] = {"installed": True, "error": f"{type(error).__name__}: {error}"[:300]}
            continue
        setup = time.perf_counter() - started
        with torch.no_grad():
            steps = [step_time(model, tokenizer, prompt, args.rows, args.new_tokens, make(ANSWER, args.rows))
                     for _ in range(args.repeats)]
            covered = coverage(make, model, tokenizer, prompt, args.samples, 96)
        step = statistics.median(steps)
        report["engines"][engine] = {
            "installed": True, "setup_s": setup, "step_ms": step * 1000, "overhead_ms": (step - free) * 1000,
            "schemas_supported": sum(entry["supported"] for entry in covered.values()),
            "samples_valid": sum(entry.get("valid", 0) for entry in covered.values()),
            "samples_finished": sum(entry.get("finished", 0) for entry in covered.values()),
            "coverage": covered,
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"tiny Qwen2 on the CPU, {report['vocab_size']} tokens, {args.rows} rows x {args.new_tokens} new tokens; "
          f"unconstrained step {free * 1000:.1f} ms")
    print(f"{'engine':<20} {'setup (s)':>9} {'step (ms)':>9} {'overhead':>9} {'schemas':>8} {'valid/finished':>15}")
    for engine, entry in report["engines"].items():
        if not entry["installed"] or "error" in entry:
            print(f"{engine:<20} {entry.get('error', 'not installed')}")
            continue
        print(f"{engine:<20} {entry['setup_s']:>9.2f} {entry['step_ms']:>9.1f} {entry['overhead_ms']:>9.1f} "
              f"{entry['schemas_supported']:>5}/{len(SCHEMAS):<2} {entry['samples_valid']:>7}/{entry['samples_finished']:<7}")
        for name, result in entry["coverage"].items():
            if not result["supported"]:
                print(f"    {name}: {result['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
