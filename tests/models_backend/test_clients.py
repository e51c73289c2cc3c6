"""The OpenAI-compatible client against a stub server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from models_backend.clients import EndpointConfig, OpenAICompatibleClient
from models_backend.errors import (
    BackendConfigurationError,
    BackendError,
    BackendResponseError,
    BackendUnavailable,
)
from models_backend.generation import GenerationSettings

SETTINGS = GenerationSettings(max_new_tokens=16, temperature=0, prompt_format="chat")
SLOW_SECONDS = 1.0

_CHAT_ANSWER = {
    "id": "cmpl-1",
    "model": "stub-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
_COMPLETION_ANSWER = {
    "model": "stub-model",
    "choices": [{"index": 0, "text": " Paris.\n", "finish_reason": "stop"}],
}


class _StubHandler(BaseHTTPRequestHandler):
    """Behaviour chosen by the first path segment: /ok, /slow, /garbage, /missing, /error, /bad."""

    requests: list[dict[str, object]]  # set per server, see stub_server
    busy_left: dict[str, int]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.requests.append(
            {"path": self.path, "body": body, "authorization": self.headers.get("Authorization")}
        )
        mode = self.path.split("/")[1]
        if mode == "slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, json.dumps(_CHAT_ANSWER).encode())
        elif mode == "garbage":
            self._send(200, b"<html>502 Bad Gateway</html>", content_type="text/html")
        elif mode == "missing":
            self._send(200, json.dumps({"id": "x", "choices": []}).encode())
        elif mode == "error":
            self._send(500, b'{"error": "CUDA out of memory"}')
        elif mode == "bad":
            self._send(400, b'{"error": "unknown model"}')
        elif mode in ("busy", "drip", "cut"):
            getattr(self, f"_{mode}")()
        elif self.path.endswith("/chat/completions"):
            self._send(200, json.dumps(_CHAT_ANSWER).encode())
        else:
            self._send(200, json.dumps(_COMPLETION_ANSWER).encode())

    def _busy(self) -> None:
        """/busy/N/...: 429 with Retry-After for the first N requests, then the answer."""
        left = self.busy_left.setdefault(self.path, int(self.path.split("/")[2]))
        if left > 0:
            self.busy_left[self.path] = left - 1
            self._send(429, b'{"error": "rate limited"}', retry_after="0.2")
        else:
            self._send(200, json.dumps(_CHAT_ANSWER).encode())

    def _drip(self) -> None:
        """A byte at a time, each well within the socket timeout."""
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _cut(self) -> None:
        """Promises 1000 bytes, sends 13 and hangs up."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b'{"choices": [')
        self.close_connection = True

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        retry_after: str | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout case): nothing to answer

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture(scope="module")
def stub_server() -> Iterator[tuple[str, list[dict[str, object]]]]:
    requests: list[dict[str, object]] = []
    handler = type("Handler", (_StubHandler,), {"requests": requests, "busy_left": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def _client(base: str, mode: str, **config: object) -> OpenAICompatibleClient:
    """A client that gives up at the first transient failure unless `retries` says otherwise."""
    config.setdefault("retries", 0)
    return OpenAICompatibleClient(
        EndpointConfig(base_url=f"{base}/{mode}/v1", model="stub-model", **config)  # type: ignore[arg-type]
    )


def test_chat_answer_is_parsed(stub_server: tuple[str, list]) -> None:
    base, requests = stub_server

    result = _client(base, "ok").chat([{"role": "user", "content": "Capital of France?"}], SETTINGS)

    assert result.text == "Paris."
    assert (result.prompt_tokens, result.completion_tokens) == (9, 2)
    assert result.finish_reason == "stop"
    assert result.latency_s > 0
    sent = requests[-1]
    assert sent["path"] == "/ok/v1/chat/completions"
    assert sent["body"]["model"] == "stub-model"
    assert sent["body"]["max_tokens"] == 16
    assert sent["body"]["seed"] == 0
    assert "repetition_penalty" not in sent["body"]  # 1.0 is not sent: OpenAI rejects it


def test_plain_prompt_format_uses_completions_with_the_local_template(
    stub_server: tuple[str, list],
) -> None:
    base, requests = stub_server
    plain = GenerationSettings(max_new_tokens=16, temperature=0, prompt_format="plain")

    result = _client(base, "ok").generate("Capital of France?", plain)

    assert result.text == "Paris."
    assert result.prompt_tokens is None  # no usage in the answer
    assert requests[-1]["path"] == "/ok/v1/completions"
    assert requests[-1]["body"]["prompt"] == "Question: Capital of France?\n\nAnswer:"


def test_api_key_is_read_from_the_named_variable(
    stub_server: tuple[str, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, requests = stub_server
    monkeypatch.setenv("STUB_API_KEY", "sk-test-123")
    client = _client(base, "ok", api_key_env="STUB_API_KEY")

    client.generate("Hi", SETTINGS)

    assert requests[-1]["authorization"] == "Bearer sk-test-123"
    assert "sk-test-123" not in repr(client.config)


def test_unset_api_key_variable_is_a_configuration_error(
    stub_server: tuple[str, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = stub_server
    monkeypatch.delenv("STUB_MISSING_KEY", raising=False)

    with pytest.raises(BackendConfigurationError, match="STUB_MISSING_KEY"):
        _client(base, "ok", api_key_env="STUB_MISSING_KEY").generate("Hi", SETTINGS)


def test_timeout_is_unavailable(stub_server: tuple[str, list]) -> None:
    base, _ = stub_server

    started = time.perf_counter()
    with pytest.raises(BackendUnavailable, match=r"did not answer within 0\.2s"):
        _client(base, "slow", timeout_s=0.2).generate("Hi", SETTINGS)
    assert time.perf_counter() - started < SLOW_SECONDS


def test_garbage_is_a_response_error(stub_server: tuple[str, list]) -> None:
    base, _ = stub_server

    with pytest.raises(BackendResponseError, match=r"not JSON.*Bad Gateway"):
        _client(base, "garbage").generate("Hi", SETTINGS)


def test_missing_fields_are_a_response_error(stub_server: tuple[str, list]) -> None:
    base, _ = stub_server

    with pytest.raises(BackendResponseError, match="choices"):
        _client(base, "missing").generate("Hi", SETTINGS)


def test_server_error_is_unavailable(stub_server: tuple[str, list]) -> None:
    base, _ = stub_server

    with pytest.raises(BackendUnavailable, match=r"HTTP 500.*out of memory") as caught:
        _client(base, "error").generate("Hi", SETTINGS)
    assert caught.value.status_code == 500


def test_client_error_is_not_retryable(stub_server: tuple[str, list]) -> None:
    base, _ = stub_server

    with pytest.raises(BackendResponseError, match="HTTP 400") as caught:
        _client(base, "bad").generate("Hi", SETTINGS)
    assert not isinstance(caught.value, BackendUnavailable)


def test_connection_refused_is_unavailable() -> None:
    # Bind and close a socket to get a port that nothing listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(BackendUnavailable, match="cannot reach"):
        _client(f"http://127.0.0.1:{port}", "ok", timeout_s=2).generate("Hi", SETTINGS)


def test_all_errors_share_one_base_class() -> None:
    for error in (BackendUnavailable, BackendResponseError, BackendConfigurationError):
        assert issubclass(error, BackendError)


def test_a_rate_limited_request_is_tried_again_after_the_servers_retry_after(
    stub_server: tuple[str, list],
) -> None:
    base, requests = stub_server
    before = len(requests)

    started = time.perf_counter()
    answer = _client(base, "busy/2", retries=3).generate("Hi", SETTINGS)

    assert answer.text == "Paris."
    assert len(requests) - before == 3  # two 429s, then the answer
    assert 0.4 <= time.perf_counter() - started < 5  # it waited the 0.2 s it was told, twice


def test_a_server_still_busy_after_the_retries_is_unavailable(
    stub_server: tuple[str, list],
) -> None:
    base, requests = stub_server
    before = len(requests)

    with pytest.raises(BackendUnavailable, match="HTTP 429") as caught:
        _client(base, "busy/5", retries=2).generate("Hi", SETTINGS)

    assert len(requests) - before == 3
    assert caught.value.retry_after == 0.2


def test_a_trickling_answer_is_cut_off_at_the_whole_request_timeout(
    stub_server: tuple[str, list],
) -> None:
    base, _ = stub_server

    started = time.perf_counter()
    with pytest.raises(BackendUnavailable, match=r"did not answer within 0\.5s"):
        _client(base, "drip", timeout_s=0.5).generate("Hi", SETTINGS)
    assert time.perf_counter() - started < 3  # not the 10 s the server would take


def test_an_answer_cut_off_mid_body_is_transient_not_a_bad_answer(
    stub_server: tuple[str, list],
) -> None:
    base, _ = stub_server

    with pytest.raises(BackendUnavailable):
        _client(base, "cut").generate("Hi", SETTINGS)
