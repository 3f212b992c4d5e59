"""Encryption: plain HTTP, legacy TLS versions and the server certificate."""

from __future__ import annotations

import datetime as dt
import ssl
import warnings
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from hookshield.scanner.context import NoAnswer, ScanContext
from hookshield.scanner.model import Category, Evidence, Finding, Severity
from hookshield.scanner.profiles import ClientFiles, Profile
from hookshield.scanner.registry import Check, CheckSkipped, Need, register


@register
class PlaintextHttp(Check):
    id = "tls.plaintext-http"
    category = Category.ENCRYPTION
    severity = Severity.HIGH
    title = "The endpoint accepts deliveries over plain HTTP"
    remediation = (
        "Serve webhooks over TLS only: terminate mTLS at the proxy (nginx ssl_verify_client), "
        "keep the app's plain-HTTP port unreachable, and guard the view with @webhook, which "
        "answers 401 to a delivery that brings no certificate."
    )

    async def run(self, ctx: ScanContext) -> list[Finding]:
        parts = urlsplit(ctx.config.url)
        if parts.scheme == "http":
            baseline = ctx.baseline
            return self.if_accepted(baseline) if baseline else []
        plain = urlunsplit(parts._replace(scheme="http"))
        # Without a port in the URL the http:// one is another port: the evidence says which.
        where = "the same port" if parts.port else "port 80"
        try:
            reply = await ctx.deliver(Profile.NO_CERT, url=plain, label=f"plain HTTP to {where}")
        except NoAnswer:
            # Nothing serves plain HTTP there (port 80 closed or filtered, or a TLS port that
            # does not answer plain text): what this check wants. The scan's closing baseline
            # tells a target that stopped answering altogether.
            return []
        return self.if_accepted(reply)


def _legacy_context(version: ssl.TLSVersion, legit: ClientFiles | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # The probe context alone drops to security level 0, so OpenSSL 3 will offer TLS 1.0/1.1;
    # Python deprecates these versions, which is the point of probing for them.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    if legit is not None:
        # The legitimate certificate, as on every probe: a terminator that requires one aborts
        # a certificate-less handshake in any version, which would hide the legacy one.
        context.load_cert_chain(legit.cert, legit.key)
    return context


@register
class LegacyProtocol(Check):
    id = "tls.legacy-protocol"
    category = Category.ENCRYPTION
    severity = Severity.MEDIUM
    title = "A TLS 1.0 or 1.1 handshake succeeds"
    remediation = (
        "Allow TLS 1.2 and 1.3 only at the terminator (nginx: ssl_protocols TLSv1.2 TLSv1.3)."
    )
    needs = frozenset({Need.HTTPS})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        findings = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            legacy = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
        legit = ctx.profiles.files(Profile.LEGIT)
        for version in legacy:
            try:
                context = _legacy_context(version, legit)
            except (ValueError, ssl.SSLError) as exc:
                raise CheckSkipped(
                    f"this Python/OpenSSL cannot offer {version.name}: {exc}"
                ) from exc
            completed, detail, _ = await ctx.handshake(context, send_request=False)
            if "NO_PROTOCOLS_AVAILABLE" in detail.upper().replace(" ", "_"):
                # The refusal came from our own OpenSSL, not the server: nothing was tested.
                raise CheckSkipped(f"this Python/OpenSSL cannot offer {version.name}: {detail}")
            if completed:
                findings.append(self.finding(Evidence(f"{version.name} handshake", excerpt=detail)))
        if not findings and legit is None:
            await _certificate_not_required(ctx)
        return findings


async def _certificate_not_required(ctx: ScanContext) -> None:
    """Raise CheckSkipped when a current handshake fails without a client certificate as well:
    the legacy ones then failed for want of one, whatever versions the terminator allows."""
    completed, detail, _ = await ctx.handshake(ctx.profiles.context(Profile.NO_CERT))
    if not completed:
        raise CheckSkipped(
            f"needs {Need.CLIENT_CERT.value}: without one the terminator ends every handshake "
            f"({detail}), so the legacy ones prove nothing"
        )


def _certificate_problems(der: bytes) -> list[str]:
    cert = x509.load_der_x509_certificate(der)
    problems = []
    now = dt.datetime.now(dt.UTC)
    if now > cert.not_valid_after_utc:
        problems.append(f"expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if now < cert.not_valid_before_utc:
        problems.append(f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        problems.append(f"RSA key of {key.key_size} bits")
    if isinstance(cert.signature_hash_algorithm, hashes.SHA1 | hashes.MD5):
        problems.append(f"signed with {cert.signature_hash_algorithm.name}")
    return problems


@register
class WeakServerCert(Check):
    id = "tls.weak-server-cert"
    category = Category.ENCRYPTION
    severity = Severity.MEDIUM
    title = "The server certificate is expired, untrusted, for another host, weak or SHA-1 signed"
    remediation = (
        "Serve a current certificate for the webhook's host from a CA the senders trust, with an "
        "RSA key of 2048 bits or more (or ECDSA) and a SHA-256 signature at the terminator "
        "(nginx ssl_certificate)."
    )
    needs = frozenset({Need.HTTPS})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        host = urlsplit(ctx.config.url).hostname or ""
        completed, detail, der = await ctx.handshake(
            ctx.profiles.context(ctx.baseline_profile),
            send_request=False,
        )
        if not completed or der is None:
            raise CheckSkipped(f"no TLS handshake to inspect the certificate: {detail}")
        problems = _certificate_problems(der)
        verifying = ssl.create_default_context(cafile=ctx.config.ca)
        files = ctx.profiles.files(Profile.LEGIT)
        if files is not None:
            verifying.load_cert_chain(files.cert, files.key)
        trusted, why, _ = await ctx.handshake(verifying, send_request=False)
        if not trusted:
            source = "--ca" if ctx.config.ca else "the system trust store"
            problems.append(f"does not verify against {source} for host {host!r}: {why}")
        if not problems:
            return []
        return [
            self.finding(Evidence("TLS handshake, server certificate", excerpt="; ".join(problems)))
        ]
