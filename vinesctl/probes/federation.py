"""`vinesctl check --federation`: every allowlisted peer as the bundled server would see it (its
resolution, its TLS client with our certificate, its trust store and RFC 6125 matching, all
from `vines_server`), and our own certificate as peers would judge it. Findings say which peer
would fail and why, and the fix."""

from __future__ import annotations

import asyncio
from typing import Any

from vinesctl.probes.findings import Finding


def check(config: Any, timeout: float) -> tuple[list[Finding], list[dict[str, Any]]]:
    """(findings, data) for the server whose loaded `config` is given."""
    from dataclasses import asdict

    from vines_server.net.s2s_probe import check_federation

    findings = own_certificates(config)
    if not (config.federation.allow or config.federation.peers):
        findings.append(
            Finding.skip(
                "federation",
                "no peer: [federation] allow is empty, the domain is closed",
                "add peer domains to [federation] allow in vines.toml to federate",
                check="federation",
            )
        )
        return findings, []
    peers = asyncio.run(check_federation(config, timeout))
    for peer in peers:
        findings += peer_findings(peer)
    return findings, [asdict(p) for p in peers]


def own_certificates(config: Any) -> list[Finding]:
    """Would a peer trusting only the system store accept our certificate for each domain?"""
    from cryptography import x509
    from vines_server.net.peercert import TrustStore, verify_peer

    try:
        trust = TrustStore.load(None)
    except ValueError:
        return []  # no system store here: nothing to compare with
    out = []
    for name, domain in sorted(config.domains.items()):
        chain = x509.load_pem_x509_certificates(domain.certificate.read_bytes())
        verdict = verify_peer(chain, name, trust)
        if verdict.verified:
            out.append(Finding.ok(f"our certificate {name}", verdict.identity, check="federation"))
        else:
            out.append(
                Finding.warn(
                    f"our certificate {name}",
                    f"{verdict.reason} by the system store: peers refuse it unless they opted "
                    "into dialback for us (or trust its CA)",
                    f"put a CA-signed pair in [domains.{name}] certificate/key (e.g. Let's "
                    "Encrypt's fullchain.pem and privkey.pem), then 'vinesctl server reload'",
                    check="federation",
                )
            )
    return out


def peer_findings(peer: Any) -> list[Finding]:
    name, kw = peer.domain, {"check": "federation", "target": peer.address or ""}
    if peer.error:
        return [
            Finding.fail(
                f"{name} reachable",
                f"cannot reach {name}: {peer.error}",
                f"check {name}'s _xmpp-server SRV records, or set a static route: "
                f'[federation.peers."{name}"] host/port',
                **kw,
            )
        ]
    out = [
        Finding.ok(f"{name} TLS", f"{peer.address}: {peer.tls_version} {peer.cipher}".strip(), **kw)
    ]
    if peer.certificate == "verified":
        out.append(Finding.ok(f"{name} certificate", f"verified ({peer.identity})", **kw))
    elif peer.dialback:
        out.append(
            Finding.warn(
                f"{name} certificate",
                f"{peer.certificate}: dialback (opted in) will authenticate it instead",
                f"ask {name}'s administrator for a certificate from a public CA",
                **kw,
            )
        )
    else:
        detail = f"{peer.certificate}" + (f" ({peer.detail})" if peer.detail else "")
        out.append(
            Finding.fail(
                f"{name} certificate",
                f"{detail}: this server would refuse {name}",
                f"add its CA to [federation] ca_file, or set "
                f'[federation.peers."{name}"] dialback = true to accept it with XEP-0220',
                **kw,
            )
        )
    return out
