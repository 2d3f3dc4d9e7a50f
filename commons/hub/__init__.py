"""Model and dataset repositories: the core domain."""
