"""The ``rft train`` loop: job spec, Lightning module, losses, checkpoints and run outputs.

Needs the training stack (``pip install 'rft-plugins[train]'``); without it, importing any part
of this package is one ``MissingExtraError`` line that says so.
"""

from ..extras import require_extra

require_extra("train", "rft train (rft_plugins.training)")
