"""Authentication: is a verified client certificate actually required?"""

from __future__ import annotations

from cryptography import x509

from hookshield.core.headers import CATALOGUE, Carries
from hookshield.pki import encodings
from hookshield.scanner.context import Reply, ScanContext
from hookshield.scanner.model import Category, Evidence, Finding, Severity
from hookshield.scanner.profiles import Profile
from hookshield.scanner.registry import Check, Inconclusive, Need, register

_DECORATE = (
    "Decorate the view with @webhook('<endpoint>') from hookshield.django and list its callers "
    "in HOOKSHIELD['ENDPOINTS']['<endpoint>']['ALLOW']"
)


class _RefusedProfile(Check):
    """Deliver as ``profile``; a 2xx is the finding."""

    profile: Profile

    async def run(self, ctx: ScanContext) -> list[Finding]:
        reply = await ctx.deliver(self.profile)
        return self.if_accepted(reply)


@register
class NoClientCert(_RefusedProfile):
    id = "auth.no-client-cert"
    category = Category.AUTHENTICATION
    severity = Severity.CRITICAL
    title = "Deliveries without a client certificate are accepted"
    remediation = (
        f"{_DECORATE}; the guard answers 401 client_cert_missing. Terminate TLS with "
        "ssl_verify_client on (nginx) and set HOOKSHIELD['CERT_SOURCE'] to match the terminator."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})
    profile = Profile.NO_CERT


@register
class UntrustedCert(_RefusedProfile):
    id = "auth.untrusted-cert"
    category = Category.AUTHENTICATION
    severity = Severity.CRITICAL
    title = "A certificate from an unknown CA is accepted"
    remediation = (
        "Set HOOKSHIELD['TRUST_ANCHORS'] to your client CA only: @webhook re-verifies every chain "
        "in process and answers 401 client_cert_untrusted, whatever the proxy let through."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})
    profile = Profile.UNKNOWN_CA


@register
class ForgedSubject(_RefusedProfile):
    id = "auth.forged-subject"
    category = Category.AUTHENTICATION
    severity = Severity.CRITICAL
    title = "A self-signed copy of the legitimate certificate's subject and SANs is accepted"
    remediation = (
        "Never compare subject or SAN strings without verifying the signature chain: use "
        "@webhook with HOOKSHIELD['TRUST_ANCHORS']; it refuses the copy "
        "(401 client_cert_untrusted)."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.CLIENT_CERT})
    profile = Profile.ROGUE


@register
class ExpiredCert(_RefusedProfile):
    id = "auth.expired-cert"
    category = Category.AUTHENTICATION
    severity = Severity.HIGH
    title = "An expired certificate from the trusted issuer is accepted"
    remediation = (
        "Verify validity at request time: @webhook does (401 client_cert_expired), even behind a "
        "proxy with ssl_verify_client optional_no_ca or a skewed clock."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.MINT_CA})
    profile = Profile.EXPIRED


def forged_headers(cert: x509.Certificate) -> list[tuple[str, dict[str, str]]]:
    """Every header style a terminator uses, and every other certificate header of the catalogue
    (``hookshield.core.headers``), carrying ``cert`` (a public certificate)."""
    pem = encodings.pem(cert)
    subject = cert.subject.rfc4514_string()
    folded = pem.replace("\n", " ").strip()
    styles: list[tuple[str, dict[str, str]]] = [
        (
            "nginx",
            {
                "X-SSL-Client-Cert": encodings.nginx_escaped(cert),
                "X-SSL-Client-Verify": "SUCCESS",
                "X-SSL-Client-S-DN": subject,
            },
        ),
        (
            "ingress-nginx",
            {
                "ssl-client-cert": encodings.nginx_escaped(cert),
                "ssl-client-verify": "SUCCESS",
                "ssl-client-subject-dn": subject,
            },
        ),
        ("envoy-xfcc", {"X-Forwarded-Client-Cert": encodings.xfcc_element(cert)}),
        ("traefik", {"X-Forwarded-Tls-Client-Cert": encodings.traefik([cert])}),
        (
            "aws-alb",
            {
                "X-Amzn-Mtls-Clientcert": encodings.alb(cert),
                "X-Amzn-Mtls-Clientcert-Leaf": encodings.alb(cert),
                "X-Amzn-Mtls-Clientcert-Subject": subject,
            },
        ),
        (
            "apache",
            {
                "X-SSL-Client-Cert": folded,
                "X-SSL-Client-Verify": "SUCCESS",
                "SSL-Client-Cert": folded,
                "SSL-Client-Verify": "SUCCESS",
            },
        ),
        (
            "haproxy",
            {
                "X-SSL-Client-Cert": encodings.b64der(cert),
                "X-SSL-Client-Verify": "0",
                "X-SSL-Client-Used": "1",
                "X-SSL-Client-DN": subject,
            },
        ),
        ("caddy", {"X-Caddy-Client-Cert": encodings.b64der(cert)}),
        (
            "cloudflare",
            {
                "Client-Cert": encodings.rfc9440(cert),
                "Cf-Client-Cert-Der-Base64": encodings.b64der(cert),
                "cf-cert-verified": "true",
                "cf-cert-presented": "true",
                "cf-cert-subject-dn": subject,
            },
        ),
        (
            "gcp",
            {
                "X-Client-Cert-Leaf": encodings.rfc9440(cert),
                "X-Client-Cert-Present": "true",
                "X-Client-Cert-Chain-Verified": "true",
            },
        ),
        (
            "underscore",
            {"X_SSL_Client_Cert": encodings.nginx_escaped(cert), "X_SSL_Client_Verify": "SUCCESS"},
        ),
    ]
    # Every other name of the catalogue that carries a certificate: glue code reads those too.
    used = {name.lower() for _, headers in styles for name in headers}
    others = {
        entry.name: encodings.nginx_escaped(cert)
        for entry in CATALOGUE
        if entry.carries is Carries.CERTIFICATE and entry.name.lower() not in used
    }
    return [*styles, ("other catalogued names", others)]


