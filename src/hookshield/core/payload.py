"""Strict input: method, content type, size (before and while reading), JSON once, JSON Schema.

Every parser here has bounded cost: the body is read in chunks up to ``MAX_BODY`` + 1 bytes and
never further; JSON is decoded once with the standard library's C parser, whose recursion guard
turns hostile nesting into an error, and the depth and key counts are then checked without
recursion. Error reasons name what failed (a JSON path, a limit) and never echo a value.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from hookshield.core.errors import Code, ConfigurationError, Rejection

__all__ = ["InputRules", "Schema", "read_body"]

CHUNK = 64 * 1024
_JSON_TYPES = ("application/json",)


@functools.lru_cache(maxsize=256)
def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    # Callers send the same few Content-Type values; parse each once. (Callers must not mutate
    # the returned dict.)
    media, _, rest = content_type.partition(";")
    params = {}
    for part in rest.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            params[key.strip().lower()] = value.strip().strip('"').lower()
    return media.strip().lower(), params


def _shortened(key: str, limit: int = 64) -> str:
    # A path names keys the sender chose; a reason quoting one stays short all the same.
    return key if len(key) <= limit else key[:limit] + "..."


def is_json(media: str) -> bool:
    return media in _JSON_TYPES or media.endswith("+json")


class Schema:
    """A JSON Schema compiled once; ``errors`` names failing paths, never values."""

    def __init__(self, schema: dict[str, Any], where: str) -> None:
        cls = validator_for(schema, default=Draft202012Validator)
        try:
            cls.check_schema(schema)
        except SchemaError as exc:
            raise ConfigurationError(f"{where} is not a valid JSON Schema: {exc.message}") from exc
        self._validator = cls(schema)

    @classmethod
    def load(cls, value: str | Path | dict[str, Any], where: str) -> Schema:
        if isinstance(value, dict):
            return cls(value, where)
        try:
            loaded = json.loads(Path(value).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"{where} = {str(value)!r} cannot be read as JSON: {exc}"
            ) from exc
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"{where} = {str(value)!r} does not hold a JSON object")
        return cls(loaded, where)

    def first_error(self, document: Any) -> str | None:
        error = next(iter(self._validator.iter_errors(document)), None)
        if error is None:
            return None
        path = "$" + "".join(
            f"[{_shortened(p)!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path
        )
        # The validator keyword says what rule failed; the message would quote the value.
        return f"{path} fails '{error.validator}'"


@dataclass(frozen=True, slots=True)
class InputRules:
    methods: frozenset[str] = frozenset({"POST"})
    content_types: tuple[str, ...] = ("application/json",)
    max_body: int = 256 * 1024
    max_depth: int = 32
    max_keys: int = 1000
    schema: Schema | None = None

    # -- before reading -------------------------------------------------------------------------

    def check_head(
        self, method: str, content_type: str, content_length: str | None
    ) -> Rejection | None:
        head = self.admit_head(method, content_type, content_length)
        return head if isinstance(head, Rejection) else None

    def admit_head(
        self, method: str, content_type: str, content_length: str | None
    ) -> tuple[bool, int | None] | Rejection:
        """Whether the body is JSON, and its declared length; or why it is refused unread."""
        if method.upper() not in self.methods:
            allowed = ", ".join(sorted(self.methods))
            return _refuse(
                Code.METHOD_NOT_ALLOWED, f"allowed: {allowed}", headers=(("Allow", allowed),)
            )
        media, params = _media_type(content_type)
        if media not in self.content_types:
            return _refuse(
                Code.UNSUPPORTED_MEDIA_TYPE, f"accepted: {', '.join(self.content_types)}"
            )
        json_body = is_json(media)
        charset = params.get("charset")
        if charset is not None and json_body and charset not in ("utf-8", "utf8"):
            return _refuse(Code.UNSUPPORTED_MEDIA_TYPE, "the charset must be utf-8")
        if not content_length:
            return json_body, None
        length = self._declared_length(content_length)
        return length if isinstance(length, Rejection) else (json_body, length)

    def _declared_length(self, content_length: str) -> int | Rejection:
        # Digits only: int() would also take a sign, spaces, underscores and other scripts.
        if not (content_length.isascii() and content_length.isdigit()):
            return _refuse(Code.MALFORMED_BODY, "Content-Length is not a number")
        # More digits than MAX_BODY has is too large before int() (which refuses to read more
        # than 4300 digits) is asked.
        digits = content_length.lstrip("0") or "0"
        if len(digits) > len(str(self.max_body)) or int(digits) > self.max_body:
            shown = digits if len(digits) <= 20 else f"of {len(digits)} digits"
            return _refuse(
                Code.BODY_TOO_LARGE, f"Content-Length {shown} exceeds MAX_BODY {self.max_body}"
            )
        return int(digits)

    # -- after reading --------------------------------------------------------------------------

    def parse(self, content_type: str, body: bytes) -> tuple[Any, Rejection | None]:
        """The parsed JSON (None for other media types), or why the body is refused."""
        return self.parse_body(is_json(_media_type(content_type)[0]), body)

    def parse_body(self, json_body: bool, body: bytes) -> tuple[Any, Rejection | None]:
        """``parse`` once ``admit_head`` has said whether the body is JSON."""
        if not json_body:
            return None, None
        document, refused = self._decode(body)
        if refused is not None:
            return None, refused
        # Depth cannot exceed the number of '{' and '[' in the body: counting them is C-speed and
        # spares the walk for the usual small payloads.
        openers = body.count(b"{") + body.count(b"[")
        depth = _depth(document) if openers > self.max_depth else openers
        if depth > self.max_depth:
            return None, _refuse(
                Code.MALFORMED_BODY, f"JSON depth {depth} exceeds MAX_JSON_DEPTH {self.max_depth}"
            )
        if self.schema is not None:
            failure = self.schema.first_error(document)
            if failure is not None:
                return None, _refuse(Code.SCHEMA_VIOLATION, failure)
        return document, None

    def _decode(self, body: bytes) -> tuple[Any, Rejection | None]:
        """Strict JSON: UTF-8, no repeated keys, at most ``max_keys`` keys, no NaN/Infinity."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, _refuse(Code.MALFORMED_BODY, f"body is not UTF-8 (byte {exc.start})")
        # Keys cannot outnumber the body's colons, nor a third of its bytes (two quotes and a
        # colon each): below the limit the shared decoder, which only refuses repeated keys,
        # does; above it, a decoder of its own counts them.
        many = len(body) > 3 * self.max_keys and body.count(b":") > self.max_keys
        decoder = _counting(self.max_keys) if many else _DECODER
        # JSON's whitespace is these four characters (str.strip() alone would take more); skipping
        # it and checking the end here spares decode()'s two regular-expression matches.
        document_text = text.lstrip(_JSON_SPACE)
        try:
            document, end = decoder.raw_decode(document_text)
            if end != len(document_text):
                extra = document_text[end:].lstrip(_JSON_SPACE)
                if extra:
                    at = len(document_text) - len(extra)
                    raise json.JSONDecodeError("Extra data", document_text, at)
            return document, None
        except RecursionError:
            return None, _refuse(Code.MALFORMED_BODY, "JSON nesting exceeds the parser's limit")
        except _TooManyKeys:
            return None, _refuse(Code.MALFORMED_BODY, f"JSON has more than {self.max_keys} keys")
        except _DuplicateKey as exc:
            return None, _refuse(Code.MALFORMED_BODY, f"JSON object repeats a key ({exc})")
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers of huge length
            lead = len(text) - len(document_text)  # positions count in the whole body
            where = f" at char {exc.pos + lead}" if isinstance(exc, json.JSONDecodeError) else ""
            return None, _refuse(Code.MALFORMED_BODY, f"body is not valid JSON{where}")


