"""Is a testbed fit to judge an editing method? The measurements behind the calibration gates, and those that
explain a failure.

``calibrate`` measures a testbed from start to end and writes it with its provenance
(``store.write_calibration``, ``results/calibration/<model>/``):

* **G1** (``verdicts.write_gate``): in every language, one batch of the study's batch size (edits of
  distinct subjects drawn from the study's facts, the tuning split left out) written into a fresh copy by
  MEMIT and by AlphaEdit with the testbed's hyperparameters (``write_batch``); also one English batch of 100,
  the earlier yardstick, as information;
* **G3** (``verdicts.mechanism_gate``): causal tracing (``model.tracing.causal_trace``) of facts the model
  answers right (``known_facts``), every layer, with the edited band restored together (``trace_mechanism``);
* two measures of what may explain a failure: ``key_distinctness`` (are the keys of different subjects
  different at a layer: the key is the only thing that tells edits apart) and ``covariance_coverage`` (how
  much of the edit keys' energy lies in the null space of the preserved covariance, where a null-space
  method may write, at several cuts).

G2 needs sequential runs at the paper's density (``runner.run_density``); the density chapter reads them.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import pandas as pd
import torch

from langedit_mini.core.projection import tau_for_leftover
from langedit_mini.study import store
from langedit_mini.study.verdicts import Gate, mechanism_gate, write_gate


def known_facts(model, tokenizer, requests, per_language: int, seed: int = 0, languages=None) -> list[dict]:
    """Facts the model answers right (greedy exact match on the true answer), ``per_language`` per language,
    drawn with ``seed``: the dicts ``model.tracing.causal_trace`` takes (prompt, subject, answer, joiner, lang)."""
    from langedit_mini.data.languages import LANGUAGES
    from langedit_mini.evaluation.scoring import score

    facts = []
    for language in languages or LANGUAGES:
        pool = [r for r in requests if r.lang == language]
        pool = random.Random(seed).sample(pool, min(len(pool), 6 * per_language))
        unanswered = [r.fact_id or r.subject for r in pool if not r.true_answers]
        if unanswered:
            raise ValueError(f"known_facts needs the true answers of the facts; {unanswered[:3]} have none")
        if not pool:
            continue
        scores = score(
            model,
            tokenizer,
            [r.question for r in pool],
            [r.true_answers[0] for r in pool],
            [r.joiner for r in pool],
            predictions=False,
        )
        known = [r for r, right in zip(pool, scores.exact_match) if right][:per_language]
        facts += [
            {"prompt": r.question, "subject": r.subject, "answer": r.true_answers[0], "joiner": r.joiner}
            | {"lang": language}
            for r in known
        ]
    return facts


@dataclass
class MechanismTrace:
    """What ``trace_mechanism`` read: the traced facts, the per-fact trace, its summary, and G3."""

    facts: list[dict]
    trace: pd.DataFrame
    summary: pd.DataFrame
    gate: Gate


def trace_known_facts(model, tokenizer, requests, per_language: int, seed: int = 0, samples: int = 10, **options):
    """``per_language`` facts the model knows in each language (``known_facts``) and their causal trace over
    every layer (``model.tracing.causal_trace``; ``options``: its ``band`` and ``positions``).
    Returns ``(facts, trace)``; raises ``ValueError`` when the model answers none of the sampled facts right."""
    from langedit_mini.model.tracing import causal_trace

    facts = known_facts(model, tokenizer, requests, per_language, seed)
    if not facts:
        raise ValueError("the model answers none of the sampled facts right: nothing to trace")
    return facts, causal_trace(model, tokenizer, facts, samples=samples, seed=seed, **options)


def trace_mechanism(
    model, tokenizer, requests, band, per_language: int, seed: int = 0, samples: int = 10, window: int | None = None
):
    """G3 from start to end: ``trace_known_facts`` with ``band`` restored together, its ``trace_summary``,
    and ``mechanism_gate`` on it.

    Raises ``ValueError`` when the band is outside the model or the model answers none of the sampled
    facts right (nothing to trace).
    """
    from langedit_mini.model.architecture import detect_architecture, num_layers
    from langedit_mini.model.tracing import trace_summary

    last = num_layers(model, detect_architecture(model)) - 1
    if not all(0 <= layer <= last for layer in band):  # checked before the facts are scored
        raise ValueError(f"band {sorted(band)} is not inside the model's layers 0..{last}")
    facts, trace = trace_known_facts(
        model, tokenizer, requests, per_language, seed, samples, band=sorted(band), window=window
    )
    summary = trace_summary(trace)
    return MechanismTrace(facts, trace, summary, mechanism_gate(summary, band))


def key_distinctness(model, tokenizer, requests, layers, *, architecture=None) -> pd.DataFrame:
    """Per layer: how alike the edit keys of different subjects are (one request per subject).

    Columns: ``subjects``, ``distinct_last_tokens`` (how many different token ids the subjects end
    in, tokenized alone), ``mean_cosine`` and ``p95_cosine`` of the pairwise cosine
    similarity of raw keys, ``share_above_0.95`` (pairs nearly parallel), ``effective_dimension``
    (participation ratio of the centred keys' covariance spectrum, from 1 to the number of subjects).
    """
    from langedit_mini.model.architecture import detect_architecture
    from langedit_mini.model.keys import compute_keys

    architecture = architecture or detect_architecture(model)
    chosen, seen = [], set()
    for request in requests:
        if request.subject not in seen:
            seen.add(request.subject)
            chosen.append(request)
    if len(chosen) < 2:
        raise ValueError("key_distinctness needs requests about at least two subjects")
    last_tokens = {tokenizer(r.subject, add_special_tokens=False)["input_ids"][-1] for r in chosen}
    rows = []
    for layer in layers:
        keys = compute_keys(model, tokenizer, architecture, chosen, layer).double()  # (d_k, n)
        unit = keys / keys.norm(dim=0, keepdim=True).clamp_min(1e-12)
        cosine = unit.T @ unit
        pairs = cosine[torch.triu(torch.ones_like(cosine, dtype=torch.bool), diagonal=1)]
        centred = keys - keys.mean(dim=1, keepdim=True)
        spectrum = torch.linalg.svdvals(centred) ** 2
        rows.append(
            {
                "layer": layer,
                "subjects": len(chosen),
                "distinct_last_tokens": len(last_tokens),
                "mean_cosine": float(pairs.mean()),
                "p95_cosine": float(pairs.quantile(0.95)),
                "share_above_0.95": float((pairs > 0.95).double().mean()),
                "effective_dimension": float(spectrum.sum() ** 2 / (spectrum**2).sum()),
            }
        )
    return pd.DataFrame(rows)


def covariance_coverage(statistics: dict, keys: dict, leftovers=(0.01, 0.05, 0.10)) -> pd.DataFrame:
    """Per layer and null-space cut: the share of the edit keys' energy in the null space of ``C0``.

    ``statistics``: layer -> ``SecondMoment``; ``keys``: layer -> (d_k, n) edit keys. A cut
    ``leftover=f`` discards the smallest eigenvalues holding ``f`` of trace(C0) (the cut the pocket
    defaults use). ``null_share`` near 0: the edit keys look like preserved keys, and a projected
    update can barely reach them; near 1: they lie where C0 has almost no energy. ``preserved_null_share``
    is the same share for C0's own keys (= the leftover fraction, by construction), for comparison.
    """
    rows = []
    for layer, moment in statistics.items():
        if layer not in keys:
            continue
        covariance = moment.covariance.double()
        values, vectors = torch.linalg.eigh(covariance)
        k = keys[layer].double()
        for fraction in leftovers:
            tau = tau_for_leftover(covariance, fraction)
            null = vectors[:, values < tau]
            energy = (null.T @ k).pow(2).sum(dim=0) / k.pow(2).sum(dim=0).clamp_min(1e-300)
            rows.append(
                {
                    "layer": layer,
                    "cut": f"leftover={fraction:.0%}",
                    "null_dim": int(null.shape[1]),
                    "d_k": int(values.numel()),
                    "null_share": float(energy.mean()),
                    "null_share_p10": float(energy.quantile(0.10)),
                    "preserved_null_share": float(values[values < tau].clamp_min(0).sum() / values.clamp_min(0).sum()),
                }
            )
    return pd.DataFrame(rows)


#: the methods whose batches G1 reads
WRITE_METHODS = ("MEMIT", "AlphaEdit")


def write_batch(testbed, batch, methods=WRITE_METHODS, layers=None) -> pd.DataFrame:
    """Each method writes ``batch`` into a fresh copy of the testbed's model with its hyperparameters (into
    ``layers`` instead of the file's band, when given); the scores of every request, per method
    (``unreached``: target values that did not reach their target)."""
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.editing.session import EditingSession
    from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference

    model, tokenizer = testbed.model, testbed.tokenizer
    reference = locality_reference(model, tokenizer, batch)
    frames = []
    for method in methods:
        config = default_config(method, testbed.hparams, **({"layers": tuple(layers)} if layers else {}))
        session = EditingSession(model, tokenizer, config, testbed.statistics(config.layers))
        record = session.apply(batch)
        frame = evaluate_requests(session.model, tokenizer, batch, reference).assign(method=method)
        frames.append(frame.assign(unreached=record.unreached))
    return pd.concat(frames, ignore_index=True)


#: what a calibration measures: G1 (one batch written per language), G3 (the causal trace), and the keys
CALIBRATION_PARTS = ("write", "trace", "keys")


def written_with(hparams, methods=WRITE_METHODS) -> dict:
    """What G1's methods write with under the hyperparameter file ``hparams`` (a name or a path): per method, its
    layers, its value step and its own settings, as the record of a calibration keeps them (the file can change
    after the run, or be one outside the repository)."""
    from dataclasses import asdict

    from langedit_mini.editing.defaults import default_config

    settings = {}
    for method in methods:
        config = default_config(method, hparams)
        settings[method] = {
            "layers": list(config.layers),
            "values": asdict(config.values),
            "settings": asdict(config.settings),
        }
    return settings


def _write_part(
    testbed, study, batch_size: int, seed: int, tables: dict, batch_of_100: bool = True, methods=WRITE_METHODS
) -> Gate:
    """G1: one batch per language written by each of ``methods`` (MEMIT and AlphaEdit; and, with ``batch_of_100``,
    one English batch of 100, as information)."""
    from langedit_mini.data.languages import LANGUAGES
    from langedit_mini.data.schedules import distinct_subjects

    frames = []
    for language in LANGUAGES:
        batch = distinct_subjects([r for r in study if r.lang == language], batch_size, seed)
        frames.append(write_batch(testbed, batch, methods).assign(lang=language))
    tables["write"] = pd.concat(frames, ignore_index=True)
    if batch_of_100 and batch_size != 100:
        english = [r for r in study if r.lang == "en"]
        tables["write_100"] = write_batch(testbed, distinct_subjects(english, 100, seed), methods)
    return write_gate(tables["write"], batch_size, methods)


def _keys_part(testbed, study, seed: int, tables: dict) -> None:
    """Key distinctness at every layer, and the edit keys' coverage by C0 at the edited layers."""
    from langedit_mini.data.schedules import distinct_subjects
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.model.architecture import detect_architecture, num_layers
    from langedit_mini.model.keys import compute_keys

    model, tokenizer = testbed.model, testbed.tokenizer
    english = [r for r in study if r.lang == "en"]
    architecture = detect_architecture(model)
    tables["distinctness"] = key_distinctness(model, tokenizer, english, range(num_layers(model, architecture)))
    hundred = distinct_subjects(english, 100, seed)  # edit keys of 100 English subjects
    edited = default_config("MEMIT", testbed.hparams).layers
    keys = {layer: compute_keys(model, tokenizer, architecture, hundred, layer) for layer in edited}
    tables["coverage"] = covariance_coverage(testbed.statistics(edited), keys)


#: the gate each part measures (the keys' measures are no gate), and the record's fields that belong to a part
PART_GATES = {"write": "G1", "trace": "G3"}
PART_FIELDS = {
    "trace": ("traced_facts", "noise", "samples", "window"),
    "write": ("batch_of_100", "written_with", "probe"),
    "keys": (),
}
#: the settings two calibrations share for their parts to stand in one record
SHARED_SETTINGS = ("model", "band", "batch_size", "tuning_facts", "seed")
PROVENANCE_FIELDS = ("commit", "uncommitted_changes", "package_hash", "finished")


def _made(record: dict) -> dict:
    """The provenance of a calibration record (``PROVENANCE_FIELDS``), as ``made`` keeps it per part."""
    return {k: record.get(k) for k in PROVENANCE_FIELDS}


def merged_calibration(earlier: dict | None, now: dict) -> dict:
    """The record of a calibration that measured some parts (``now``) over the one written before (``earlier``):
    the parts not measured again keep their gates, timings and fields from ``earlier`` (a real LLM's G1 is
    measured after its trace, once its settings are tuned), and ``made`` says which commit and code made each
    part. Settings that differ (``SHARED_SETTINGS``: another band, batch size, split or seed) while a part of
    ``earlier`` would be kept are an error: the parts would not describe one testbed."""
    before = list(earlier.get("parts", CALIBRATION_PARTS)) if earlier is not None else []  # older: every part
    kept = [part for part in before if part not in now["parts"]]
    if not kept:  # every part measured again (or none before): nothing of the earlier record stays
        return now | {"made": {part: _made(now) for part in now["parts"]}}
    differing = [name for name in SHARED_SETTINGS if earlier.get(name) != now.get(name)]
    if differing:
        changes = ", ".join(f"{name}: {earlier.get(name)!r} then, {now.get(name)!r} now" for name in differing)
        raise ValueError(
            f"the calibration written before measured other settings ({changes}); measure every part with these "
            "settings, or write elsewhere"
        )
    made = earlier.get("made") or {part: _made(earlier) for part in before}
    merged = dict(now)
    merged["parts"] = [part for part in CALIBRATION_PARTS if part in kept or part in now["parts"]]
    gates, timings = dict(now["gates"]), dict(now["timings_s"])
    for part in kept:
        gate = PART_GATES.get(part)
        if gate in earlier["gates"]:
            gates[gate] = earlier["gates"][gate]
        if gate in earlier.get("timings_s", {}):
            timings[gate] = earlier["timings_s"][gate]
        merged |= {field: earlier[field] for field in PART_FIELDS[part] if field in earlier}
    if "keys" in kept and "diagnostics" in earlier.get("timings_s", {}):
        timings["diagnostics"] = earlier["timings_s"]["diagnostics"]
    merged["gates"] = {name: gates[name] for name in sorted(gates)}
    merged["timings_s"] = timings
    merged["made"] = {part: made[part] for part in kept} | {part: _made(now) for part in now["parts"]}
    return merged


def calibrate(
    testbed,
    output,
    *,
    batch_size: int,
    tuning_facts: int,
    band=None,
    trace_facts: int = 10,
    samples: int = 10,
    window: int | None = None,
    seed: int = 0,
    parts=CALIBRATION_PARTS,
    batch_of_100: bool = True,
    methods=WRITE_METHODS,
    probe: dict | None = None,
    log=print,
) -> dict:
    """Gates G1 and G3 of ``testbed`` and the measures that explain a failure (``parts`` of
    ``CALIBRATION_PARTS``), written under ``output`` with their provenance (``store.write_calibration``);
    returns the record. ``band``: the layers G3 restores together (default: the testbed's edited layers);
    ``samples`` noise draws per traced fact; ``window``: ROME's windowed trace as well (that many consecutive
    layers restored together around each layer). The traced facts are facts the model knows
    (``Testbed.facts_known``: for a real LLM, the pocket world's real facts in its prompt format).
    ``batch_of_100``: G1's English batch of 100 beside the gate (information; on a real LLM on 2 cores it costs
    more than the gate's own batches). ``methods``: who writes G1's batches (a probe may write with one of them);
    ``probe``: what a probe of G1's batches changed (``scripts/probe_value_site.py``), recorded as given."""
    from langedit_mini.data.schedules import split_facts
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.study.provenance import finish_record, start_record

    unknown = [part for part in parts if part not in CALIBRATION_PARTS]
    if unknown or not parts:
        raise ValueError(f"parts must be among {', '.join(CALIBRATION_PARTS)}, got {list(parts)}")
    record, timings, tables, gates = start_record(loader=testbed.loader, inputs=testbed.inputs), {}, {}, {}
    band = tuple(band) if band else default_config("MEMIT", testbed.hparams).layers
    study, _ = split_facts(testbed.requests, tuning_facts)
    info = {"model": testbed.name, "band": list(band), "batch_size": batch_size, "tuning_facts": tuning_facts}
    info |= {"parts": list(parts), "seed": seed}
    info |= (
        {}
        if "write" not in parts
        else {"batch_of_100": batch_of_100, "written_with": written_with(testbed.hparams, methods)}
        | ({"probe": probe} if probe else {})
    )
    earlier = store.read_calibration(output)
    merged_calibration(earlier, info | {"gates": {}, "timings_s": {}})  # other settings: refused before the work
    start = time.perf_counter()
    if "write" in parts:
        gates["G1"] = _write_part(testbed, study, batch_size, seed, tables, batch_of_100, methods)
        timings["G1"], start = time.perf_counter() - start, time.perf_counter()
    if "trace" in parts:
        known = study if testbed.knowledge is None else testbed.facts_known
        model, tokenizer = testbed.model, testbed.tokenizer
        traced = trace_mechanism(model, tokenizer, known, band, trace_facts, seed, samples=samples, window=window)
        tables["trace"], tables["trace_summary"], gates["G3"] = traced.trace, traced.summary, traced.gate
        info |= {"traced_facts": len(traced.facts), "noise": traced.trace.attrs["noise"], "samples": samples}
        info |= {"window": window} if window else {}
        timings["G3"], start = time.perf_counter() - start, time.perf_counter()
    if "keys" in parts:
        _keys_part(testbed, study, seed, tables)
        timings["diagnostics"] = time.perf_counter() - start
    info |= {"gates": {name: gate.as_dict() for name, gate in gates.items()}}
    info |= {"timings_s": {k: round(v, 1) for k, v in timings.items()}} | testbed.record() | finish_record(record)
    info = merged_calibration(earlier, info)
    store.write_calibration(output, info, tables)
    for gate in gates.values():
        log(gate.table().to_string(index=False))
    log(f"written to {output}: {timings}")
    return info
