"""The OpenAPI schema: every operation documents the JSON errors it can answer, and the schema
itself comes as YAML or JSON."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in one sentence."},
        "status": {"type": "integer"},
        "errors": {
            "description": "Field errors: {field: [messages]}, per item for bulk requests.",
        },
    },
    "required": ["detail", "status"],
}
REASONS = {
    "400": "Invalid input; `detail` says what, `errors` which fields.",
    "401": "Not authenticated: send `Authorization: Token <key>` or log in.",
    "403": "Your role in this project does not allow this.",
    "404": "No such project or object (or not one you may see).",
}
VOTE_REASONS = {
    "403": "This account may no longer vote.",
    "404": "This pair was not served to you.",
    "409": "Already voted on this pair, or it expired and filled up.",
    "429": "Too many votes; `Retry-After` says when to try again.",
}
BODY_REASONS = {
    "415": "The body's Content-Type is missing or not one this operation reads.",
}


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            reasons = dict(REASONS)
            if path.endswith("/votes/") and method == "post":
                reasons.update(VOTE_REASONS)
            if "requestBody" in operation:
                reasons.update(BODY_REASONS)
            if path.endswith("/cancel/") and method == "post":
                reasons["409"] = "It had already ended (done, failed or cancelled)."
            responses = operation.setdefault("responses", {})
            for code, text in reasons.items():
                responses.setdefault(code, {"description": text, "content": reference})
    return result


class SchemaFormatNegotiation(DefaultContentNegotiation):
    """`?format=json` or `?format=yaml` picks the schema's renderer, as the Accept header does.

    URL_FORMAT_OVERRIDE is off for the whole API, where ?format= names an export format, so the
    schema view reads the parameter itself.
    """

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        wanted = format_suffix or request.query_params.get("format")
        return super().select_renderer(request, renderers, wanted)