def read_body(
    read: Callable[[int], bytes], max_body: int, declared: int | None = None
) -> bytes | Rejection:
    """Read at most ``max_body`` bytes; one byte more and the rest is never read.

    ``declared``: the Content-Length. Once that many bytes are in, the body is complete
    (whatever follows is not this request's), so no read is spent to hear the end of it.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = read(min(CHUNK, max_body + 1 - total))
        except OSError:  # the client went away mid-body (Django: UnreadablePostError)
            return _refuse(Code.MALFORMED_BODY, "the body could not be read to its end")
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_body:
            return _refuse(Code.BODY_TOO_LARGE, f"body exceeds MAX_BODY {max_body}")
        if total == declared:
            return b"".join(chunks)  # one chunk: that very object, not a copy


def _refuse(code: Code, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> Rejection:
    # Input reasons name a limit, a position or a JSON path, never a value: shown to the sender.
    return Rejection(code, reason, headers=headers, public=True)


class _TooManyKeys(Exception):
    pass


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that refuses an object repeating a key."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey(f"{len(pairs) - len(result)} repeated")
    return result


class _KeyCounter:
    """``object_pairs_hook`` that also counts keys across the document."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit

    def __call__(self, pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        self.remaining -= len(pairs)
        if self.remaining < 0:
            raise _TooManyKeys
        return _unique_keys(pairs)


_JSON_SPACE = " \t\n\r"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Building a decoder (and its C scanner) costs more than decoding a small webhook payload, so the
# stateless one is made once; like the json module's default decoder, it is safe to share.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constants)


def _counting(limit: int) -> json.JSONDecoder:
    return json.JSONDecoder(object_pairs_hook=_KeyCounter(limit), parse_constant=_no_constants)


def _depth(document: Any) -> int:
    """Nesting depth of containers, without recursion (only containers are ever stacked)."""
    if not isinstance(document, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(document, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
