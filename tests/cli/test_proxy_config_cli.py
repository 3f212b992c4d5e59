"""``hookshield proxy-config``: what it prints for Django, and the files it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hookshield.cli import ExitCode, main
from tests.conftest import TestPki
from tests.integration.servers import find_binary


def run(pki: TestPki, *extra: str) -> int:
    cert, key = pki.files("server")
    return main(["proxy-config", "nginx", "--cert", str(cert), "--key", str(key), *extra])


def printed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(capsys.readouterr().err, namespace)  # noqa: S102  (the CLI's own settings text)
    return dict(namespace["HOOKSHIELD"])


def test_intermediates_are_printed_for_the_guard(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    intermediate = tmp_path / "intermediate.pem"
    intermediate.write_bytes(pki.intermediate.cert_pem)
    assert run(pki, "--client-ca", str(pki.ca_file), "--intermediates", str(intermediate)) == 0
    settings = printed(capsys)
    assert settings["TRUST_ANCHORS"] == [str(pki.ca_file.resolve())]
    assert settings["INTERMEDIATES"] == [str(intermediate.resolve())]


def test_a_chain_file_as_client_ca_is_printed_as_intermediates_too(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.intermediate.cert_pem + pki.root.cert_pem)
    assert run(pki, "--client-ca", str(chain)) == 0
    settings = printed(capsys)
    assert settings["TRUST_ANCHORS"] == [str(chain.resolve())]
    assert settings["INTERMEDIATES"] == [str(chain.resolve())]


def test_without_intermediates_none_are_printed(
    pki: TestPki, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(pki, "--client-ca", str(pki.ca_file)) == 0
    assert "INTERMEDIATES" not in printed(capsys)


@pytest.mark.parametrize("option", ["--client-ca", "--intermediates"])
def test_a_file_that_is_no_ca_certificate_is_a_usage_error(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    leaf, _ = pki.files("allowed")
    missing = tmp_path / "missing.pem"
    for bad, why in ((leaf, "is not a CA certificate"), (missing, "No such file")):
        args = ["--client-ca", str(pki.ca_file), option, str(bad)]
        assert run(pki, *args) == ExitCode.USAGE
        assert why in capsys.readouterr().err


@pytest.mark.parametrize("name", ["a b", "x;\n    include /etc/passwd", "", "{http.request}"])
def test_a_server_name_that_is_no_host_name_is_a_usage_error(
    pki: TestPki, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert run(pki, "--client-ca", str(pki.ca_file), "--server-name", name) == ExitCode.USAGE
    assert "--server-name" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["0", str(64 * 1024 * 1024 + 1)])
def test_max_body_out_of_range_is_a_usage_error(
    pki: TestPki, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    assert run(pki, "--client-ca", str(pki.ca_file), "--max-body", size) == ExitCode.USAGE
    assert "--max-body must be 1 to" in capsys.readouterr().err


def test_every_flag_has_a_help_line_showing_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["proxy-config", "--help"])
    text = " ".join(capsys.readouterr().out.split("options:", 1)[1].split())
    for flag, default in [
        ("--upstream HOST:PORT", "(default: 127.0.0.1:8000)"),
        ("--listen [HOST:]PORT", "(default: 443)"),
        ("--max-body BYTES", "(default: 262144)"),
        ("--server-name NAME", "(default: _)"),
    ]:
        assert f"{flag} " in text
        after = text.split(f"{flag} ", 1)[1]
        assert default in after.split(" --", 1)[0], flag
    for flag in ("--client-ca", "--cert", "--key", "--intermediates", "--secret", "--check"):
        after = text.split(f" {flag} ", 1)[1]
        assert len(after.split(" --", 1)[0].split()) > 3, f"{flag} has no help line"


@pytest.mark.parametrize(
    ("listen", "nginx", "haproxy", "envoy"),
    [
        ("9500", "listen 9500 ssl;", "bind :9500 ssl", "0.0.0.0"),  # noqa: S104
        ("127.0.0.1:9500", "listen 127.0.0.1:9500 ssl;", "bind 127.0.0.1:9500 ssl", "127.0.0.1"),
        ("[::1]:9500", "listen [::1]:9500 ssl;", "bind [::1]:9500 ssl", "::1"),
    ],
)
def test_listen_takes_a_port_or_host_and_port(
    pki: TestPki,
    capsys: pytest.CaptureFixture[str],
    listen: str,
    nginx: str,
    haproxy: str,
    envoy: str,
) -> None:
    cert, key = pki.files("server")
    common = ["--client-ca", str(pki.ca_file), "--cert", str(cert), "--key", str(key)]
    outputs = {}
    for proxy in ("nginx", "haproxy", "envoy"):
        assert main(["proxy-config", proxy, *common, "--listen", listen]) == 0
        outputs[proxy] = capsys.readouterr().out
    assert nginx in outputs["nginx"]
    assert haproxy in outputs["haproxy"]
    assert f"address: {envoy}" in outputs["envoy"] or f"address: '{envoy}'" in outputs["envoy"]
    assert "port_value: 9500" in outputs["envoy"]


@pytest.mark.parametrize("listen", ["9500x", "0", "70000", "host:", "a b:80", "::1:80"])
def test_a_listen_that_is_no_address_is_a_usage_error(
    pki: TestPki, capsys: pytest.CaptureFixture[str], listen: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        run(pki, "--client-ca", str(pki.ca_file), "--listen", listen)
    assert raised.value.code == ExitCode.USAGE
    assert "neither a port" in capsys.readouterr().err


def test_output_writes_private_files(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(pki, "--client-ca", str(pki.ca_file), "--output", str(tmp_path / "out")) == 0
    written = tmp_path / "out" / "hookshield.conf"
    assert "ssl_verify_client on;" in written.read_text()
    assert written.stat().st_mode & 0o077 == 0  # it holds the proxy secret
    streams = capsys.readouterr()
    assert streams.out == ""
    assert f"wrote {tmp_path / 'out' / 'hookshield.conf'}" in streams.err


def test_output_replaces_a_wider_file_and_a_planted_link(pki: TestPki, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "hookshield.conf"
    existing.write_text("old")
    existing.chmod(0o644)
    assert run(pki, "--client-ca", str(pki.ca_file), "--output", str(out)) == 0
    assert existing.stat().st_mode & 0o077 == 0  # the secret never sits in a readable file
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("untouched")
    existing.unlink()
    existing.symlink_to(victim)
    assert run(pki, "--client-ca", str(pki.ca_file), "--output", str(out)) == 0
    assert victim.read_text() == "untouched"
    assert not existing.is_symlink()
    assert "ssl_verify_client on;" in existing.read_text()
    assert [p.name for p in out.iterdir()] == ["hookshield.conf"]  # no temporary left behind


def test_check_runs_the_terminators_own_validation(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    find_binary("nginx")
    assert run(pki, "--client-ca", str(pki.ca_file), "--check") == 0
    streams = capsys.readouterr()
    assert "nginx -t" in streams.err
    assert "accepted" in streams.err
    assert "ssl_verify_client on;" in streams.out
    # A certificate nginx cannot load: refused by nginx itself, and nothing printed to install.
    bad = tmp_path / "not-a-certificate.pem"
    bad.write_text("nothing here\n")
    args = ["proxy-config", "nginx", "--client-ca", str(pki.ca_file), "--key", str(bad)]
    assert main([*args, "--cert", str(bad), "--check"]) == ExitCode.BELOW_THRESHOLD
    streams = capsys.readouterr()
    assert streams.out == ""
    assert "REFUSED" in streams.err
    assert "not-a-certificate.pem" in streams.err  # nginx's own words name the file


def test_check_without_the_binary_is_a_usage_error(
    pki: TestPki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hookshield.proxy_config.check.find_binary", lambda *names: None)
    assert run(pki, "--client-ca", str(pki.ca_file), "--check") == ExitCode.USAGE
    streams = capsys.readouterr()
    assert streams.out == ""
    assert "nginx is not installed here" in streams.err


def test_traefik_writes_a_static_and_a_dynamic_file(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = pki.files("server")
    args = ["proxy-config", "traefik", "--client-ca", str(pki.ca_file)]
    args += ["--cert", str(cert), "--key", str(key)]
    assert main(args) == ExitCode.USAGE  # two files cannot go to stdout
    assert "give --output DIR" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path)]) == 0
    static = yaml.safe_load((tmp_path / "traefik.yml").read_text())
    assert static["providers"]["file"]["filename"] == str(tmp_path / "hookshield-dynamic.yml")
    dynamic = yaml.safe_load((tmp_path / "hookshield-dynamic.yml").read_text())
    # Only the "default" TLS options: any other name depends on the server name a client sends.
    assert list(dynamic["tls"]["options"]) == ["default"]
    client_auth = dynamic["tls"]["options"]["default"]["clientAuth"]
    assert client_auth["clientAuthType"] == "RequireAndVerifyClientCert"
    assert printed(capsys)["CERT_SOURCE"] == "traefik"
    # Traefik has no validation command: --check says so rather than pretending.
    assert main([*args, "--output", str(tmp_path), "--check"]) == ExitCode.USAGE
    assert "traefik has no command that validates" in capsys.readouterr().err


@pytest.mark.parametrize(("proxy", "validator"), [("apache", "-t -f"), ("caddy", "caddy validate")])
def test_check_asks_apache_and_caddy_too(
    pki: TestPki, capsys: pytest.CaptureFixture[str], proxy: str, validator: str
) -> None:
    find_binary("apache2" if proxy == "apache" else proxy)
    cert, key = pki.files("server")
    args = ["proxy-config", proxy, "--client-ca", str(pki.ca_file), "--key", str(key)]
    assert main([*args, "--cert", str(cert), "--check"]) == 0
    streams = capsys.readouterr()
    assert validator in streams.err
    assert "accepted" in streams.err
    assert streams.out  # the configuration, once accepted
    # What each refuses: Caddy loads the certificate (here the key); "apache2 -t" parses, and
    # checks that the certificate file exists.
    bad = ["--cert", str(key) if proxy == "caddy" else str(cert.with_name("missing.pem"))]
    assert main([*args, *bad, "--check"]) == ExitCode.BELOW_THRESHOLD
    streams = capsys.readouterr()
    assert "REFUSED" in streams.err
    assert streams.out == ""
