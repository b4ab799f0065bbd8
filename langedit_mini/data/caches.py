"""Where the package keeps what it can recompute or re-download: one root for every cache.

``~/.cache/langedit_mini/<kind>`` by default, or ``$LANGEDIT_CACHE/<kind>`` when that variable is
set (CI points it at an empty folder so that no result of an earlier run is reused). Kinds:
``stats`` (the preserved-key second moments ``C0``), ``corpora`` (Wikipedia texts), ``mzsre`` (the
checksummed MzsRE files), ``general`` (the general-ability task items) and ``weights`` (real LLMs'
GGUF files assembled from their packages, and their dequantised weights as safetensors).
"""

from __future__ import annotations

import os
from pathlib import Path

KINDS = ("stats", "corpora", "mzsre", "general", "weights")


def cache_root() -> Path:
    root = os.environ.get("LANGEDIT_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "langedit_mini"


def cache_folder(kind: str) -> Path:
    """The folder of one kind of cache (not created here: the code that writes creates it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}; known: {', '.join(KINDS)}")
    return cache_root() / kind
