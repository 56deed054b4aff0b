"""Adapters that bring rft-plugins graders into other training stacks (TRL, Lightning)."""
