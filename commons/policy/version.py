"""The license engine's version, recorded in every verdict so that a later change can re-derive it.

Bump the minor version when a rule changes a verdict, the major version when the Decision shape
changes. The knowledge base has its own digest (`KnowledgeBase.digest`), recorded next to this.
"""

from __future__ import annotations

ENGINE_VERSION = "1.0.0"
