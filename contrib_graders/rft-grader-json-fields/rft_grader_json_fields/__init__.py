"""rft-plugins grader plugin: ``json_fields``, structured output compared with the reference
field by field, with partial credit and a comparator per field. See README.md for the config."""

from rft_plugins import hookimpl

from .grader import JsonFieldsGrader


@hookimpl
def rft_register_graders(register):
    register("json_fields", JsonFieldsGrader)
