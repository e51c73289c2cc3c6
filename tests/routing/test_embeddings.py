"""Sentence-embedding similarity as an optional routing feature."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Project
from routing import checks, embeddings, services
from routing.embeddings import EmbedderUnavailable, SentenceEmbedder
from routing.features import FeatureConfig, RoutingPair, build_features
from routing.models import RouteDecision
from tests.routing.helpers import JUDGE, judged

PAIRS = [
    RoutingPair(
        "paraphrase",
        "What is the capital of France?",
        "The capital of France is Paris.",
        "Paris is the French capital city.",
        "model_a",
    ),
    RoutingPair(
        "unrelated",
        "What is the capital of France?",
        "The capital of France is Paris.",
        "I like to bake sourdough bread on Sundays.",
        "tie",
    ),
]


def test_the_packaged_embedder_tells_paraphrases_from_unrelated_answers() -> None:
    features = build_features(PAIRS, FeatureConfig(embeddings=True))
    meaning = features.column("answers_embed_cosine")
    assert meaning[0] > 0.8 and meaning[1] < 0.3
    # Meaning, not shared words: the paraphrase shares few of them.
    assert meaning[0] > features.column("answers_cosine")[0] + 0.2
    decisive = features.column("decisive_on_similar_embed")
    assert decisive[0] == pytest.approx(meaning[0]) and decisive[1] == 0.0


def test_embeddings_without_an_embedder_are_refused_loudly(
    monkeypatch: pytest.MonkeyPatch, settings, tmp_path: Path
) -> None:
    # Another similarity under the same column names would feed a model fitted on embeddings
    # other numbers without a word: every way in refuses instead.
    monkeypatch.setattr(embeddings, "packaged_embedder", lambda: None)
    with pytest.raises(EmbedderUnavailable, match=r"requirements-embeddings\.txt"):
        build_features(PAIRS, FeatureConfig(embeddings=True))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"id": "x", "prompt": "p", "response_a": "a", "response_b": "b",
                    "llm_label": "tie", "human_votes": [{"winner": "tie"}]}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(CommandError, match="not installed"):
        call_command("router_eval", pairs=str(pairs), embeddings=True, stdout=StringIO())
    settings.PREFARENA_ROUTER_EMBEDDINGS = True
    assert [error.id for error in checks.embedder_installed()] == ["routing.E001"]
    settings.PREFARENA_ROUTER_EMBEDDINGS = False
    assert checks.embedder_installed() == []
    # Without embeddings asked for, the lexical similarity is there as always.
    assert "answers_cosine" in build_features(PAIRS).names


class CountingModel:
    """Embeds a text as its length and first letter; counts what it was asked."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: list[str], **_options: object) -> np.ndarray:
        self.encoded.extend(texts)
        rows = np.array([[len(t), ord(t[0])] for t in texts], dtype=float)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_each_text_is_embedded_once_and_the_cache_is_bounded() -> None:
    model = CountingModel()
    embedder = SentenceEmbedder(lambda: model, cache_size=3)
    first = embedder(["aa", "b", "aa", "ccc"])
    assert model.encoded == ["aa", "b", "ccc"]
    assert np.array_equal(first[0], first[2])
    again = embedder(["b", "dddd"])
    assert model.encoded[-1:] == ["dddd"]  # "b" came from the cache
    assert np.allclose(again[0], first[1])
    # Only the newest three texts are kept; asking for more than fit still answers them all.
    assert embedder(["e", "f", "g", "h", "aa"]).shape == (5, 2)
    assert len(embedder._cache) == 3


def test_the_cache_keeps_the_texts_used_most_recently() -> None:
    model = CountingModel()
    embedder = SentenceEmbedder(lambda: model, cache_size=2)
    embedder(["old", "new"])
    embedder(["old"])  # "old" is used again: "new" is now the least recently used
    embedder(["third"])
    model.encoded.clear()
    embedder(["old", "new"])
    assert model.encoded == ["new"]


@pytest.mark.django_db
def test_the_app_routes_with_embeddings_when_turned_on(project: Project, settings) -> None:
    settings.PREFARENA_ROUTER_EMBEDDINGS = True
    services.routing_policy_set(project=project, judge=JUDGE, budget_share=0.5, min_batch=1)
    judged(project, 3)
    services.comparisons_route(project=project)
    stored = RouteDecision.objects.values_list("features", flat=True)
    assert len(stored) == 3
    assert all(-1.0 <= f["answers_embed_cosine"] <= 1.0 for f in stored)
