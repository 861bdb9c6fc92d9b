"""pytest fixtures (filled in by its owner)."""
