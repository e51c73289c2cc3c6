"""Parsing JSON from outside (a file's line, a server's answer, a request body) with one error.

`json.loads` raises `JSONDecodeError` on bad text but `RecursionError` on text that is only
nested too deeply (a few KB of "[[[[..."), which escaped every `except JSONDecodeError` as a
500 or a traceback. `loads` turns both into `JSONTextError`, a ValueError with a short `msg`.
"""

from __future__ import annotations

import json
import re
from typing import Any


class JSONTextError(ValueError):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


# What no text column can hold: PostgreSQL refuses NUL, and half of a UTF-16 pair ("\ud83d",
# as a cut emoji leaves in JSON) cannot be encoded to UTF-8 at all: stored on SQLite, it made
# every page that showed it a 500.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE = "holds a NUL character or an unpaired surrogate (say \\ud83d), which no text can store"


class UnstorableText(JSONTextError):
    """Valid JSON holding text that no column can store."""

    def __init__(self) -> None:
        super().__init__(UNSTORABLE)


def loads(text: str | bytes, *, storable: bool = False) -> Any:
    """The parsed value; with `storable`, one whose every string (keys too) can be stored as
    text, else UnstorableText."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONTextError(exc.msg) from exc
    except RecursionError as exc:
        raise JSONTextError("nested too deeply") from exc
    if storable and not is_storable(value):
        raise UnstorableText()
    return value


def is_storable(value: Any) -> bool:
    """Whether every string in `value` (a parsed JSON value) can be stored as text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def storable_text(text: str) -> str:
    """`text` with what no column can hold replaced by U+FFFD (for text a model generated)."""
    return _UNSTORABLE.sub("\ufffd", text)
