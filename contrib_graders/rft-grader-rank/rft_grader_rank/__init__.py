"""rft-plugins grader plugin: ``rank``, reward by the position of the correct answer(s) in a
ranked list (numbered, bulleted, comma-separated or JSON). See README.md for the config."""

from rft_plugins import hookimpl

from .grader import RankGrader


@hookimpl
def rft_register_graders(register):
    register("rank", RankGrader)
