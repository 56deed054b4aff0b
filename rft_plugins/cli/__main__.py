"""``python -m rft_plugins.cli`` runs the ``rft`` command."""

from . import main

main()
