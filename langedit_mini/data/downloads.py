"""MzsRE for real-model runs: downloaded from the ReMaKE repository, checked, and cached.

``fetch_mzsre()`` returns a directory laid out as upstream (``data/MzsRE/...``) that
``datasets.load_mzsre`` reads (``train=True``: also the six training files, ``data/zsre_mend_train_*``, the
text of a real LLM's preserved-key statistics). Each file is pinned to one commit of
https://github.com/weixuan-wang123/ReMaKE and to its SHA-256, so a changed or truncated file is
refused, never used. The order of sources for a file:

1. the local cache (``~/.cache/langedit_mini/mzsre`` by default), if its checksum is right
   (a cached file with a wrong checksum is reported and replaced);
2. a ``mirror``: a local directory with the upstream layout (for example an offline copy);
3. the raw file on GitHub, unless ``download=False``.

Without network, cache or mirror the call fails with a message saying which file could not be had.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from langedit_mini.data.caches import cache_folder

MZSRE_REPOSITORY = "weixuan-wang123/ReMaKE"
MZSRE_COMMIT = "975a9e90698d0e9021e44d49809c0ee24b2710a5"
MZSRE_URL = f"https://raw.githubusercontent.com/{MZSRE_REPOSITORY}/{MZSRE_COMMIT}/{{path}}"
#: The five pair files hold all six languages (English is in each; Dutch is ``du`` upstream).
MZSRE_FILES = {
    "data/MzsRE/mzsre_test_duplicate_ende.json": "8dd490b2f562254c7d1a576652402ee07ba8bb12c0749907560ebd1c04500fe5",
    "data/MzsRE/mzsre_test_duplicate_endu.json": "95e8cf7542a436213206a5c8c320562588e2326e00578cd6d245e09582fa2c47",
    "data/MzsRE/mzsre_test_duplicate_enes.json": "1456f3907bd4455e0e6ad56cad9eae42b4ed5fe7a94dd1328183c98da6f62365",
    "data/MzsRE/mzsre_test_duplicate_enfr.json": "306a8da78fbc525982a44211b0a3d14eafb302e6600d38e564b280f3d7443590",
    "data/MzsRE/mzsre_test_duplicate_enzh.json": "fc6b0da1e84abc1bda2017a413d72b9227aea5ef9ddcff41223340f7c06f997a",
}
#: The training split (10,000 questions per language, line-aligned): text disjoint from the test facts, for the
#: preserved-key statistics of a real LLM (``data.corpora.mzsre_questions``).
MZSRE_TRAIN_FILES = {
    "data/zsre_mend_train_de_10000.txt": "c5e5a9f6286f6682798cb26495cf60218bef373b21d122e93e35ee0f64f0ed44",
    "data/zsre_mend_train_du_10000.txt": "2a596a8e3d6ab142ec34772ed097cf653791a4127986b8d2499ec98dde17d767",
    "data/zsre_mend_train_en_10000.txt": "247d69166cf25380471f9373345562f117e67df506228db178b0e734614610fb",
    "data/zsre_mend_train_es_10000.txt": "ecf0f44ef27408b09728deb1dc1c4116150d9f5438706aec8abf533b09e750ce",
    "data/zsre_mend_train_fr_10000.txt": "5600b0ad3bd3285590937a3432bca827b6dce224960a0a9890df92bca594d417",
    "data/zsre_mend_train_zh_10000.txt": "3884471ec1ea2c32a5809a0fad6d7d701fec3fdb6465f87a3b37fefec0ca56b4",
}
DEFAULT_CACHE = cache_folder("mzsre")  # $LANGEDIT_CACHE/mzsre when set (caches.py)


class ChecksumError(RuntimeError):
    """A file's SHA-256 is not the pinned one."""


@dataclass
class FetchReport:
    """Where each file came from: ``cache``, ``mirror`` or ``download``; and cached files replaced."""

    root: Path
    sources: dict[str, str] = field(default_factory=dict)
    replaced: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        counts = {}
        for source in self.sources.values():
            counts[source] = counts.get(source, 0) + 1
        parts = ", ".join(f"{n} from {source}" for source, n in sorted(counts.items()))
        replaced = (
            f"; {len(self.replaced)} cached file(s) had a wrong checksum and were replaced" if self.replaced else ""
        )
        return f"MzsRE in {self.root}: {parts}{replaced}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified_copy(source: Path, target: Path, expected: str, what: str) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    _commit(partial, target, expected, what)


def _download(url: str, target: Path, expected: str, timeout: float) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as handle:
            shutil.copyfileobj(response, handle)
    except OSError as error:  # URLError, timeouts and refused connections are all OSErrors
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"could not download {url}: {error}. Offline? Pass mirror= (a local copy of the "
            f"upstream data/ folder) or fill the cache {target.parent.parent.parent}"
        ) from error
    _commit(partial, target, expected, url)


def _commit(partial: Path, target: Path, expected: str, what: str) -> None:
    got = sha256(partial)
    if got != expected:
        partial.unlink()
        raise ChecksumError(
            f"{what}: SHA-256 {got} is not the pinned {expected} (commit {MZSRE_COMMIT[:12]}); the file was not used"
        )
    partial.replace(target)


def local_mzsre() -> Path | None:
    """A local copy of MzsRE with the upstream layout: ``$LANGEDIT_MZSRE``, else the project's shared datasets
    folder beside the repository (``../shared/datasets/MzsRE``), when it exists; None otherwise."""
    import os

    candidates = [os.environ.get("LANGEDIT_MZSRE"), Path(__file__).resolve().parents[3] / "shared/datasets/MzsRE"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data" / "MzsRE").is_dir():
            return Path(candidate)
    return None


def fetch_mzsre(
    cache_dir: str | Path | None = None,
    *,
    mirror: str | Path | None = None,
    download: bool = True,
    timeout: float = 60.0,
    train: bool = False,
) -> FetchReport:
    """Make the five MzsRE test files (and with ``train`` the six training files) available, checksummed, under
    ``cache_dir`` (None: ``DEFAULT_CACHE``, read when called, so ``$LANGEDIT_CACHE`` set later is followed);
    see the module doc."""
    root = Path(cache_dir if cache_dir is not None else cache_folder("mzsre")).expanduser()
    if mirror is not None and not Path(mirror).is_dir():
        raise FileNotFoundError(f"mirror {mirror} is not a directory")
    report = FetchReport(root)
    for relative, expected in (MZSRE_FILES | (MZSRE_TRAIN_FILES if train else {})).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            if sha256(target) == expected:
                report.sources[relative] = "cache"
                continue
            report.replaced.append(relative)
            target.unlink()
        if mirror is not None and (Path(mirror) / relative).is_file():
            _verified_copy(Path(mirror) / relative, target, expected, str(Path(mirror) / relative))
            report.sources[relative] = "mirror"
        elif download:
            _download(MZSRE_URL.format(path=relative), target, expected, timeout)
            report.sources[relative] = "download"
        else:
            raise FileNotFoundError(
                f"{relative} is neither cached in {root} nor in the mirror {mirror}, and download=False"
            )
    return report
