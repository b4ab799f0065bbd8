"""Which layers to edit and which null-space cut to use on a new model: the two questions after the
hyperparameters.

``layer_and_cut_guide(model, tokenizer, facts, texts)`` answers both from measurements on the model:

* **layers**: causal tracing of a few facts the model knows (``model.tracing.causal_trace``): per
  layer, the indirect effect of the MLP output at the subject's last token (ROME's signature: the
  layers where restoring it brings the answer back are where locate-then-edit methods write), and
  ``suggest_band`` picks the contiguous band of ``size`` layers with the largest summed effect;
* **cut**: per candidate layer, the spectrum of the preserved-key covariance ``C0`` at several cuts
  (fractions of trace(C0) discarded, and absolute ``tau`` values): the null-space dimension, the
  share of trace(C0) the cut discards (the mean share of a preserved key's energy an update may
  touch: chapter 1's leftover identity), and the implied capacity: how many edits of distinct keys
  fit before the exact form runs out of null space (one dimension per edit key).
"""

from __future__ import annotations

import pandas as pd

from langedit_mini.model.architecture import detect_architecture, num_layers
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.model.tracing import causal_trace, trace_summary
from langedit_mini.study.preserved import LEFTOVERS, TAUS, cut_table  # the spectrum of C0 at each cut


def suggest_band(summary: pd.DataFrame, size: int) -> tuple[int, ...]:
    """The ``size`` contiguous layers with the largest summed MLP indirect effect at the subject's last token."""
    mlp = summary[(summary.site == "mlp") & (summary.position == "subject last")].set_index("layer").indirect_effect
    mlp = mlp.sort_index()
    if not isinstance(size, int) or not 1 <= size <= len(mlp):
        raise ValueError(f"size must be an integer in 1..{len(mlp)} (the traced layers), got {size!r}")
    layers = list(mlp.index)
    best = max(range(len(layers) - size + 1), key=lambda i: float(mlp.iloc[i : i + size].sum()))
    return tuple(int(layer) for layer in layers[best : best + size])


def layer_and_cut_guide(
    model,
    tokenizer,
    facts: list[dict],
    texts: list[str],
    *,
    layers=None,
    band_size: int = 3,
    samples: int = 10,
    leftovers=LEFTOVERS,
    taus=TAUS,
    cache_dir=None,
    progress: bool = False,
) -> dict:
    """``{"trace", "summary", "band", "cuts"}`` for ``model``: see the module docstring.

    ``facts``: dicts with ``prompt``, ``subject`` and the model's ``answer`` (``causal_trace``); ``texts``:
    the knowledge to preserve (for ``C0``); ``layers``: candidates (default: every layer)."""
    architecture = detect_architecture(model)
    layers = list(range(num_layers(model, architecture))) if layers is None else list(layers)
    trace = causal_trace(model, tokenizer, facts, layers=layers, samples=samples, architecture=architecture)
    summary = trace_summary(trace)
    band = suggest_band(summary, min(band_size, len(layers)))
    statistics = key_second_moments(model, tokenizer, texts, layers, cache_dir=cache_dir, progress=progress)
    return {"trace": trace, "summary": summary, "band": band, "cuts": cut_table(statistics, leftovers, taus)}
