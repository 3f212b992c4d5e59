"""Authentication: is a verified client certificate actually required?"""

from __future__ import annotations

from cryptography import x509

from hookshield.core.headers import CATALOGUE, Carries
from hookshield.pki import encodings
from hookshield.scanner.context import Reply, ScanContext
from hookshield.scanner.model import Category, Finding, Severity
from hookshield.scanner.profiles import Profile
from hookshield.scanner.registry import Check, Inconclusive, Need, masked, register

_DECORATE = (
    "Decorate the view with @webhook('<endpoint>') from hookshield.django and list its callers "
    "in HOOKSHIELD['ENDPOINTS']['<endpoint>']['ALLOW']"
)


@register
class NoClientCert(Check):
    id = "auth.no-client-cert"
    category = Category.AUTHENTICATION
    severity = Severity.CRITICAL
    title = "Deliveries without a client certificate are accepted"
    remediation = (
        f"{_DECORATE}; the guard answers 401 client_cert_missing. Terminate TLS with "
        "ssl_verify_client on (nginx) and set HOOKSHIELD['CERT_SOURCE'] to match the terminator."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        return self.if_accepted(await ctx.control(Profile.NO_CERT))


class _CertificateProbe(Check):
    """Deliver with ``profile``'s certificate; accepted while a certificate-less delivery is
    refused is the finding. Over plain HTTP no certificate can be presented."""

    profile: Profile
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.HTTPS})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        control = await ctx.control(Profile.NO_CERT)
        reply = await ctx.deliver(self.profile)
        return self.if_accepted_unlike(ctx, control, reply, masked_by=NoClientCert.id)


@register
class UntrustedCert(_CertificateProbe):
    id = "auth.untrusted-cert"
    category = Category.AUTHENTICATION
    severity = Severity.CRITICAL
    title = "A certificate from an unknown CA is accepted"
    remediation = (
        "Set HOOKSHIELD['TRUST_ANCHORS'] to your client CA only: @webhook re-verifies every chain "
        "in process and answers 401 client_cert_untrusted, whatever the proxy let through."
    )
    profile = Profile.UNKNOWN_CA


@register
class ForgedSubject(_CertificateProbe):
    id = "auth.forged-subject"
    category = Category.AUTHENTICATION
    severity = Severity.CRITICAL
    title = "A self-signed copy of the legitimate certificate's subject and SANs is accepted"
    remediation = (
        "Never compare subject or SAN strings without verifying the signature chain: use "
        "@webhook with HOOKSHIELD['TRUST_ANCHORS']; it refuses the copy "
        "(401 client_cert_untrusted)."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.CLIENT_CERT, Need.HTTPS})
    profile = Profile.ROGUE


@register
class ExpiredCert(_CertificateProbe):
    id = "auth.expired-cert"
    category = Category.AUTHENTICATION
    severity = Severity.HIGH
    title = "An expired certificate from the trusted issuer is accepted"
    remediation = (
        "Verify validity at request time: @webhook does (401 client_cert_expired), even behind a "
        "proxy with ssl_verify_client optional_no_ca or a skewed clock."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.MINT_CA, Need.HTTPS})
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
        ("caddy", {"X-Caddy-Client-Cert": encodings.b64der(cert)}),
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
        "nginx|haproxy|caddy|traefik|apache|envoy writes such a configuration)."
    )
    needs = frozenset({Need.ACCEPTED_BASELINE, Need.CLIENT_CERT})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        legit = ctx.profiles.legit_cert
        assert legit is not None  # Need.CLIENT_CERT
        routes, masks = await _header_routes(ctx)
        if not routes:
            why = "; ".join(masks)
            raise Inconclusive(
                f"no delivery carrying forged headers can reach the application: {why}"
            )
        findings: list[Finding] = []
        for profile, control in routes:
            probes = [
                await ctx.deliver(
                    profile, headers=headers, label=f"{profile}, forged {style} headers"
                )
                for style, headers in forged_headers(legit)
            ]
            findings += self.accepted_against(control, *probes)
        return findings


async def _header_routes(ctx: ScanContext) -> tuple[list[tuple[Profile, Reply]], list[str]]:
    """The deliveries that can carry forged headers to the application, each with its control
    (the same delivery without them, refused), and why each other one cannot.

    Without a certificate, unless the terminator refuses that at the TLS or HTTP layer; with a
    foreign valid certificate when the certificate-less delivery is refused in any way (nginx
    with ssl_verify_client on answers 400 itself: headers sent without a certificate never reach
    the application).
    """
    routes: list[tuple[Profile, Reply]] = []
    masks: list[str] = []
    no_cert = await ctx.control(Profile.NO_CERT)
    if no_cert.accepted:
        masked(ctx, "a delivery without a certificate is accepted", NoClientCert.id)
    if no_cert.terminator_refusal:
        masks.append(f"without a certificate: {no_cert.terminator_refusal}")
    else:
        routes.append((Profile.NO_CERT, no_cert))
    if not ctx.config.https:
        masks.append("over plain HTTP no certificate can carry them instead")
        return routes, masks
    if ctx.profiles.files(Profile.FOREIGN) is None:
        masks.append("no foreign certificate to carry them instead (--foreign-cert or --mint-ca)")
        return routes, masks
    foreign = await ctx.control(Profile.FOREIGN)
    if foreign.accepted and not routes:
        masked(ctx, "the foreign certificate alone is accepted", "authz.foreign-identity")
    if foreign.accepted:
        masks.append("the foreign certificate alone is accepted (authz.foreign-identity)")
    elif foreign.terminator_refusal:
        masks.append(f"with the foreign certificate: {foreign.terminator_refusal}")
    else:
        routes.append((Profile.FOREIGN, foreign))
    return routes, masks


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
        control = await ctx.deliver(
            Profile.NO_CERT, sign=False, label="POST without credentials (control)"
        )
        replies = [
            await ctx.deliver(
                Profile.NO_CERT, method=method, sign=False, label=f"{method} without credentials"
            )
            for method in ("GET", "PUT", "PATCH", "DELETE")
        ]
        return self.if_accepted_unlike(ctx, control, *replies, masked_by=NoClientCert.id)


@register
class TlsClientAuthOptional(Check):
    id = "auth.tls-client-auth-optional"
    category = Category.AUTHENTICATION
    severity = Severity.INFO
    title = "The terminator lets requests without a client certificate through"
    remediation = (
        "Fine when the application enforces certificates (@webhook does, with 401 "
        "client_cert_missing); otherwise require them at the terminator (nginx: "
        "ssl_verify_client on; HAProxy: verify required; hookshield proxy-config writes either)."
    )
    needs = frozenset({Need.HTTPS})

    async def run(self, ctx: ScanContext) -> list[Finding]:
        completed, detail, _ = await ctx.handshake(ctx.profiles.context(Profile.NO_CERT))
        if not completed:
            return []
        # The handshake completing is not enough: nginx with ssl_verify_client on completes it
        # and refuses at the HTTP layer, which is as required as a failed handshake.
        reply = await ctx.control(Profile.NO_CERT)
        if reply.status is None:
            raise Inconclusive(f"the handshake completed, then {reply.terminator_refusal}")
        if reply.terminator_refusal:
            return []
        note = f"TLS handshake without a client certificate completed ({detail}); the request "
        note += "was accepted" if reply.accepted else "reached the application, which refused it"
        return [self.finding(reply.evidence(note))]
