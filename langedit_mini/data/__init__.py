"""Edit requests and where they come from: languages, loaders, schedules, corpora, downloads, caches.

languages   the six languages and their per-language tables (context prefixes, KL prompts, joiners)
datasets    EditRequest and the loaders of the pocket dataset, MzsRE and BMIKE-53 (with load reports)
schedules   which requests go into which batch, in which order (delta, mt, mono)
corpora     Wikipedia texts for a real LLM's preserved-key statistics (cached)
downloads   MzsRE for real-model runs, checksummed and cached
caches      the one root of every cache ($LANGEDIT_CACHE or ~/.cache/langedit_mini)
"""

from langedit_mini.data.datasets import EditRequest, LoadReport, load_bmike53, load_mzsre, load_pocket
from langedit_mini.data.schedules import Schedule, build_schedule

__all__ = ["EditRequest", "LoadReport", "load_bmike53", "load_mzsre", "load_pocket", "Schedule", "build_schedule"]
