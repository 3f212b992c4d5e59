"""``--header 'Name: value'``, as ``scan`` and ``send`` take it."""

from __future__ import annotations

import argparse
import re

__all__ = ["header"]

_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


def header(text: str) -> tuple[str, str]:
    """(name, value) of ``'Name: value'``; an argparse type. The value may be a secret (an API
    key, basic auth): an error never shows it."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _NAME.fullmatch(name) or "\r" in value or "\n" in value:
        raise argparse.ArgumentTypeError("expected 'Name: value' (value not shown)")
    return name, value
