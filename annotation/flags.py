"""Yes/no values and ids from query strings, forms, JSON and the command line, read one way
everywhere."""

from __future__ import annotations

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


def parse_flag(value: object, name: str) -> bool:
    """True or False; ValueError naming ``name`` for anything else (say "maybe"), so a typo
    is an error rather than a silent False."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{name} must be true or false (1/0, yes/no, on/off), not {str(value)[:40]!r}")


def parse_id(value: object) -> int | None:
    """A database id from a string of ASCII digits that fits a bigint, else None ("²" passes
    `str.isdigit()` and `int()` refuses it; a huge number overflows the column)."""
    text = str(value) if value is not None else ""
    if not (text.isascii() and text.isdigit()) or int(text) >= 2**63:
        return None
    return int(text)
