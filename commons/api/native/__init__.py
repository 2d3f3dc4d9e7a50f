"""The Commons-only API under `/api/commons/`: accounts, organisations, tokens, audit."""
