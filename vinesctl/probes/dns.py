"""DNS probe: XMPP SRV records (RFC 6120 §3.2, XEP-0368), their targets, and the fallback.

`lookup(domain, kind)` queries `_xmpp-<kind>` and `_xmpps-<kind>`, merges them into one RFC 2782
order, resolves every target and returns a `DnsResult` with findings. `test_connections()` then
opens an XMPP stream to each target (STARTTLS or direct TLS). dnspython is imported here only.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from vines_server.xmpp.srv import rfc2782_order

from vinesctl.probes.findings import Finding, Progress, Status, no_progress

# kind -> [(service label, direct TLS, standard port)]
SERVICES: dict[str, list[tuple[str, bool, int]]] = {
    "client": [("_xmpp-client", False, 5222), ("_xmpps-client", True, 5223)],
    "server": [("_xmpp-server", False, 5269), ("_xmpps-server", True, 5270)],
}
FALLBACK_PORT = {"client": 5222, "server": 5269}
# ports that are not unusual for a service (443 is the common direct TLS port behind firewalls)
USUAL_PORTS = {
    "_xmpp-client": {5222},
    "_xmpps-client": {5223, 443},
    "_xmpp-server": {5269},
    "_xmpps-server": {5270, 443},
}


@dataclass
class SrvRecord:
    service: str
    priority: int
    weight: int
    port: int
    target: str
    direct_tls: bool


@dataclass
class ServiceLookup:
    """The answer for one SRV name."""

    name: str
    service: str
    records: list[SrvRecord] = field(default_factory=list)  # as published, '.' included
    absent: bool = False  # a single '.' target: the service is declared not available
    nxdomain: bool = False
    error: str = ""


@dataclass
class Target:
    host: str
    port: int
    direct_tls: bool
    service: str
    source: str  # 'srv', 'fallback' or 'explicit'
    priority: int = 0
    weight: int = 0
    addresses: list[str] = field(default_factory=list)
    cname: str = ""  # canonical name when the target is an alias
    error: str = ""

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def mode(self) -> str:
        return "direct TLS" if self.direct_tls else "STARTTLS"


@dataclass
class DnsResult:
    domain: str
    kind: str
    resolver: str
    lookups: list[ServiceLookup] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    domain_addresses: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def parse_resolver(value: str) -> tuple[str, int]:
    """'IP', 'IP:PORT', '[IPv6]:PORT' or a bare IPv6 address -> (ip, port); ValueError else."""
    value = value.strip()
    host, port = value, 53
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"invalid resolver {value!r}")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"invalid resolver {value!r}")
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = int(port_text)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"invalid port in {value!r}")
    return host, port


def make_resolver(resolver: str | None, timeout: float):
    """A dnspython resolver: the system's, or one nameserver 'IP[:PORT]'."""
    import dns.resolver

    if resolver:
        ip, port = parse_resolver(resolver)
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [ip]
        res.port = port
    else:
        res = dns.resolver.Resolver()
    res.timeout = min(timeout, 3.0)
    res.lifetime = timeout
    return res


def _query(res, name: str, rdtype: str) -> tuple[Any, str, bool]:
    """(answer or None, error text, nxdomain)."""
    import dns.exception
    import dns.resolver

    try:
        return res.resolve(name, rdtype, raise_on_no_answer=False, search=False), "", False
    except dns.resolver.NXDOMAIN:
        return None, "", True
    except dns.resolver.NoNameservers as exc:
        return None, f"no nameserver answered ({_short(exc)})", False
    except dns.exception.Timeout:
        return None, f"DNS query for {name} {rdtype} timed out", False
    except dns.resolver.NoResolverConfiguration:
        return None, "no DNS resolver configured (use --resolver IP)", False
    except dns.exception.DNSException as exc:
        return None, f"DNS error for {name} {rdtype}: {_short(exc)}", False


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 160 else text[:157] + "..."


def _addresses(res, host: str) -> tuple[list[str], str, str, bool]:
    """(addresses, canonical name if an alias, error, nxdomain) for A and AAAA of `host`."""
    import dns.name
    import dns.rdatatype

    addresses: list[str] = []
    cname = ""
    errors: list[str] = []
    nx = False
    for rdtype in ("A", "AAAA"):
        answer, error, nxd = _query(res, host, rdtype)
        nx = nx or nxd
        if error:
            errors.append(error)
        if answer is None:
            continue
        qname = dns.name.from_text(host)
        if answer.canonical_name != qname or any(
            rr.rdtype == dns.rdatatype.CNAME for rr in answer.response.answer
        ):
            cname = answer.canonical_name.to_text().rstrip(".")
        if answer.rrset is not None:
            addresses.extend(r.address for r in answer.rrset)
    error = "" if addresses else "; ".join(dict.fromkeys(errors))
    return addresses, cname, error, nx and not addresses


