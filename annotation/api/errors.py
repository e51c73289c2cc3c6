"""Every API error is JSON: {"detail": "what went wrong", "status": 400, ...}."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class Conflict(APIException):
    """409: the request clashes with the object's state (say, cancelling a job that ended)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data:
        body = {"detail": str(data["detail"]), "status": response.status_code}
    elif isinstance(data, list) and all(isinstance(item, str) for item in data):
        body = {"detail": " ".join(data), "status": response.status_code}
    elif isinstance(data, dict) and set(data) == {"non_field_errors"}:
        body = {
            "detail": " ".join(map(str, data["non_field_errors"])),
            "status": response.status_code,
        }
    else:
        # Field errors: {"field": ["message"]}, or one such object per row of a bulk request.
        body = {"detail": _summary(data), "status": response.status_code, "errors": data}
    response.data = body
    return response


@csrf_exempt  # changes nothing: a POST with a session cookie gets the JSON 404, not a CSRF page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse({"detail": "No such API endpoint.", "status": 404}, status=404)


def api_bad_request(request: HttpRequest) -> JsonResponse:
    """What Django refuses before the API sees the request (a body over the upload limits,
    too many fields, a bad Host header): JSON like every other API error."""
    return JsonResponse(
        {
            "detail": "The request could not be read: it is too large, has too many fields, "
            "or is malformed.",
            "status": 400,
        },
        status=400,
    )


def api_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"detail": "Internal error; it was logged. Please retry or report it.", "status": 500},
        status=500,
    )


def _summary(errors: object) -> str:
    """One line naming the first problem, so clients that print `detail` say something useful."""
    if isinstance(errors, list):
        for index, item in enumerate(errors):
            if item:
                return f"Invalid input in item {index}: {_summary(item)}"
    if isinstance(errors, dict):
        for field, problems in errors.items():
            first = problems[0] if isinstance(problems, list) and problems else problems
            if isinstance(first, dict | list):
                return f"{field}: {_summary(first)}"
            return f"{field}: {first}"
    return "Invalid input."
