"""URL converters shared by the apps."""

from __future__ import annotations

from django.urls import register_converter


class DatabaseIdConverter:
    """`<id:pk>`: a row id in a URL. At most 18 digits, so it always fits a bigint: Django's
    `<int:>` takes any length, and a 23-digit id overflowed the database driver (a 500, not
    the 404 of an id that does not exist)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(DatabaseIdConverter, "id")
