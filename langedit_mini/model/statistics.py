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
from langedit_mini.model.architecture import (
    Architecture,
    detect_architecture,
    get_module,
    key_dimension,
    mlp_out_module,
    run_until,
)
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
    checkpoint: str | Path | None = None,
) -> dict[int, SecondMoment]:
    """``C0`` for each layer in ``layers`` over all non-padding tokens of ``texts``.

    Layers found in ``cache_dir`` are read from it; the others are computed in one pass over ``texts``
    (``second_moment_pass``, resumable through ``checkpoint``; data-parallel in a ``torch.distributed``
    group) and stored there. ``cache_dir=None``: nothing is read or written.
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
        checkpoint=checkpoint,
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


def _write_checkpoint(path: Path, signature: dict, sums: dict, counts: dict, done: int) -> None:
    """The running sums as safetensors (no pickle), written under a temporary name and renamed."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"signature": json.dumps(signature), "counts": json.dumps(counts), "done": str(done)}
    partial = path.with_name(path.name + ".partial")
    save_file({f"sum.{layer}": total.contiguous() for layer, total in sums.items()}, str(partial), metadata=metadata)
    partial.replace(path)


def _read_checkpoint(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        sums = {int(name.split(".")[1]): handle.get_tensor(name) for name in handle.keys()}
    counts = {int(layer): count for layer, count in json.loads(metadata["counts"]).items()}
    return {
        "signature": json.loads(metadata["signature"]),
        "sums": sums,
        "counts": counts,
        "done": int(metadata["done"]),
    }


def _distributed() -> tuple[int, int]:
    """(rank, world size) of an initialised ``torch.distributed`` process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _KeySums:
    """Forward pre-hooks on the edited matrices of ``layers`` that add ``K K^T`` of every non-padding token to
    a running (d_k, d_k) sum in ``dtype`` per layer, and count the tokens; each pass stops after the last of
    those blocks (nothing after it changes their keys)."""

    def __init__(self, model, architecture: Architecture, layers, dtype, sums=None, counts=None):
        self.dtype, self.mask = dtype, None
        self.sums = dict(sums or {})
        self.counts = dict(counts or {layer: 0 for layer in layers})
        self.handles = [
            mlp_out_module(model, architecture, layer).register_forward_pre_hook(self._adder(layer)) for layer in layers
        ]
        self.last = get_module(model, architecture.layer.format(layer=max(layers)))

    def _adder(self, layer):
        def hook(module, inputs):
            selected = inputs[0].detach()[self.mask].to(self.dtype)  # (tokens, d_k)
            if layer not in self.sums:
                self.sums[layer] = torch.zeros(
                    selected.shape[1], selected.shape[1], dtype=self.dtype, device=selected.device
                )
            self.sums[layer] += selected.T @ selected
            self.counts[layer] += selected.shape[0]

        return hook

    def run(self, model, ids, mask) -> None:
        """One batch through the model as far as the last needed block."""
        self.mask = mask.bool()
        run_until(model, self.last, input_ids=ids, attention_mask=mask)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _resumed(checkpoint: Path | None, signature: dict) -> tuple[dict, dict | None, int]:
    """The running sums, counts and batches done of a checkpoint made for the same ``signature`` (empty when
    there is none); a checkpoint of other inputs is an error."""
    if checkpoint is None or not checkpoint.exists():
        return {}, None, 0
    state = _read_checkpoint(checkpoint)
    if state["signature"] != signature:
        raise ValueError(
            f"{checkpoint} holds a statistics pass of other inputs (model, texts, layers or settings); "
            "delete it or use another checkpoint path"
        )
    return state["sums"], state["counts"], state["done"]


def _all_reduced(model, architecture, layers, sums: dict, counts: dict, dtype) -> tuple[dict, dict]:
    """The sums and counts of every rank of the process group, added (a rank without a batch adds zeros)."""
    import torch.distributed as dist

    for layer in layers:
        d_k = key_dimension(model, architecture, layer)
        total = sums.get(layer)
        if total is None:  # this rank had no batch
            total = torch.zeros(d_k, d_k, dtype=dtype, device=model_device(model))
        dist.all_reduce(total)
        sums[layer] = total
    tokens = torch.tensor([counts[layer] for layer in layers], dtype=torch.long, device=model_device(model))
    dist.all_reduce(tokens)
    return sums, dict(zip(layers, tokens.tolist()))


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
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
) -> dict[int, SecondMoment]:
    """One forward pass over ``texts`` in batches: ``K0 K0^T / N`` at each layer's edited matrix input,
    summed in ``dtype`` over every non-padding token (hooks removed on return; the model is unchanged).
    Each batch runs only as far as the last layer asked for (``_KeySums``).

    ``checkpoint``: a file for the running sums, written every ``checkpoint_every`` batches; a pass that
    finds one made for the same model, texts, layers and settings continues after its last batch
    (an interrupted pass on a large corpus loses at most ``checkpoint_every`` batches). It is removed
    when the pass ends.

    Data-parallel: in an initialised ``torch.distributed`` process group each rank runs every
    ``world_size``-th batch and the sums and counts are all-reduced once at the end, so every rank
    returns the statistics one process would compute (equal up to the order of float additions). A
    checkpoint is then per rank (``<checkpoint>.rank<r>``).
    """
    architecture = architecture or detect_architecture(model)
    rank, world = _distributed()
    signature = {
        "model": model_fingerprint(model),
        "texts": texts_fingerprint(texts),
        "count": len(texts),
        "layers": list(layers),
        "batch_size": batch_size,
        "max_length": max_length,
        "dtype": str(dtype),
        "rank": rank,
        "world": world,
    }
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if world > 1:
            checkpoint = checkpoint.with_name(f"{checkpoint.name}.rank{rank}")
    sums, counts, done = _resumed(checkpoint, signature)
    mine = list(range(0, len(texts), batch_size))[rank::world]  # this rank's batches (their first texts)
    collector = _KeySums(model, architecture, layers, dtype, sums, counts)
    iterator = enumerate(mine)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(
            iterator, total=len(mine), initial=done, desc=f"key statistics, layers {list(layers)}", leave=False
        )
    try:
        with evaluation_mode(model):
            for index, start in iterator:
                if index < done:
                    continue
                encoded = tokenizer(
                    texts[start : start + batch_size],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                )
                ids = encoded["input_ids"].to(model_device(model))
                collector.run(model, ids, encoded["attention_mask"].to(ids.device))
                if checkpoint is not None and (index + 1) % checkpoint_every == 0 and index + 1 < len(mine):
                    _write_checkpoint(checkpoint, signature, collector.sums, collector.counts, index + 1)
    finally:
        collector.remove()
    sums, counts = collector.sums, collector.counts
    if world > 1:
        sums, counts = _all_reduced(model, architecture, layers, sums, counts, dtype)
    moments = {}
    for layer in layers:
        covariance = (sums[layer] / counts[layer]).cpu()
        moments[layer] = SecondMoment(layer, (covariance + covariance.T) / 2, counts[layer])
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
    return moments


#: what a shared statistics file says about itself (safetensors metadata; every value a string)
STATISTICS_METADATA = ("model", "model_fingerprint", "layers", "corpus", "texts", "n_samples", "max_length", "dtype")


def save_statistics(
    statistics: dict[int, SecondMoment],
    path: str | Path,
    *,
    model,
    corpus: str,
    texts: int | None = None,
    max_length: int | None = None,
) -> Path:
    """One safetensors file with ``C0`` of every layer, for sharing: its metadata names the model (its
    name and weight fingerprint), the layers, the corpus (a description you give), the number of texts
    and of key vectors per layer. ``load_statistics`` reads it back."""
    from safetensors.torch import save_file

    if not statistics:
        raise ValueError("no statistics to save")
    path = Path(path)
    tensors = {f"layer{layer}.covariance": moment.covariance.contiguous() for layer, moment in statistics.items()}
    metadata = {
        "model": str(getattr(model.config, "_name_or_path", "") or type(model).__name__),
        "model_fingerprint": model_fingerprint(model),
        "layers": json.dumps(sorted(statistics)),
        "corpus": corpus,
        "texts": json.dumps(texts),
        "n_samples": json.dumps({str(layer): moment.n_samples for layer, moment in statistics.items()}),
        "max_length": json.dumps(max_length),
        "dtype": str(next(iter(statistics.values())).covariance.dtype),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_statistics(path: str | Path, model=None) -> tuple[dict[int, SecondMoment], dict]:
    """``(statistics, metadata)`` from a ``save_statistics`` file. With ``model``, refuse a file made for
    other weights (its fingerprint differs): statistics of another model protect the wrong keys."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        missing = [name for name in STATISTICS_METADATA if name not in metadata]
        if missing:
            raise ValueError(f"{path} is not a statistics file of save_statistics (metadata lacks {missing})")
        samples = json.loads(metadata["n_samples"])
        statistics = {
            int(layer): SecondMoment(
                int(layer), handle.get_tensor(f"layer{layer}.covariance"), int(samples[str(layer)]), True
            )
            for layer in json.loads(metadata["layers"])
        }
    if model is not None and metadata["model_fingerprint"] != model_fingerprint(model):
        raise ValueError(
            f"{path} was made for other weights ({metadata['model']}, fingerprint {metadata['model_fingerprint']}); "
            f"this model's fingerprint is {model_fingerprint(model)}"
        )
    return statistics, metadata
