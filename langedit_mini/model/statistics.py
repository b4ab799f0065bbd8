"""Preserved-knowledge statistics: the uncentred second moment of MLP keys, ``C0 = K0 K0^T / N``.

A forward pre-hook on each edited MLP output projection collects its input (the keys) on every
non-padding token of a text corpus, and adds ``K K^T`` to a running (d_k, d_k) sum in float64
(float32 on request). Memory is ``d_k^2`` per layer plus one batch, whatever the corpus size. The
model is not changed; hooks are removed on return.

Results are cached as safetensors, keyed by a model fingerprint, the layer, a hash of the texts and
the sample count, so a second call with the same inputs is a cache hit (no forward pass).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from langedit_mini.data.caches import cache_folder
from langedit_mini.model.architecture import Architecture, detect_architecture, mlp_out_module
from langedit_mini.model.tokens import evaluation_mode, model_device

DEFAULT_CACHE = cache_folder("stats")  # $LANGEDIT_CACHE/stats when set (caches.py)


@dataclass
class SecondMoment:
    """``C0`` of one layer and how it was made."""

    layer: int
    covariance: torch.Tensor  # (d_k, d_k), K0 K0^T / N
    n_samples: int  # N: key vectors (tokens) averaged
    from_cache: bool = False


def model_fingerprint(model) -> str:
    """A hash of the config and of a few values of every parameter: changes when the weights change."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            flat = parameter.detach().reshape(-1)
            picks = flat[:: max(1, flat.numel() // 64)][:64].double().cpu()
            digest.update(name.encode())
            digest.update(picks.numpy().tobytes())
    return digest.hexdigest()[:16]


def texts_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def key_second_moments(
    model,
    tokenizer,
    texts: list[str],
    layers: list[int],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    dtype: torch.dtype = torch.float64,
    architecture: Architecture | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    progress: bool = True,
) -> dict[int, SecondMoment]:
    """``C0`` for each layer in ``layers`` over all non-padding tokens of ``texts``.

    Layers found in ``cache_dir`` are read from it; the others are computed in one pass over ``texts``
    (``second_moment_pass``) and stored there. ``cache_dir=None``: nothing is read or written.
    """
    if not texts:
        raise ValueError("texts is empty: the covariance needs at least one text")
    architecture = architecture or detect_architecture(model)
    paths = {}
    if cache_dir is not None:
        base = f"{model_fingerprint(model)}-{texts_fingerprint(texts)}-{len(texts)}-{max_length}-{str(dtype)[6:]}"
        paths = {layer: Path(cache_dir) / f"{base}-layer{layer}.safetensors" for layer in layers}
    results = {layer: _read_cached(layer, paths[layer]) for layer in paths if paths[layer].exists()}
    missing = [layer for layer in layers if layer not in results]
    if not missing:
        return results
    computed = second_moment_pass(
        model,
        tokenizer,
        texts,
        missing,
        batch_size=batch_size,
        max_length=max_length,
        dtype=dtype,
        architecture=architecture,
        progress=progress,
    )
    for layer, moment in computed.items():
        results[layer] = moment
        if layer in paths:
            _write_cached(moment, paths[layer])
    return results


def _read_cached(layer: int, path: Path) -> SecondMoment:
    from safetensors.torch import load_file

    stored = load_file(path)
    return SecondMoment(layer, stored["covariance"], int(stored["n_samples"]), True)


def _write_cached(moment: SecondMoment, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"covariance": moment.covariance.contiguous(), "n_samples": torch.tensor(moment.n_samples)}, str(path))


def second_moment_pass(
    model,
    tokenizer,
    texts: list[str],
    layers: list[int],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    dtype: torch.dtype = torch.float64,
    architecture: Architecture | None = None,
    progress: bool = True,
) -> dict[int, SecondMoment]:
    """One forward pass over ``texts`` in batches: ``K0 K0^T / N`` at each layer's edited matrix input,
    summed in ``dtype`` over every non-padding token (hooks removed on return; the model is unchanged)."""
    architecture = architecture or detect_architecture(model)
    sums, counts, hooks, current_mask = {}, {layer: 0 for layer in layers}, [], {}

    def make_hook(layer):
        def hook(module, inputs):
            keys = inputs[0].detach()  # (B, T, d_k)
            selected = keys[current_mask["mask"]].to(dtype)  # (tokens, d_k)
            if layer not in sums:
                sums[layer] = torch.zeros(selected.shape[1], selected.shape[1], dtype=dtype, device=selected.device)
            sums[layer] += selected.T @ selected
            counts[layer] += selected.shape[0]

        return hook

    for layer in layers:
        hooks.append(mlp_out_module(model, architecture, layer).register_forward_pre_hook(make_hook(layer)))
    iterator = range(0, len(texts), batch_size)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"key statistics, layers {layers}", leave=False)
    try:
        with evaluation_mode(model):
            for start in iterator:
                encoded = tokenizer(
                    texts[start : start + batch_size],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                )
                ids = encoded["input_ids"].to(model_device(model))
                mask = encoded["attention_mask"].to(ids.device)
                current_mask["mask"] = mask.bool()
                model(input_ids=ids, attention_mask=mask)
    finally:
        for handle in hooks:
            handle.remove()
    moments = {}
    for layer in layers:
        covariance = (sums[layer] / counts[layer]).cpu()
        moments[layer] = SecondMoment(layer, (covariance + covariance.T) / 2, counts[layer])
    return moments
