"""Fails at import time, the way a plugin with a missing dependency does."""

import a_dependency_that_is_not_installed  # noqa: F401