def lookup(
    domain: str,
    kind: str = "client",
    *,
    resolver: str | None = None,
    timeout: float = 5.0,
    rng: random.Random | None = None,
    progress: Progress = no_progress,
    required: bool = True,
) -> DnsResult:
    """Query the SRV records of `kind` ('client' or 'server') for `domain`, resolve the targets.

    With `required` false, finding no way to reach the service is a warning, not a failure
    (the server side of a domain that does not federate, say)."""
    domain = domain.rstrip(".").lower()
    res = make_resolver(resolver, timeout)
    result = DnsResult(domain, kind, resolver or "system")
    add = result.findings.append

    def f(name: str, status: str, detail: str, fix: str = "", target: str = "") -> None:
        add(Finding(name, Status(status), detail, fix, check="dns", target=target))

    records: list[SrvRecord] = []
    any_nx = True
    declared_absent = False
    unreachable = False
    for service, direct, _port in SERVICES[kind]:
        name = f"{service}._tcp.{domain}"
        progress(f"DNS {name} SRV")
        lk = ServiceLookup(name=name, service=service)
        answer, lk.error, lk.nxdomain = _query(res, name, "SRV")
        any_nx = any_nx and lk.nxdomain
        if answer is not None and answer.rrset is not None:
            for r in answer.rrset:
                lk.records.append(
                    SrvRecord(service, r.priority, r.weight, r.port, r.target.to_text(), direct)
                )
        result.lookups.append(lk)
        if lk.error and "timed out" in lk.error:
            f(
                name,
                "fail",
                lk.error + " (the resolver does not answer; further queries skipped)",
                "check --resolver, or the network path to the DNS server",
            )
            unreachable = True
            break
        dots = [r for r in lk.records if r.target == "."]
        if lk.error:
            f(name, "fail", lk.error, "check the resolver and the zone's name servers")
        elif dots and len(lk.records) == 1:
            lk.absent = True
            if direct:
                f(name, "ok", "'.' target: direct TLS declared unavailable")
            else:
                declared_absent = True
                f(
                    name,
                    "warn",
                    f"'.' target: {kind} service declared unavailable (no fallback)",
                    f"remove the record if {domain} should accept {kind} connections",
                )
        elif dots:
            f(
                name,
                "warn",
                "'.' target mixed with other records (invalid; ignored)",
                "a '.' target must be the only record of its name (RFC 2782)",
            )
        elif lk.records:
            shown = ", ".join(
                f"{r.priority} {r.weight} {r.port} {r.target}"
                for r in sorted(lk.records, key=lambda r: (r.priority, -r.weight, r.target))
            )
            f(name, "ok", f"{len(lk.records)} record(s): {shown}")
        else:
            f(name, "ok", "no records" + (" (NXDOMAIN)" if lk.nxdomain else ""))
        records.extend(r for r in lk.records if r.target != ".")

    for r in rfc2782_order(records, rng):
        result.targets.append(
            Target(
                r.target.rstrip(".").lower(),
                r.port,
                r.direct_tls,
                r.service,
                "srv",
                r.priority,
                r.weight,
            )
        )

    plain = f"_xmpp-{kind}"
    if not records and not declared_absent and not unreachable:
        progress(f"DNS {domain} A/AAAA")
        addrs, _cname, error, nx = _addresses(res, domain)
        if not addrs and resolver is None:
            # A client falls back through the system resolver, which reads the hosts file
            # first: `localhost` (or a name pinned there) is reachable without any DNS.
            addrs = hosts_file_addresses(domain)
            nx = nx and not addrs
        result.domain_addresses = addrs
        port = FALLBACK_PORT[kind]
        if addrs:
            result.targets.append(Target(domain, port, False, plain, "fallback", addresses=addrs))
            f(
                f"{kind} fallback",
                "warn",
                f"no SRV records; {kind}s fall back to {domain}:{port} ({', '.join(addrs)})",
                f"publish {plain}._tcp.{domain} SRV records (RFC 6120 §3.2) if the server is "
                "not on the domain's own address",
            )
        elif nx and any_nx and required:
            f(
                f"{kind} fallback",
                "fail",
                f"{domain} does not exist in DNS (NXDOMAIN): no SRV and no A/AAAA records",
                f"check the spelling, or publish {plain}._tcp.{domain} SRV and A/AAAA records",
            )
        else:
            why = f" ({error})" if error else ""
            nothing = f"no SRV records and no A/AAAA for {domain}{why}: {kind}s cannot find it"
            if required:
                f(
                    f"{kind} fallback",
                    "fail",
                    nothing,
                    f"publish {plain}._tcp.{domain} SRV records or an A/AAAA record for {domain}",
                )
            else:
                f(
                    f"{kind} fallback",
                    "warn",
                    nothing + " (fine for a domain that does not federate)",
                    f"publish {plain}._tcp.{domain} SRV records to federate",
                )
    elif not result.targets and declared_absent:
        pass  # the '.' finding says it all
    _check_targets(res, result, f, progress)
    return result


