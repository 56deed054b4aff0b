"""``json_schema``: reward 1 when the output is JSON that validates against a JSON Schema.

The schema comes from the config (``schema``) or from the dataset row (``schema_field`` names an
item key), so one grader serves rows with different schemas. Output that is not JSON is a
``sample_parse_error``; a schema that is itself invalid is a config error (or, from the row,
``invalid_variable_error``). Config::

    {"type": "json_schema", "name": "format", "schema": {"type": "object", "required": ["answer"]}}
"""

from __future__ import annotations

from typing import Any

import jsonschema
from pydantic import Field

from rft_plugins import Grade, GraderConfigError, GradingError, Sample, hookimpl
from rft_plugins.graders.config import GraderConfig, parse_config


class JsonSchemaConfig(GraderConfig):
    json_schema: dict[str, Any] | None = Field(None, alias="schema")  # `schema` is a pydantic name
    schema_field: str | None = None


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


class JsonSchemaGrader:
    def __init__(self, config: dict[str, Any]):
        spec = parse_config(JsonSchemaConfig, config)
        if (spec.json_schema is None) == (spec.schema_field is None):
            raise GraderConfigError("schema", "give exactly one of schema and schema_field")
        self.schema_field = spec.schema_field
        try:
            self.validator = _validator(spec.json_schema) if spec.json_schema is not None else None
        except jsonschema.SchemaError as error:
            raise GraderConfigError("schema", f"not a valid JSON Schema: {error.message}") from error

    def grade(self, sample: Sample, item: dict[str, Any]) -> Grade:
        if sample.output_json is None and sample.output_text.strip() != "null":
            raise GradingError("sample_parse_error", "the output is not valid JSON")
        validator = self.validator
        if validator is None:
            schema = item.get(self.schema_field)
            if not isinstance(schema, dict):
                raise GradingError("invalid_variable_error", f"item.{self.schema_field} is not a JSON Schema object")
            try:
                validator = _validator(schema)
            except jsonschema.SchemaError as error:
                raise GradingError("invalid_variable_error", f"item.{self.schema_field}: {error.message}") from error
        problems = [error.message for error in validator.iter_errors(sample.output_json)]
        return Grade(reward=0.0 if problems else 1.0, scores={"violations": problems[:5]})


@hookimpl
def rft_register_graders(register):
    register("json_schema", JsonSchemaGrader)
