"""The scanner keeps a bounded start of each answer, even from a target that never stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from hookshield.scanner.context import MAX_REPLY_BODY, _read_capped


class Endless(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"<p>" + b"x" * 8000 + b"</p>"
        try:
            for _ in range(100_000):  # ~800 MB if anyone read it all
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the scanner hung up, as it should

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endless() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_an_endless_answer_is_read_only_up_to_the_cap(endless: str) -> None:
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", endless, headers={"Accept-Encoding": "identity"}) as response,
    ):
        text = await _read_capped(response)
    assert len(text) == MAX_REPLY_BODY
    assert text.startswith("<p>xxx")


async def test_a_charset_python_does_not_know_falls_back_to_utf8(endless: str) -> None:
    async with httpx.AsyncClient() as client, client.stream("GET", endless) as response:
        response.headers["Content-Type"] = "text/html; charset=x-no-such-codec"
        text = await _read_capped(response)
    assert text.startswith("<p>")