def _check_targets(res, result: DnsResult, f, progress: Progress) -> None:
    seen: dict[tuple[str, int], Target] = {}
    for t in result.targets:
        if t.source == "srv":
            progress(f"DNS {t.host} A/AAAA")
            try:
                ipaddress.ip_address(t.host)
                t.addresses = [t.host]
                f(
                    f"target {t.host}",
                    "warn",
                    "SRV target is an IP address, not a host name",
                    "point the SRV record at a host name with A/AAAA records (RFC 2782)",
                    t.label,
                )
            except ValueError:
                t.addresses, t.cname, t.error, _nx = _addresses(res, t.host)
            if t.host == "localhost":
                f(
                    f"target {t.host}",
                    "fail",
                    "SRV target is 'localhost'",
                    "point the SRV record at the server's public host name",
                    t.label,
                )
            elif not t.addresses:
                t.error = t.error or "no A/AAAA records"
                f(
                    f"target {t.host}",
                    "fail",
                    f"{t.host} does not resolve: {t.error}",
                    f"add A/AAAA records for {t.host} or fix the {t.service} SRV record",
                    t.label,
                )
            elif t.cname:
                f(
                    f"target {t.host}",
                    "warn",
                    f"{t.host} is an alias (CNAME) for {t.cname}; resolves to "
                    f"{', '.join(t.addresses)}",
                    f"point the SRV record at {t.cname} directly (RFC 2782: no aliases)",
                    t.label,
                )
            else:
                f(
                    f"target {t.host}",
                    "ok",
                    f"{t.mode}, resolves to {', '.join(t.addresses)}",
                    target=t.label,
                )
            if t.port not in USUAL_PORTS[t.service]:
                usual = "/".join(str(p) for p in sorted(USUAL_PORTS[t.service]))
                f(
                    f"port {t.label}",
                    "warn",
                    f"unusual port {t.port} for {t.service} (usually {usual})",
                    "fine if intended; some networks block other ports",
                    t.label,
                )
        key = (t.host, t.port)
        other = seen.get(key)
        if other is not None and other.direct_tls != t.direct_tls:
            f(
                f"port {t.label}",
                "fail",
                f"{t.label} is published for both STARTTLS ({result.kind}) and direct TLS",
                "use separate ports (e.g. 5222 STARTTLS, 5223 direct TLS) unless a "
                "multiplexer serves both",
                t.label,
            )
        seen.setdefault(key, t)


def cross_check(results: list[DnsResult]) -> list[Finding]:
    """Findings across kinds: the same host:port advertised for clients and servers; a client
    service declared absent ('.') with no server records either: no XMPP service at all."""
    out: list[Finding] = []
    kinds = {r.kind: r for r in results}
    client, server = kinds.get("client"), kinds.get("server")
    if client is not None and server is not None:
        client_absent = any(lk.absent and lk.service == "_xmpp-client" for lk in client.lookups)
        server_records = any(r.target != "." for lk in server.lookups for r in lk.records)
        if client_absent and not server_records:
            out.append(
                Finding.fail(
                    "xmpp service",
                    f"{client.domain} offers no XMPP service: its client service is declared "
                    "absent ('.' SRV target) and it has no server (_xmpp-server) records",
                    f"publish _xmpp-client._tcp.{client.domain} SRV records pointing at the "
                    "server (instead of '.'), or do not check a domain without XMPP",
                    check="dns",
                )
            )
    by_kind = {r.kind: {(t.host, t.port) for t in r.targets if t.source == "srv"} for r in results}
    if "client" in by_kind and "server" in by_kind:
        for host, port in sorted(by_kind["client"] & by_kind["server"]):
            out.append(
                Finding.warn(
                    f"port {host}:{port}",
                    f"{host}:{port} is published for both client and server connections",
                    "use 5222/5223 for clients and 5269/5270 for servers",
                    check="dns",
                    target=f"{host}:{port}",
                )
            )
    return out


def explicit_target(host: str, port: int, direct: bool, kind: str) -> Target:
    service = f"_xmpp{'s' if direct else ''}-{kind}"
    return Target(host, port, direct, service, "explicit")


def hosts_file_addresses(host: str, path: str = "/etc/hosts") -> list[str]:
    """The addresses `path` gives `host` (dnspython, unlike the system resolver, never reads it)."""
    found: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as hosts:
            for line in hosts:
                fields = line.split("#", 1)[0].split()
                if len(fields) > 1 and host in (name.lower() for name in fields[1:]):
                    found.append(fields[0])
    except OSError:
        return []
    return list(dict.fromkeys(found))
