"""Request body parsers of the API."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from prefarena import jsontext


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested too deeply (a few KB of "[[[[...") a 400 like any
    other bad JSON: `json.load` raises RecursionError there, which DRF let through as a 500.
    Text no column can hold (half of a UTF-16 pair, "\\ud83d"; or a NUL) is a 400 too."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
        if not jsontext.is_storable(data):
            raise ParseError(f"JSON parse error - the body {jsontext.UNSTORABLE}")
        return data
