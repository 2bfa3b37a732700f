"""Canonical JSON (RFC 8785 / JCS) and hashing for everything the ledger signs or hashes.

Ledger documents hold only strings, integers within the IEEE-754 safe range, booleans,
null, lists and objects with string keys (money and energy are never floats). For that domain
JCS output equals ``json.dumps`` with sorted keys, no whitespace and no ASCII escaping, as long
as every key is in the Basic Multilingual Plane (JCS sorts keys by UTF-16 code units, Python by
code points; they agree there). The fast path produces exactly that text with ``orjson``
(sorted keys, compact, UTF-8, the same escapes), about ten times quicker than the standard
library; anything else falls back to the ``rfc8785`` library. Tests check the two agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson
import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
_SORTED = orjson.OPT_SORT_KEYS


class CanonicalError(ValueError):
    pass


def _check(value: Any) -> bool:
    """Validate the ledger domain; return True if the fast path applies (no key outside the
    BMP). Recursive with exact-type dispatch, leaves checked inline (most nodes are leaves):
    this runs for every hash the ledger computes."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalError(f"integer {value} is outside the JSON safe range")
        return True
    if kind is dict:
        try:  # the common case in one C loop: every key text, and ASCII
            fast = all(map(str.isascii, value))
        except TypeError:  # a key that is not text: the loop below names it
            fast = False
        if not fast:
            fast = True
            for key in value:
                if type(key) is not str and not isinstance(key, str):  # the exact-type test first: it is cheaper
                    raise CanonicalError(f"object key {key!r} is not a string")
                if not key.isascii() and any(ord(ch) > 0xFFFF for ch in key):
                    fast = False
        return _check_items(value.values()) and fast
    if kind is list or kind is tuple:
        return _check_items(value)
    return _check_subclass(value)


def _check_items(items: Any) -> bool:
    """``_check`` over a container's items, leaves inline (most items are leaves)."""
    fast = True
    for sub in items:
        kind = type(sub)
        if kind is str or sub is None or kind is bool:
            continue
        if kind is int and -MAX_SAFE_INTEGER <= sub <= MAX_SAFE_INTEGER:
            continue
        if not _check(sub):
            fast = False
    return fast


def _check_subclass(value: Any) -> bool:
    if isinstance(value, float):
        raise CanonicalError("floats are not allowed in ledger documents")
    if isinstance(value, (str, bool)):
        return True
    if isinstance(value, int):
        return _check(int(value))
    if isinstance(value, dict):
        return _check(dict(value))
    if isinstance(value, (list, tuple)):
        return _check(list(value))
    raise CanonicalError(f"{type(value).__name__} is not allowed in ledger documents")


def canonical_json(value: Any, *, checked: bool = False) -> bytes:
    """``checked=True``: the caller vouches that ``value`` is inside the fast-path domain
    (already checked, or parsed from JSON text that ``json_text_in_fast_domain`` accepted)."""
    try:
        if checked or _check(value):
            return orjson.dumps(value, option=_SORTED)
        return rfc8785.dumps(value)
    except orjson.JSONEncodeError as exc:  # a lone surrogate has no UTF-8 (and no JCS) form
        raise CanonicalError(f"text is not valid Unicode: {exc}") from exc
    except UnicodeEncodeError as exc:
        raise CanonicalError(f"text is not valid Unicode: {exc.reason}") from exc
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalError(str(exc)) from exc


_LONG_NUMBER = re.compile(r"\d{16,}")


def _no_floats(text: str) -> Any:
    raise CanonicalError(f"floats are not allowed in ledger documents ({text})")


_DECODER = json.JSONDecoder(parse_float=_no_floats, parse_constant=_no_floats)


def loads_ledger_json(text: str | bytes | None) -> tuple[Any, bool]:
    """Parse stored JSON; returns (value, in fast domain). Floats are refused while parsing.
    ASCII text cannot hold a key outside the BMP, and without a 16-digit run no integer can
    leave the safe range, so such text needs no second walk before ``canonical_json``."""
    if text is None:
        return None, True
    if not isinstance(text, (str, bytes)):  # a driver that already decoded JSON
        return text, _check(text)
    if isinstance(text, bytes):
        text = text.decode()
    value = _DECODER.decode(text)
    return value, text.isascii() and not _LONG_NUMBER.search(text)


def json_text(value: Any) -> str:
    """JSON text of a value for a ``jsonb`` column (any key order; PostgreSQL normalises it)."""
    return orjson.dumps(value).decode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    return sha256_hex(canonical_json(value))
