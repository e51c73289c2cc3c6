"""Requests the app cannot serve, answered clearly: a lost database connection is a 503, a NUL
character in the query or form a 400, never a 500 page."""

from __future__ import annotations

from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        message = "The database is unavailable right now; nothing was saved. Please retry shortly."
        response = _refusal(request, message, 503)
        response["Retry-After"] = "5"
        return response


def _refusal(request: HttpRequest, message: str, status: int) -> HttpResponse:
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": message, "status": status}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain")


class NulCharacterMiddleware:
    """PostgreSQL's text and jsonb columns hold no NUL character, and no name, filter or
    choice of this app has one: a query parameter or form field with one is refused up front,
    as a 400, instead of failing inside a database lookup. (JSON bodies are checked by the API's
    serializers.)"""

    FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fields = [request.GET]
        if request.method == "POST" and request.content_type in self.FORMS:
            fields.append(request.POST)
        for query in fields:
            for key, values in query.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    return _refusal(request, "NUL (\\u0000) characters are not allowed.", 400)
        return self.get_response(request)
