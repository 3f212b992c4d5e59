"""Envoy: XFCC with ``SANITIZE_SET`` for ``CERT_SOURCE = "envoy-xfcc"``.

Not run in hookshield's CI (no Envoy binary comes from the registries it may use); the tests check
the document's structure. Written against Envoy's v3 API.
"""

from __future__ import annotations

import yaml

from hookshield.core.headers import CERTIFICATE_HEADERS, CLIENT_ADDRESS_HEADERS
from hookshield.core.proxies import DEFAULT_SECRET_HEADER
from hookshield.proxy_config import ProxyOptions

__all__ = ["render"]


def _type(name: str) -> str:
    return f"type.googleapis.com/envoy.extensions.{name}"


def document(options: ProxyOptions) -> dict[str, object]:
    host, _, port = options.upstream.rpartition(":")
    # Every address unless --listen named one (the public side); Envoy wants IPv6 unbracketed.
    listen_host = options.listen_host.strip("[]") or "0.0.0.0"  # noqa: S104
    removed = [n for n in CERTIFICATE_HEADERS if n.lower() != "x-forwarded-client-cert"]
    # X-Forwarded-For stays Envoy's: with use_remote_address it appends this connection's
    # address, the entry the app may believe; the other address headers are the client's.
    removed += [n for n in CLIENT_ADDRESS_HEADERS if n != "X-Forwarded-For"]
    manager = {
        "@type": _type("filters.network.http_connection_manager.v3.HttpConnectionManager"),
        "stat_prefix": "webhooks",
        "use_remote_address": True,  # X-Forwarded-For ends with the connection's address
        "server_header_transformation": "PASS_THROUGH",  # no "server: envoy" banner added
        # Replace any client-sent XFCC with this connection's certificate (SANITIZE_SET).
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {
            "cert": True,
            "chain": True,
            "uri": True,
            "dns": True,
            "subject": True,
        },
        "common_http_protocol_options": {"headers_with_underscores_action": "DROP_HEADER"},
        "route_config": {
            "name": "django",
            "request_headers_to_remove": removed,
            "request_headers_to_add": [
                {
                    "header": {"key": DEFAULT_SECRET_HEADER, "value": options.secret},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
            "virtual_hosts": [
                {
                    "name": "webhooks",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "django"}}],
                }
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.buffer",
                "typed_config": {
                    "@type": _type("filters.http.buffer.v3.Buffer"),
                    "max_request_bytes": options.max_body,
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _type("filters.http.router.v3.Router")},
            },
        ],
    }
    tls = {
        "@type": _type("transport_sockets.tls.v3.DownstreamTlsContext"),
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
            "tls_certificates": [
                {
                    "certificate_chain": {"filename": str(options.cert)},
                    "private_key": {"filename": str(options.key)},
                }
            ],
            "validation_context": {"trusted_ca": {"filename": str(options.client_ca)}},
        },
    }
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "webhooks",
                    "address": {
                        "socket_address": {"address": listen_host, "port_value": options.listen}
                    },
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ],
                            "transport_socket": {
                                "name": "envoy.transport_sockets.tls",
                                "typed_config": tls,
                            },
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "django",
                    "type": "STRICT_DNS",
                    "load_assignment": {
                        "cluster_name": "django",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": host,
                                                    "port_value": int(port),
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }


def render(options: ProxyOptions) -> str:
    header = (
        "# Generated by hookshield proxy-config envoy (Envoy v3 API). Not exercised by\n"
        "# hookshield's CI: validate with `envoy --mode validate -c envoy.yaml`.\n"
    )
    return header + yaml.safe_dump(document(options), sort_keys=False)
