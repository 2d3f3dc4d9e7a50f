"""Users, tokens and who may do what."""
