"""One name for the project: the pluggy marker, the entry-point group and the env-var prefix."""

import pluggy

PROJECT_NAME = "rft_plugins"
ENTRY_POINT_GROUP = PROJECT_NAME

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
