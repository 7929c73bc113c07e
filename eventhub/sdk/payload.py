"""Decoding JSON that came over the bus: one function, with a size and a depth limit.

Anyone can write to a topic, so every reader of bus JSON (the SDK consumer, the
dead-letter ingester, the collector's heartbeat reader, the edit-and-retry forms)
decodes through `decode_json`. It accepts UTF-8 JSON of at most `max_bytes`,
nested at most `max_depth` deep, with finite numbers and strings of valid Unicode
(I-JSON's rules, RFC 7493, but for duplicate names: the last wins, as in json.loads).
Everything else raises `PayloadDecodeError`, a ValueError whose message says why
and quotes no payload text (it travels in dead-letter headers).

Why each limit:
- depth: `json.loads` recurses once per level, so a value of 200 KB of `[` raises
  RecursionError (not a ValueError) and the code after it (jsonschema, Django's
  JSONField, templates) recurses too. The brackets are counted before parsing,
  without recursion, in C-speed passes over the bytes (fast on 5 MB);
- size: a reader holds the value, its text and the decoded objects at once;
- numbers: `1e999` decodes to inf and `NaN` to nan, which no JSON encoder with
  allow_nan=False and no PostgreSQL jsonb column takes back;
- strings: an escaped lone surrogate (`"\\ud800"`) decodes to a str that cannot be
  encoded as UTF-8, so the database or the next producer would refuse it.

Django-free, like the rest of the SDK.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import operator
import re
from typing import Any

MAX_BYTES = 1024 * 1024  # Kafka's default largest record; the dead-letter store keeps as much
MAX_DEPTH = 64  # arrays and objects inside each other; events rarely go past 10


class PayloadDecodeError(ValueError):
    """The value is not JSON a reader can take: empty, too big, too deep, not UTF-8, not JSON.

    For a JSON syntax error, `line`, `column` and `detail` (json's own words) say where.
    """

    __module__ = "eventhub.sdk"

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None, detail: str = ""):
        super().__init__(message)
        self.line, self.column, self.detail = line, column, detail


def decode_json(
    data: bytes | bytearray | memoryview | str | None, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """The JSON value in `data`; raises PayloadDecodeError, never RecursionError.

    1. Size first, before anything is copied or decoded.
    2. Strict UTF-8 (json.loads would guess UTF-16 or UTF-32 from bytes).
    3. Depth, counted on the bytes (see `nesting_exceeds`).
    4. json.loads, refusing NaN and Infinity, and checking numbers and strings.
    """
    if data is None:
        raise PayloadDecodeError("the record has no value")
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as error:
            raise PayloadDecodeError(
                f"the value is not valid Unicode: {error.reason} at character {error.start}"
            ) from None
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_bytes:
        raise PayloadDecodeError(f"the value is {size} bytes, over the limit of {max_bytes}")
    data = bytes(data)
    if not data:
        raise PayloadDecodeError("the value is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadDecodeError(f"the value is not UTF-8: {error.reason} at byte {error.start}") from None
    if nesting_exceeds(data, max_depth):
        raise PayloadDecodeError(f"the value nests arrays and objects deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:  # the depth check makes this unreachable; a reader must still never die of it
        raise PayloadDecodeError(f"the value nests arrays and objects deeper than {max_depth} levels") from None
    except json.JSONDecodeError as error:
        # json's messages hold positions only, never the text: safe to carry in headers.
        raise PayloadDecodeError(
            f"the value is not JSON: {error}", line=error.lineno, column=error.colno, detail=error.msg
        ) from None
    except ValueError as error:  # NaN, an out-of-range number, an integer of more than 4300 digits
        reason = "an integer has too many digits" if "digits" in str(error) else str(error)
        raise PayloadDecodeError(f"the value is not JSON: {reason}") from None
    if _SURROGATE_ESCAPE.search(data) and _has_lone_surrogate(value):
        raise PayloadDecodeError("the value is not valid Unicode: a string holds a lone surrogate (\\ud800-\\udfff)")
    return value


# --------------------------------------------------------------------------- depth without recursion
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# '[' weighs 2 and ']' 0: the running sum minus the count of brackets read is the depth.
_WEIGHTS = bytes.maketrans(b"[]", b"\x02\x00")
_SHRINK_PASSES = 4


def nesting_exceeds(data: bytes, max_depth: int) -> bool:
    """Whether a JSON parser reading `data` would go deeper than `max_depth` levels.

    Valid or not: a parser that stops at an error has recursed as deep as the
    brackets before it, so the depth of every prefix is what counts (brackets
    inside strings do not). All steps run in C over the bytes (UTF-8 never puts
    a bracket, quote or backslash byte inside a multi-byte character):
    1. no more openers than the limit: done (most values stop here);
    2. strings removed (`_outside_strings`), then all but brackets, `{}` made `[]`;
    3. up to four passes remove adjacent `[]` pairs, each lowering the deepest
       point by at most one: a remainder within max_depth - passes is within
       max_depth (flat documents shrink to nothing here);
    4. otherwise the exact running depth, stopping at the first level too deep.
    """
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    brackets = _outside_strings(data).translate(_SQUARE, _NOT_BRACKETS)
    remainder, passes = brackets, 0
    while passes < _SHRINK_PASSES:
        shorter = remainder.replace(b"[]", b"")
        if len(shorter) == len(remainder):
            break
        remainder, passes = shorter, passes + 1
    if not _deeper_than(remainder, max_depth - passes):
        return False
    return passes == 0 or _deeper_than(brackets, max_depth)


def _outside_strings(data: bytes) -> bytes:
    """`data` without its strings, as a parser reads them.

    Escaped backslashes go first, then escaped quotes: in a string a run of
    backslashes pairs up from its start, so this leaves every remaining quote a
    string delimiter. Outside strings a backslash is an error where the parser
    stops, so what is counted after it never matters. Then every other piece
    between quotes is a string. str.replace and split rather than a regular
    expression: a 5 MB value of short strings is half a million matches.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    if b'"' not in data:
        return data
    return b"".join(data.split(b'"')[::2])


def _deeper_than(brackets: bytes, limit: int) -> bool:
    """Whether the running depth of `brackets` (only `[` and `]`) goes past `limit`."""
    if limit < 0:
        return True  # depth 0, before the first bracket, is already past it
    if brackets.count(b"[") <= limit:
        return False
    depths = map(operator.sub, itertools.accumulate(brackets.translate(_WEIGHTS)), itertools.count(1))
    # dropwhile with a C predicate (limit >= depth) keeps the loop out of Python.
    return next(itertools.dropwhile(functools.partial(operator.ge, limit), depths), None) is not None


# --------------------------------------------------------------------------- numbers and strings
def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is out of range")
    return value


# A \u escape into the surrogate range; only then are the decoded strings looked at.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
