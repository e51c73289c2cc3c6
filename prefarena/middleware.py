"""Requests the app cannot serve, answered clearly: a lost database connection is a 503, a NUL
character in the query or form a 400, never a 500 page."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh


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


class HtmxPageErrorMiddleware:
    """An htmx request answered by a whole error page reloads the page instead of swapping it.

    htmx swaps 4xx answers (the arena's refused-vote messages and the leaderboard's filter
    errors are fragments made for that). A whole page, though, such as the CSRF failure after
    logging in or out in another tab, or "Not allowed" once the session has ended, would be
    nested inside the page that asked, under a second header. For those the answer becomes
    `HX-Refresh`: the browser reloads, and the full page (or the login) shows as it would
    without htmx; a redirect to the login page becomes `HX-Redirect` there. Sits above the
    CSRF middleware, whose refusals it must see.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.headers.get("HX-Request") != "true":
            return response
        location = response.get("Location", "")
        if response.status_code in (301, 302) and location.startswith(
            resolve_url(settings.LOGIN_URL)
        ):
            # The browser would follow it and swap the login page into the pair: go there.
            return HttpResponseClientRedirect(location)
        if not 400 <= response.status_code < 500:
            return response
        if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
            return response
        if b"<html" not in response.content[:2000].lower():
            return response  # a fragment, made to be swapped
        return HttpResponseClientRefresh()
