"""Canonical JSON (RFC 8785 / JCS) and hashing for everything the ledger signs or hashes.

Ledger documents hold only strings, integers within the IEEE-754 safe range, booleans,
null, lists and objects with string keys (money and energy are never floats). For that domain
JCS output equals ``json.dumps`` with sorted keys, no whitespace and no ASCII escaping, as long
as every key is in the Basic Multilingual Plane (JCS sorts keys by UTF-16 code units, Python by
code points; they agree there). We use that fast path and fall back to the ``rfc8785`` library
for anything else; tests check the two agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    pass


def _check(value: Any) -> bool:
    """Validate the ledger domain; return True if the fast path applies."""
    fast = True
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) or item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise CanonicalError(f"integer {item} is outside the JSON safe range")
            continue
        if isinstance(item, float):
            raise CanonicalError("floats are not allowed in ledger documents")
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise CanonicalError(f"object key {key!r} is not a string")
                if fast and not key.isascii() and any(ord(ch) > 0xFFFF for ch in key):
                    fast = False
                stack.append(sub)
            continue
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        raise CanonicalError(f"{type(item).__name__} is not allowed in ledger documents")
    return fast


def canonical_json(value: Any) -> bytes:
    try:
        if _check(value):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return rfc8785.dumps(value)
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 (and no JCS) form
        raise CanonicalError(f"text is not valid Unicode: {exc.reason}") from exc
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalError(str(exc)) from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    return sha256_hex(canonical_json(value))
