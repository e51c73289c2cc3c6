"""All outbound HTTP to model servers: OpenAI-compatible `/chat/completions` and `/completions`.

This covers vLLM, TGI, the llama.cpp server and hosted APIs. Failures surface as two classes so
callers can decide on retries by type alone: `BackendUnavailable` (connection refused, timeout,
5xx, 429: try again later) and `BackendResponseError` (the server answered with something we
cannot use: retrying changes nothing).

The API key is never part of the configuration: the configuration names the environment
variable that holds it, and the key is read at request time and sent only in the header.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from models_backend.errors import (
    AnswerRefused,
    BackendConfigurationError,
    BackendResponseError,
    BackendUnavailable,
)
from models_backend.specs import (
    PLAIN_STOP_STRINGS,
    GenerationSettings,
    PromptInput,
    render_plain,
)
from prefarena import jsontext

# Rate limiting and "try again" statuses are transient like a 5xx.
_TRANSIENT_STATUSES = {408, 425, 429}
# The request, not the server, is what these refuse (vLLM answers 400 to a prompt too long).
_REFUSED_REQUEST_STATUSES = {400, 413, 422}
_BODY_EXCERPT_CHARS = 300
# Far above any answer a token limit allows (32k tokens are ~150 kB of JSON).
MAX_RESPONSE_BYTES = 2_000_000


@dataclass(frozen=True)
class EndpointConfig:
    base_url: str  # up to and including the version, e.g. "http://127.0.0.1:8000/v1"
    model: str  # the server's model name
    api_key_env: str | None = None  # NAME of the environment variable holding the key
    timeout_s: float = 60.0  # for the whole request: connect, generation, the last byte
    # A transient failure (timeout, reset, 5xx, 429) is tried again this many times, after
    # the server's Retry-After or a doubling pause, before it reaches the job.
    retries: int = 3

    def __repr__(self) -> str:
        return f"EndpointConfig(base_url={self.base_url!r}, model={self.model!r})"


@dataclass(frozen=True)
class RemoteCompletion:
    text: str
    prompt_tokens: int | None  # from the server's `usage`, when it reports it
    completion_tokens: int | None
    finish_reason: str | None
    latency_s: float
    model: str


class OpenAICompatibleClient:
    def __init__(self, config: EndpointConfig):
        self.config = config

    def generate(self, prompt: PromptInput, settings: GenerationSettings) -> RemoteCompletion:
        """Answer a prompt like local generation does: plain format through `/completions`
        with the same transcript template, chat format through `/chat/completions`."""
        if settings.prompt_format == "plain":
            return self.complete(render_plain(prompt), settings)
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return self.chat(messages, settings)

    def chat(
        self, messages: Sequence[Mapping[str, str]], settings: GenerationSettings
    ) -> RemoteCompletion:
        payload = {"messages": [dict(m) for m in messages], **self._sampling(settings)}
        body, latency = self._post("/chat/completions", payload)
        choice = _first_choice(body, self._url("/chat/completions"))
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise AnswerRefused(
                "chat completion has no choices[0].message.content string",
                url=self._url("/chat/completions"),
            )
        return self._completion(body, choice, content, latency)

    def complete(self, prompt: str, settings: GenerationSettings) -> RemoteCompletion:
        payload = {"prompt": prompt, **self._sampling(settings)}
        if settings.prompt_format == "plain":
            payload["stop"] = list(PLAIN_STOP_STRINGS)
        body, latency = self._post("/completions", payload)
        choice = _first_choice(body, self._url("/completions"))
        text = choice.get("text")
        if not isinstance(text, str):
            raise AnswerRefused(
                "completion has no choices[0].text string", url=self._url("/completions")
            )
        return self._completion(body, choice, text.strip(), latency)

    def _sampling(self, settings: GenerationSettings) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
        }
        # Not in OpenAI's API (hosted endpoints reject unknown fields); vLLM and TGI accept it.
        if settings.repetition_penalty != 1.0:
            fields["repetition_penalty"] = settings.repetition_penalty
        return fields

    def _completion(
        self, body: Mapping[str, Any], choice: Mapping[str, Any], text: str, latency: float
    ) -> RemoteCompletion:
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return RemoteCompletion(
            text=text,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            finish_reason=choice.get("finish_reason"),
            latency_s=latency,
            model=str(body.get("model") or self.config.model),
        )

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise BackendConfigurationError(
                    f"environment variable {self.config.api_key_env} (the API key for "
                    f"{self.config.base_url}) is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, path: str, payload: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        """POST and parse the JSON answer, trying a transient failure again `retries` times:
        one 429 or 503 among a thousand prompts must not throw away a job's batch."""
        for attempt in range(self.config.retries + 1):
            try:
                return self._post_once(path, payload)
            except BackendUnavailable as error:
                if attempt == self.config.retries:
                    raise
                time.sleep(_pause(error, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_once(self, path: str, payload: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        url = self._url(path)
        request = urllib.request.Request(  # noqa: S310 - the URL is operator configuration
            url, data=json.dumps(payload).encode(), headers=self._headers(), method="POST"
        )
        started = time.perf_counter()
        too_slow = f"{url} did not answer within {self.config.timeout_s:g}s"
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:  # noqa: S310
                raw = _read_body(response, started + self.config.timeout_s, too_slow, url)
        except urllib.error.HTTPError as error:
            raise _http_error(error, url) from error
        except TimeoutError as error:
            raise BackendUnavailable(too_slow, url=url) from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                message = too_slow
            else:
                message = f"cannot reach {url}: {error.reason}"
            raise BackendUnavailable(message, url=url) from error
        except (ConnectionError, HTTPException) as error:
            # Reset or closed mid-response: the server went away, which is transient.
            raise BackendUnavailable(f"connection to {url} failed: {error!r}", url=url) from error
        latency = time.perf_counter() - started
        try:
            body = jsontext.loads(raw)
        except (UnicodeDecodeError, jsontext.JSONTextError) as error:
            raise BackendResponseError(
                f"{url} answered with something that is not JSON: {_excerpt(raw)!r}", url=url
            ) from error
        if not isinstance(body, dict):
            raise BackendResponseError(
                f"{url} answered with JSON that is not an object: {_excerpt(raw)!r}", url=url
            )
        return body, latency


def _read_body(response: Any, deadline: float, too_slow: str, url: str) -> bytes:
    """The whole body by the deadline: a socket timeout bounds each read only, and a server
    that trickles a byte at a time would hold the worker for good."""
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            # A server that ignores max_tokens must not fill the arena (and every page that
            # shows the answer) with megabytes.
            raise BackendResponseError(
                f"{url} answered with more than {MAX_RESPONSE_BYTES // 1_000_000} MB", url=url
            )
        if time.perf_counter() > deadline:
            raise BackendUnavailable(too_slow, url=url)
    if response.length:  # fewer bytes than its Content-Length: cut off, not a bad answer
        raise BackendUnavailable(
            f"{url} closed the connection {response.length} bytes before the end", url=url
        )
    return b"".join(chunks)


# Pauses between tries of a transient failure: doubling from 1 s, and never longer than this
# even when a server's Retry-After asks for more (the job's own retry takes over then).
_FIRST_PAUSE_S = 1.0
_LONGEST_PAUSE_S = 30.0


def _pause(error: BackendUnavailable, attempt: int) -> float:
    if error.retry_after is not None:
        return min(max(error.retry_after, 0.0), _LONGEST_PAUSE_S)
    return min(_FIRST_PAUSE_S * 2**attempt, _LONGEST_PAUSE_S)


def _first_choice(body: Mapping[str, Any], url: str) -> Mapping[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BackendResponseError(f"{url} answered without a non-empty `choices` list", url=url)
    return choices[0]


def _http_error(error: urllib.error.HTTPError, url: str) -> Exception:
    try:
        detail = _excerpt(error.read())
    except (OSError, HTTPException):
        detail = ""
    message = f"{url} answered HTTP {error.code}: {detail}".rstrip(": ")
    if error.code >= 500 or error.code in _TRANSIENT_STATUSES:
        retry_after = _seconds(error.headers.get("Retry-After") if error.headers else None)
        return BackendUnavailable(message, url=url, status_code=error.code, retry_after=retry_after)
    if error.code in _REFUSED_REQUEST_STATUSES:
        return AnswerRefused(message, url=url, status_code=error.code)
    return BackendResponseError(message, url=url, status_code=error.code)


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (an HTTP date counts as unknown: servers send seconds)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _excerpt(raw: bytes) -> str:
    return raw[:_BODY_EXCERPT_CHARS].decode("utf-8", errors="replace")
