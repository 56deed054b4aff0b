"""A grader plugin as a third party would write it: reward for hitting a target length."""

from rft_plugins import Grade, GraderConfigError, hookimpl


class LengthMatchGrader:
    """Reward 1 at ``target`` characters, falling linearly to 0 at twice the distance."""

    def __init__(self, config):
        self.target = config.get("target")
        if not isinstance(self.target, int) or self.target <= 0:
            raise GraderConfigError("target", "must be a positive integer")

    def grade(self, sample, item):
        distance = abs(len(sample.output_text) - self.target)
        return Grade(reward=max(0.0, 1.0 - distance / self.target), scores={"length": len(sample.output_text)})


@hookimpl
def rft_register_graders(register):
    register("length_match", LengthMatchGrader)
