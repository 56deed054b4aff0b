"""Graders, a job and rows from OpenAI's published material, as the tests run them.

Each constant names where it comes from. JSON structure, field values and templates are OpenAI's;
the long grading prompt of the RFT guide's ``explanation`` grader is abridged in our own words
(its instruction to answer with a bare number, which matters to the judge, and its template lines
are kept as published).
"""

from __future__ import annotations

GRADERS_GUIDE = "https://developers.openai.com/api/docs/guides/graders"
RFT_GUIDE = "https://developers.openai.com/api/docs/guides/reinforcement-fine-tuning"
SDK = "https://github.com/openai/openai-python/tree/main/src/openai/types"

# GRADERS_GUIDE, "Python graders": the grader object shown first (no name, an image_tag)
MINIMAL_PYTHON = {"type": "python", "source": "def grade(sample, item):\n    return 1.0", "image_tag": "2025-05-08"}

# GRADERS_GUIDE, "Python graders", the working example: its source, grader, item and model_sample
FUZZY_SOURCE = """
from rapidfuzz import fuzz, utils

def grade(sample, item) -> float:
    output_text = sample["output_text"]
    reference_answer = item["reference_answer"]
    return fuzz.WRatio(output_text, reference_answer, processor=utils.default_process) / 100.0
"""
FUZZY_PYTHON = {"type": "python", "source": FUZZY_SOURCE}
FUZZY_ITEM = {"reference_answer": "fuzzy wuzzy had no hair"}
FUZZY_SAMPLE = "fuzzy wuzzy was a bear"

# GRADERS_GUIDE, "Combined graders": a name compared loosely, an email exactly
NAME_AND_EMAIL = {
    "type": "multi",
    "graders": {
        "name": {
            "name": "name_grader",
            "type": "text_similarity",
            "input": "{{sample.output_json.name}}",
            "reference": "{{item.name}}",
            "evaluation_metric": "fuzzy_match",
            "pass_threshold": 0.9,
        },
        "email": {
            "name": "email_grader",
            "type": "string_check",
            "input": "{{sample.output_json.email}}",
            "reference": "{{item.email}}",
            "operation": "eq",
        },
    },
    "calculate_output": "(name + email) / 2",
}
NAME_AND_EMAIL_ITEM = {"name": "John Doe", "email": "john.doe@gmail.com"}

# GRADERS_GUIDE, "Details on grading tool calls": the function's name and its arguments
TOOL_CALL_GRADER = {
    "type": "multi",
    "graders": {
        "function_name": {
            "name": "function_name",
            "type": "string_check",
            "input": "get_acceptors",
            "reference": "{{sample.output_tools[0].function.name}}",
            "operation": "eq",
        },
        "arguments": {
            "name": "arguments",
            "type": "string_check",
            "input": "{\"smiles\": \"{{item.smiles}}\"}",
            "reference": "{{sample.output_tools[0].function.arguments}}",
            "operation": "eq",
        },
    },
    "calculate_output": "0.5 * function_name + 0.5 * arguments",
}

# GRADERS_GUIDE, "Score model graders": the runnable code sample's grader, item and model_sample
MY_SCORE_MODEL = {
    "type": "score_model",
    "name": "my_score_model",
    "input": [
        {
            "role": "system",
            "content": "You are an expert grader. If the reference and model answer are exact matches, output a score "
            "of 1. If they are somewhat similar in meaning, output a score in 0.5. Otherwise, give a score of 0.",
        },
        {"role": "user", "content": "Reference: {{ item.reference_answer }}. Model answer: {{ sample.output_text }}"},
    ],
    "pass_threshold": 0.5,
    "model": "o4-mini-2025-04-16",
    "range": [0, 1],
    "sampling_params": {"max_completions_tokens": 32768, "top_p": 1, "reasoning_effort": "medium"},
}
MY_SCORE_MODEL_ITEM = {"reference_answer": 1.0}
MY_SCORE_MODEL_SAMPLE = "0.9"

# RFT_GUIDE, "Create a job with the API": the complete request's method (grader, response_format,
# hyperparameters); the explanation grader's prompt abridged (see the module docstring)
EXPLANATION_PROMPT = (
    "# Overview\n\nRate how well the model's answer agrees with the security policy and the reference answer.\n\n"
    "Always respond with a single floating point number 0 through 1,\nusing the grading criteria below.\n\n"
    "(criteria, the policy and graded examples: abridged)\n\n"
    "Reference Answer: {{item.explanation}}\nModel Answer: {{sample.output_json.explanation}}\n"
)
RFT_GUIDE_GRADER = {
    "type": "multi",
    "graders": {
        "explanation": {
            "name": "Explanation text grader",
            "type": "score_model",
            "input": [{"role": "user", "type": "message", "content": EXPLANATION_PROMPT}],
            "model": "gpt-4o-2024-08-06",
        },
        "compliant": {
            "name": "compliant",
            "type": "string_check",
            "reference": "{{item.compliant}}",
            "operation": "eq",
            "input": "{{sample.output_json.compliant}}",
        },
    },
    "calculate_output": "0.5 * compliant + 0.5 * explanation",
}
RFT_GUIDE_RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "security_assistant",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"compliant": {"type": "string"}, "explanation": {"type": "string"}},
            "required": ["compliant", "explanation"],
            "additionalProperties": False,
        },
    },
}
RFT_GUIDE_JOB = {
    "training_file": "file-2STiufDaGXWCnT6XUBUEHW",
    "validation_file": "file-4TcgH85ej7dFCjZ1kThCYb",
    "model": "o4-mini-2025-04-16",
    "method": {
        "type": "reinforcement",
        "reinforcement": {
            "grader": RFT_GUIDE_GRADER,
            "response_format": RFT_GUIDE_RESPONSE_FORMAT,
            "hyperparameters": {"reasoning_effort": "medium"},
        },
    },
}
# RFT_GUIDE, the dataset's example row (the other rows are ours, in its shape)
RFT_GUIDE_ROWS = [
    {"messages": [{"role": "user", "content": "Do you have a dedicated security team?"}], "compliant": "yes",
     "explanation": "A dedicated security team follows strict protocols for handling incidents."},
    {"messages": [{"role": "user", "content": "Is customer data used to train models?"}], "compliant": "no",
     "explanation": "Conversations and other customer data are never used for model training."},
]
