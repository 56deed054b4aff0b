"""rft-plugins: OpenAI-style reinforcement fine-tuning of local models, built from pluggy plugins."""

from .errors import GraderConfigError, GradingError, PluginConflictError, PluginLoadError, RFTError
from .graders.build import build_grader, validate_grader
from .graders.run import run_grader
from .graders.runner import LoadedGrader
from .graders.types import ERROR_FLAGS, Grade, Sample
from .plugins import get_plugin_manager
from .project import hookimpl

__version__ = "0.1.0"

__all__ = [
    "ERROR_FLAGS",
    "Grade",
    "GraderConfigError",
    "GradingError",
    "LoadedGrader",
    "PluginConflictError",
    "PluginLoadError",
    "RFTError",
    "Sample",
    "build_grader",
    "get_plugin_manager",
    "hookimpl",
    "run_grader",
    "validate_grader",
]
