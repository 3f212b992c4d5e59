from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookshield.core.errors import Code, ConfigurationError, Rejection
from hookshield.core.payload import InputRules, Schema, read_body

RULES = InputRules(max_body=1024, max_depth=4, max_keys=10)


def head(
    method: str = "POST", ctype: str = "application/json", length: str | None = "2"
) -> Rejection | None:
    return RULES.check_head(method, ctype, length)


def test_a_plain_json_post_passes_the_head_checks() -> None:
    assert head() is None
    assert head(ctype="application/json; charset=utf-8") is None
    assert head(ctype="Application/JSON; Charset=UTF-8") is None
    assert head(length=None) is None  # chunked: the limit applies while reading


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_get_405_with_allow(method: str) -> None:
    refused = head(method=method)
    assert refused is not None
    assert refused.code is Code.METHOD_NOT_ALLOWED
    assert refused.status == 405
    assert ("Allow", "POST") in refused.headers


@pytest.mark.parametrize(
    "ctype",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_other_content_types_get_415(ctype: str) -> None:
    refused = head(ctype=ctype)
    assert refused is not None
    assert refused.code is Code.UNSUPPORTED_MEDIA_TYPE


def test_a_declared_length_above_max_body_is_refused_before_reading() -> None:
    refused = head(length="1025")
    assert refused is not None
    assert refused.code is Code.BODY_TOO_LARGE
    assert refused.status == 413
    assert head(length="1024") is None
    for lying_length in ("12abc", "-5", "+70", " 70", "7_0", "\u0667\u0660"):  # Arabic-Indic 70
        lying = head(length=lying_length)
        assert lying is not None, lying_length
        assert lying.code is Code.MALFORMED_BODY


def test_a_length_of_any_number_of_digits_is_decided_without_error() -> None:
    # int() refuses more than 4300 digits: such a length is too large, not a guard failure.
    for huge in ("9" * 5000, "1" + "0" * 4400):
        refused = head(length=huge)
        assert refused is not None
        assert refused.code is Code.BODY_TOO_LARGE
        assert "9999" not in refused.message  # the digits are counted, not echoed
        assert "0000" not in refused.message
    assert head(length="0" * 5000 + "1024") is None  # leading zeros do not make it larger
    too_large = head(length="0" * 5000 + "1025")
    assert too_large is not None
    assert too_large.code is Code.BODY_TOO_LARGE


class Endless:
    """A body that never ends (a chunked upload, or a Content-Length that lies)."""

    def __init__(self) -> None:
        self.asked = 0

    def read(self, size: int) -> bytes:
        self.asked += size
        return b"x" * size


def test_reading_stops_one_byte_past_the_limit() -> None:
    endless = Endless()
    refused = read_body(endless.read, 1024)
    assert isinstance(refused, Rejection)
    assert refused.code is Code.BODY_TOO_LARGE
    assert endless.asked == 1025
    assert read_body(io.BytesIO(b"x" * 1024).read, 1024) == b"x" * 1024


def test_a_declared_body_is_read_in_one_call_and_never_past_the_limit() -> None:
    calls: list[int] = []

    def reader(data: bytes, step: int) -> Callable[[int], bytes]:
        stream = io.BytesIO(data)

        def read(size: int) -> bytes:
            calls.append(size)
            return stream.read(min(size, step))

        return read

    assert read_body(reader(b"x" * 70, 1024), 1024, declared=70) == b"x" * 70
    assert calls == [1025]  # one call: no read spent to hear the end of the declared body
    calls.clear()
    # Short reads (a slow client): read on until the declared length is in.
    assert read_body(reader(b"x" * 70, 30), 1024, declared=70) == b"x" * 70
    assert calls == [1025, 995, 965]
    calls.clear()
    # A body shorter than declared (the client lied or left) ends where the stream does.
    assert read_body(reader(b"x" * 10, 1024), 1024, declared=70) == b"x" * 10
    calls.clear()
    # An endless stream behind a declared length never makes it read past MAX_BODY + 1.
    refused = read_body(Endless().read, 1024, declared=None)
    assert isinstance(refused, Rejection)
    endless = Endless()
    assert isinstance(read_body(endless.read, 1024, declared=1024), Rejection)
    assert endless.asked == 1025


def test_a_client_gone_mid_body_is_a_400_not_an_error() -> None:
    def gone(size: int) -> bytes:
        raise ConnectionResetError("peer went away")

    refused = read_body(gone, 1024)
    assert isinstance(refused, Rejection)
    assert refused.code is Code.MALFORMED_BODY
    assert refused.status == 400


def parse(
    body: bytes, rules: InputRules = RULES, ctype: str = "application/json"
) -> tuple[Any, Rejection | None]:
    return rules.parse(ctype, body)


def test_valid_json_is_parsed_once() -> None:
    document, refused = parse(b'{"type": "invoice.paid", "data": {"id": 1, "lines": [1, 2]}}')
    assert refused is None
    assert document["data"]["lines"] == [1, 2]


def test_json_for_json_suffix_types_and_nothing_for_others() -> None:
    assert parse(b'{"a": 1}', ctype="application/cloudevents+json")[0] == {"a": 1}
    assert parse(b"a=1", ctype="application/x-www-form-urlencoded") == (None, None)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"a": "\xff"}', "not UTF-8"),
        (b'{"a": 1, "a": 2}', "repeats a key"),
        (b'{"a": {"b": 1, "b": 1}}', "repeats a key"),
        (json.dumps({f"k{i}": i for i in range(11)}).encode(), "more than 10 keys"),
        (b'{"a": {"b": {"c": {"d": {"e": 1}}}}}', "depth 5 exceeds MAX_JSON_DEPTH 4"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"a": 1', "not valid JSON at char"),
        (b"", "not valid JSON"),
    ],
)
def test_hostile_json_is_refused_with_400(body: bytes, fragment: str) -> None:
    document, refused = parse(body, InputRules(max_body=10**6, max_depth=4, max_keys=10))
    assert document is None
    assert refused is not None
    assert refused.code is Code.MALFORMED_BODY
    assert refused.status == 400
    assert fragment in refused.reason
    assert fragment in refused.message  # input reasons are shown to the sender


