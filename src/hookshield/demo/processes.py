"""Child servers on 127.0.0.1: a free port, waiting until one listens, stopping it for sure."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

__all__ = ["free_port", "free_ports", "serving", "stop", "wait_for_port"]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: each socket stays bound until all are chosen (the system
    may hand out a port it has just released again, so ports chosen one by one, before any
    server binds them, can repeat)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes],
    log: Path,
    *,
    within: float = 20.0,
    what: str = "server",
) -> None:
    """Until the port accepts connections; fail with the server's own log if it exits or stalls."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {within:.0f} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process, and kill it if it has not exited 10 s later."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serving(
    command: Sequence[str],
    *,
    output: Path,
    ports: Sequence[int],
    log: Path | None = None,
    stop_signal: int = signal.SIGTERM,
    within: float = 20.0,
    what: str = "server",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server writing to ``output``, wait until it listens on every port, stop it after.

    ``log`` is where the server reports its own failures, when not in ``output`` (nginx).
    """
    with output.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    try:
        for port in ports:
            wait_for_port(port, process, log or output, within=within, what=what)
        yield process
    finally:
        stop(process, stop_signal)