@register
class SpoofedIdentityHeader(Check):
    id = "auth.spoofed-identity-header"
    category = Category.AUTHENTICATION
    severity = Severity.CRITICAL
    title = "Forged client-certificate headers are believed"
    remediation = (
        "Believe certificate headers only from your terminator: set HOOKSHIELD['TRUSTED_PROXIES'] "
        "to its addresses and HOOKSHIELD['PROXY_SECRET'] where other hosts share its network, and "
        "make the proxy overwrite the headers on every path (hookshield proxy-config "
        "nginx|haproxy|envoy writes such a configuration)."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.CLIENT_CERT})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        legit = ctx.profiles.legit_cert
        assert legit is not None  # Need.CLIENT_CERT
        replies: list[Reply] = []
        foreign_alone: Reply | None = None
        for style, headers in forged_headers(legit):
            # No certificate at all; if the handshake demands one, a foreign valid one carries
            # the headers instead (the server must then not take the header's word for the name).
            reply = await ctx.deliver(
                Profile.NO_CERT, headers=headers, label=f"no cert, forged {style} headers"
            )
            if reply.status is None and ctx.profiles.files(Profile.FOREIGN) is not None:
                if foreign_alone is None:
                    foreign_alone = await ctx.deliver(Profile.FOREIGN, label="foreign cert alone")
                if foreign_alone.accepted:
                    continue  # let in without any header: its deliveries cannot show them believed
                reply = await ctx.deliver(
                    Profile.FOREIGN, headers=headers, label=f"foreign cert, forged {style} headers"
                )
            replies.append(reply)
        if not replies:
            raise Inconclusive(
                "the handshake demands a certificate and the foreign one is accepted by itself "
                "(see authz.foreign-identity): no delivery can isolate the forged headers"
            )
        return self.if_accepted(*replies)


@register
class MethodBypass(Check):
    id = "auth.method-bypass"
    category = Category.AUTHENTICATION
    severity = Severity.MEDIUM
    title = "Another method without credentials gets a 2xx"
    remediation = (
        "Guard the whole view with @webhook: its METHODS rule (default ['POST']) answers 405 to "
        "other methods, and only after the certificate was checked."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        replies = [
            await ctx.deliver(
                Profile.NO_CERT, method=method, sign=False, label=f"{method} without credentials"
            )
            for method in ("GET", "PUT", "PATCH", "DELETE")
        ]
        return self.if_accepted(*replies)


@register
class TlsClientAuthOptional(Check):
    id = "auth.tls-client-auth-optional"
    category = Category.AUTHENTICATION
    severity = Severity.INFO
    title = "The TLS handshake completes without a client certificate"
    remediation = (
        "Fine when the application enforces certificates (@webhook does); otherwise require them "
        "at the terminator (nginx: ssl_verify_client on)."
    )
    needs = frozenset({Need.HTTPS})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        completed, detail, _ = await ctx.handshake(ctx.profiles.context(Profile.NO_CERT))
        if not completed:
            return []
        return [self.finding(Evidence(f"TLS handshake without a client certificate ({detail})"))]
