"""Planted bugs in the flows (placeholder until the flows checks land; see issue 3)."""
