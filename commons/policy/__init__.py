"""Policy room (placeholder while building)."""
