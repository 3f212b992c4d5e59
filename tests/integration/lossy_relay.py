"""A TCP relay in front of a real Redis that can lose its answers.

With ``losing`` set, what a client sends still reaches Redis and runs, but Redis's answer is
thrown away and the client's connection closed: what a master that dies right after a command,
or a network cut between the command and its answer, does to a client. The client cannot know
whether its command ran. With ``cutting`` set, what a client sends is thrown away and its
connection closed: the command never runs. With ``delay`` above zero, answers arrive that many
seconds late: after the client's timeout, on the connection it timed out on. With ``released``
cleared, answers wait until it is set, and are lost if ``losing`` was set meanwhile.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


class LossyRelay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.losing = threading.Event()
        self.cutting = threading.Event()
        self.lost = 0  # answers thrown away
        self.delay = 0.0  # seconds each answer is held back
        self.released = threading.Event()  # cleared: answers wait for it (then ``losing`` applies)
        self.released.set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if answers:
                    self.released.wait()
                if answers and self.losing.is_set():
                    self.lost += 1
                    break  # the command ran; its answer goes nowhere
                if not answers and self.cutting.is_set():
                    break  # the command goes nowhere
                if answers and self.delay:
                    time.sleep(self.delay)
                target.sendall(data)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._server.close()
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.close()


@contextlib.contextmanager
def lossy_relay(upstream_port: int) -> Iterator[LossyRelay]:
    relay = LossyRelay(upstream_port)
    try:
        yield relay
    finally:
        relay.close()
