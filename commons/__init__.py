"""Commons: a self-hosted, community-governed hub and workbench for open LLMs."""

__version__ = "0.1.0"
