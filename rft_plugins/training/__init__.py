"""The ``rft train`` loop: job spec, Lightning module, losses, checkpoints and run outputs."""
