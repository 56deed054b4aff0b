"""rft-plugins grader plugin: ``code``, the program in the sample run against the item's tests
in rft-plugins' sandbox; reward = fraction of tests passed. See README.md for the config."""

from rft_plugins import hookimpl

from .grader import CodeGrader


@hookimpl
def rft_register_graders(register):
    register("code", CodeGrader)
