"""``proxy-config --check``: the terminator's own validation of a generated configuration.

Each terminator is asked the way its operators ask it before a reload (``nginx -t``,
``haproxy -c``, ``caddy validate``, ``apache2 -t``, ``envoy --mode validate``), on the files as
written, in a private directory that also holds whatever wrapper the terminator needs to read a
fragment on its own (nginx's ``http {}``, Apache's ``LoadModule`` lines).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hookshield.proxy_config import apache

__all__ = ["CHECK_SECONDS", "Checked", "NoValidator", "find_binary", "validate"]

CHECK_SECONDS = 60

NGINX_WRAPPER = """# hookshield proxy-config --check: the server block in a minimal nginx.conf
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {config};
}}
"""


class NoValidator(Exception):
    """The terminator's binary is not installed here, or the terminator has no validation."""


@dataclass(frozen=True, slots=True)
class Checked:
    ok: bool
    command: str  # what was run, for the user to run again
    output: str  # the terminator's own words


def find_binary(*names: str) -> str | None:
    """A binary on PATH, in the sbin directories, or beside this Python (pip-installed ones)."""
    beside = Path(sys.executable).parent
    for name in names:
        for candidate in (
            shutil.which(name),
            f"/usr/sbin/{name}",
            f"/usr/local/sbin/{name}",
            str(beside / name),
        ):
            if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
                return candidate
    return None


def _nginx(binary: str, main: Path) -> list[str]:
    wrapper = main.with_name("check-nginx.conf")
    wrapper.write_text(NGINX_WRAPPER.format(directory=main.parent, config=main))
    return [
        binary,
        "-t",
        "-p",
        str(main.parent),
        "-e",
        str(main.parent / "error.log"),
        "-c",
        str(wrapper),
    ]


def _haproxy(binary: str, main: Path) -> list[str]:
    return [binary, "-c", "-f", str(main)]


def _envoy(binary: str, main: Path) -> list[str]:
    return [binary, "--mode", "validate", "-c", str(main)]


def _caddy(binary: str, main: Path) -> list[str]:
    return [binary, "validate", "--config", str(main), "--adapter", "caddyfile"]


def _apache(binary: str, main: Path) -> list[str]:
    wrapper = main.with_name("check-httpd.conf")
    wrapper.write_text(apache.standalone(main, main.parent, apache.modules_directory(binary)))
    return [binary, "-t", "-f", str(wrapper)]


_VALIDATORS: dict[str, tuple[tuple[str, ...], Callable[[str, Path], list[str]]]] = {
    "nginx": (("nginx",), _nginx),
    "haproxy": (("haproxy",), _haproxy),
    "envoy": (("envoy",), _envoy),
    "caddy": (("caddy",), _caddy),
    "apache": (("apache2", "httpd"), _apache),
}


def validate(proxy: str, main: Path) -> Checked:
    """Run the terminator's validation on ``main`` (written, with its siblings, in a directory
    the caller owns and removes)."""
    if proxy not in _VALIDATORS:
        raise NoValidator(f"{proxy} has no command that validates a configuration without serving")
    names, command_for = _VALIDATORS[proxy]
    binary = find_binary(*names)
    if binary is None:
        raise NoValidator(f"{' or '.join(names)} is not installed here (not on PATH)")
    command = command_for(binary, main)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=CHECK_SECONDS,
            cwd=main.parent,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Checked(False, " ".join(command), f"no answer within {CHECK_SECONDS} s")
    return Checked(done.returncode == 0, " ".join(command), (done.stdout + done.stderr).strip())
