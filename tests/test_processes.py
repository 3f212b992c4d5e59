"""The demo's and the tests' child-server helpers."""

from __future__ import annotations

from hookshield.demo.processes import free_ports


def test_ports_chosen_together_all_differ() -> None:
    """The system may hand out a port it has just released again; ports chosen together must
    not repeat, since the servers bind them only later (a cluster node and its bus port)."""
    ports = free_ports(64)
    assert len(set(ports)) == 64
    assert all(1024 <= port <= 65535 for port in ports)