@pytest.mark.parametrize(
    "text",
    [
        ' \t\r\n{"a": 1}\n ',  # JSON whitespace around the document is allowed
        '{"a": 1} x',  # extra data: its position, after the whitespace that precedes it
        '{"a": 1}\n\n{"b": 2}',
        '  {"a": 1',  # truncated: positions count the leading whitespace
        "[1, \n",  # truncated after whitespace: the end of the body
        '\x0c{"a": 1}',  # form feed and other Unicode spaces are not JSON whitespace
        '{"a": 1}\u00a0',
        "   ",
    ],
)
def test_whitespace_and_error_positions_are_the_json_modules(text: str) -> None:
    """The guard skips JSON's whitespace itself: it must accept and place errors exactly as
    json.loads does."""
    document, refused = parse(text.encode())
    try:
        expected: tuple[Any, str | None] = (json.loads(text), None)
    except json.JSONDecodeError as exc:
        expected = (None, f"body is not valid JSON at char {exc.pos}")
    assert (document, refused and refused.reason) == expected


def test_colons_in_values_do_not_count_as_keys_but_repeats_are_still_refused() -> None:
    # More colons than MAX_JSON_KEYS: the parser that counts keys exactly takes over.
    rules = InputRules(max_body=10**6, max_depth=4, max_keys=3)
    times = b'{"at": "12:00:00", "until": "13:00:00"}'
    assert parse(times, rules) == ({"at": "12:00:00", "until": "13:00:00"}, None)
    _, refused = parse(b'{"at": "12:00:00", "at": "13:00:00"}', rules)
    assert refused is not None
    assert "repeats a key" in refused.reason
    _, refused = parse(b'{"a": ":", "b": ":", "c": ":", "d": ":"}', rules)
    assert refused is not None
    assert "more than 3 keys" in refused.reason


SCHEMA = {
    "type": "object",
    "required": ["type", "data"],
    "properties": {
        "type": {"enum": ["payment.succeeded"]},
        "data": {"type": "object", "properties": {"amount": {"type": "integer", "minimum": 0}}},
    },
}


def test_schema_violations_name_the_path_never_the_value() -> None:
    rules = InputRules(schema=Schema(SCHEMA, "SCHEMA"))
    assert parse(b'{"type": "payment.succeeded", "data": {"amount": 5}}', rules)[1] is None
    secret_value = "4111111111111111"
    body = json.dumps({"type": "payment.succeeded", "data": {"amount": secret_value}}).encode()
    document, refused = parse(body, rules)
    assert document is None
    assert refused is not None
    assert refused.code is Code.SCHEMA_VIOLATION
    assert refused.status == 422
    assert "$['data']['amount']" in refused.message
    assert "'type'" in refused.message
    assert secret_value not in refused.message
    assert secret_value not in refused.reason


def test_schema_paths_keep_sender_chosen_keys_short() -> None:
    schema = Schema({"type": "object", "additionalProperties": {"type": "integer"}}, "SCHEMA")
    key = "k" * 10_000
    _, refused = parse(json.dumps({key: "x"}).encode(), InputRules(schema=schema))
    assert refused is not None
    assert refused.code is Code.SCHEMA_VIOLATION
    assert f"$['{'k' * 64}...']" in refused.reason
    assert len(refused.reason) < 200


def test_schema_from_a_file(tmp_path: Any) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(SCHEMA))
    schema = Schema.load(str(path), "SCHEMA")
    assert schema.first_error({"type": "other", "data": {}}) == "$['type'] fails 'enum'"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="does not hold a JSON object"):
        Schema.load(str(path), "SCHEMA")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=256)
    | st.text(max_size=128).map(str.encode)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=3), children, max_size=3)
        ),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode())
)
def test_parse_never_raises(body: bytes) -> None:
    _, refused = parse(body, InputRules(max_depth=3, max_keys=5))
    assert refused is None or isinstance(refused, Rejection)
