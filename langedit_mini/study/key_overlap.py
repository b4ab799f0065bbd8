"""What each null-space projector leaves of a batch's keys, and why protecting earlier edits can block a fact's
other languages.

AlphaEdit's projector ``P0`` protects what ``C0`` has seen and nothing else; LangEdit's (both forms) also protects
the keys of every earlier batch (SPEC section 4). In the paper's schedule a fact is written once per language
(``facts="parallel"``), one language per batch, so batch t writes facts that earlier batches wrote in other
languages. When a fact's German key lies mostly in the span of its English key, LangEdit's projector removes most
of the German key: the update it can make is nearly invisible to the prompt it should change.

``projector_action`` measures this on a schedule, batch by batch, without editing: for each batch, the share of
the batch's key energy ``||P k||^2 / ||k||^2`` that each method's projector leaves (the projector as it stands
before the batch, then the batch's keys are committed exactly as ``EditingSession`` commits them), and where the
removed energy lies: the share of each key in the span of the same facts' keys of earlier batches (the fact in
the languages before) and in the span of the other facts' earlier keys (the control).

The keys are the unedited model's. At the first edited layer they are exactly the keys a run computes: an edit of
that layer or a later one changes the MLP's output, never its input at that layer. At later layers a run reads
keys on the edited model, so their rows are an approximation (column ``exact_keys``).
"""

from __future__ import annotations

import pandas as pd
import torch

from langedit_mini.core.projection import projector_from_span
from langedit_mini.core.validation import SOLVE_DTYPE
from langedit_mini.editing.defaults import default_config
from langedit_mini.editing.registry import get_method
from langedit_mini.model.architecture import detect_architecture
from langedit_mini.model.keys import compute_keys

#: the methods whose projector ``projector_action`` reads (MEMIT and FT have none)
PROJECTED = ("AlphaEdit", "LangEdit-published", "LangEdit-exact")


def span_share(keys: torch.Tensor, vectors: torch.Tensor, *, rtol: float = 1e-8) -> torch.Tensor:
    """For each column of ``keys`` (d, n), the share of its squared norm in the span of the columns of
    ``vectors`` (d, m): 0 when orthogonal (or ``m`` is 0), 1 when inside. A zero key has no share: an error."""
    if keys.dim() != 2 or vectors.dim() != 2 or keys.shape[0] != vectors.shape[0]:
        raise ValueError(f"keys {tuple(keys.shape)} and vectors {tuple(vectors.shape)} must be 2-D with equal rows")
    norms = keys.pow(2).sum(0)
    if (norms == 0).any():
        raise ValueError("a key of norm 0 has no share in any span")
    if vectors.shape[1] == 0 or not vectors.any():
        return torch.zeros_like(norms)
    basis = projector_from_span(vectors, rtol=rtol, dtype=SOLVE_DTYPE).protected_basis  # the span's own SVD
    return (basis.T @ keys.to(SOLVE_DTYPE)).pow(2).sum(0) / norms.to(SOLVE_DTYPE)


def kept_share(projector, keys: torch.Tensor) -> torch.Tensor:
    """``||P k||^2 / ||k||^2`` for each column of ``keys``: what of each key an update projected by ``P`` can
    still act on."""
    return projector.apply(keys).pow(2).sum(0) / keys.pow(2).sum(0)


def shared_subjects(requests, reference: str = "en") -> pd.DataFrame:
    """Per language other than ``reference``: of the facts the language shares with ``reference``, how many
    write the very same subject string (``same``), of how many (``facts``), and the share. Where the subject is
    the same text, a fact's key (read at the subject's last token) differs between languages only through the
    words around it: one reason why its keys lie near each other's span."""
    subjects = {r.fact_id: r.subject for r in requests if r.lang == reference}
    if not subjects:
        raise ValueError(f"no request in the reference language {reference!r}")
    rows = {}
    for r in requests:
        if r.lang != reference and r.fact_id in subjects:
            row = rows.setdefault(r.lang, {"lang": r.lang, "facts": 0, "same": 0})
            row["facts"] += 1
            row["same"] += r.subject == subjects[r.fact_id]
    frame = pd.DataFrame(list(rows.values()), columns=["lang", "facts", "same"])
    return frame.assign(share=frame.same / frame.facts)


def projector_action(
    model,
    tokenizer,
    batches: list[list],
    statistics: dict,
    hparams: str,
    *,
    layers=None,
    methods=PROJECTED,
) -> pd.DataFrame:
    """Per batch of ``batches`` (lists of ``EditRequest``, a schedule's order), edited layer and method: the mean
    share of the batch's keys that the method's projector leaves before the batch (``kept``), the mean share of
    its keys in the span of the same facts' keys of earlier batches (``in_same_facts``; NaN when none) and of the
    other facts' (``in_other_facts``), with how many such keys there are, and the projector's null-space
    dimension (``null_dim``). ``statistics`` holds ``C0`` per layer (``Testbed.statistics``); each method's
    settings come from ``hparams``; ``layers`` default to the first method's edited layers."""
    unknown = [m for m in methods if m not in PROJECTED]
    if unknown or not methods:
        raise ValueError(f"methods must be some of {', '.join(PROJECTED)} (projected methods), got {methods!r}")
    if not batches or any(not batch for batch in batches):
        raise ValueError("batches must be a non-empty list of non-empty batches")
    configs = {m: default_config(m, hparams=hparams) for m in methods}
    layers = list(layers or configs[methods[0]].layers)
    first = min(configs[methods[0]].layers)
    architecture = detect_architecture(model)
    rows = []
    for layer in layers:
        keys = [compute_keys(model, tokenizer, architecture, batch, layer).to(SOLVE_DTYPE) for batch in batches]
        rules = {m: get_method(m).make_rules(configs[m].settings, statistics, [layer])[layer] for m in methods}
        for t, batch in enumerate(batches):
            facts = [r.fact_id for r in batch]
            same = [k for s in range(t) for k, r in zip(keys[s].T, batches[s]) if r.fact_id in facts]
            other = [k for s in range(t) for k, r in zip(keys[s].T, batches[s]) if r.fact_id not in facts]
            shares = {
                name: span_share(keys[t], torch.stack(found, 1)).mean().item() if found else float("nan")
                for name, found in (("in_same_facts", same), ("in_other_facts", other))
            }
            languages = sorted({r.lang for r in batch})
            for method, rule in rules.items():
                projector = rule.projector
                rows.append(
                    {
                        "layer": layer,
                        "exact_keys": layer == first,
                        "batch": t,
                        "lang": languages[0] if len(languages) == 1 else "+".join(languages),
                        "method": method,
                        "kept": kept_share(projector, keys[t]).mean().item(),
                        "null_dim": projector.null_dim,
                        "same_fact_keys": len(same),
                        "other_fact_keys": len(other),
                    }
                    | shares
                )
                rule.commit(keys[t])
    return pd.DataFrame(rows)
