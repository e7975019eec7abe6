"""TLS probe: per target, the negotiated protocol, accepted versions, certificate chain, trust,
RFC 6125 identity against the source domain (RFC 6120 §13.7.2), and a grade with its reasons.

`probe(domain, ...)` resolves targets like a client (SRV, then fallback; or an explicit
host/port), runs `probe_target` on each (in parallel threads, each attempt bounded by a timeout)
and returns a `TlsResult`. `connectivity()` is the lighter per-target connection test used by
`vinesctl dns` and `vinesctl check`.
"""

from __future__ import annotations

import hashlib
import ssl
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vinesctl.probes import dns as dnsprobe
from vinesctl.probes.findings import Finding, Progress, Status, no_progress
from vinesctl.probes.stream import Handshake, open_stream

EXPIRY_WARN_DAYS = 30

# versions probed one at a time (min = max), oldest first
VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_VERSION_ENUM = {
    "TLSv1": "TLSv1",
    "TLSv1.1": "TLSv1_1",
    "TLSv1.2": "TLSv1_2",
    "TLSv1.3": "TLSv1_3",
}
LEGACY = ("TLSv1", "TLSv1.1")


@dataclass
class CertInfo:
    index: int
    subject: str
    issuer: str
    dns_names: list[str]
    xmpp_addrs: list[str]
    srv_names: list[str]
    ip_addresses: list[str]
    key_type: str
    key_bits: int
    signature_algorithm: str
    not_before: datetime
    not_after: datetime
    days_left: int
    self_signed: bool
    sha256: str


@dataclass
class TargetReport:
    target: dnsprobe.Target
    handshake: Handshake
    versions: dict[str, bool | None] = field(default_factory=dict)
    chain: list[CertInfo] = field(default_factory=list)
    chain_complete: bool = False  # False when only the leaf could be read
    trusted: bool | None = None
    trust_error: str = ""
    identity: str = ""  # how the certificate matched the domain, empty if it did not
    grade: str = ""
    grade_reasons: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class TlsResult:
    domain: str
    kind: str
    ca: str
    targets: list[TargetReport] = field(default_factory=list)
    grade: str = ""
    findings: list[Finding] = field(default_factory=list)


# -- contexts ---------------------------------------------------------------------------------


def make_context(
    *, ca: str | None = None, verify: bool = True, version: str | None = None
) -> ssl.SSLContext:
    """A client context. `verify` checks the chain (system store or `ca`), never the host name:
    identity is checked separately against the source domain. `version` pins one protocol
    version and lowers the security level so old versions can be offered at all."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca:
            ctx.load_verify_locations(cafile=ca)
        else:
            ctx.load_default_certs()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if version:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            enum = getattr(ssl.TLSVersion, _VERSION_ENUM[version])
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            ctx.minimum_version = enum
            ctx.maximum_version = enum
    return ctx


def local_support(version: str) -> bool:
    """Whether this OpenSSL can offer `version` at all."""
    flag = {
        "TLSv1": "HAS_TLSv1",
        "TLSv1.1": "HAS_TLSv1_1",
        "TLSv1.2": "HAS_TLSv1_2",
        "TLSv1.3": "HAS_TLSv1_3",
    }[version]
    if not getattr(ssl, flag, False):
        return False
    try:
        make_context(verify=False, version=version)
    except (ssl.SSLError, ValueError):
        return False
    return True


# -- certificates -----------------------------------------------------------------------------


def cert_info(der: bytes, index: int = 0) -> CertInfo:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    from vines_server.xmpp.certid import identities

    cert = x509.load_der_x509_certificate(der)
    ids = identities(cert)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except (x509.ExtensionNotFound, ValueError):
        ips = []
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits = f"EC {key.curve.name}", key.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "DSA", key.key_size
    else:
        key_type, bits = type(key).__name__, 0
    sig = getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    days_left = (not_after - datetime.now(UTC)).days
    return CertInfo(
        index=index,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        dns_names=list(ids.dns_names),
        xmpp_addrs=list(ids.xmpp_addrs),
        srv_names=list(ids.srv_names),
        ip_addresses=ips,
        key_type=key_type,
        key_bits=bits,
        signature_algorithm=sig,
        not_before=not_before,
        not_after=not_after,
        days_left=days_left,
        self_signed=cert.subject == cert.issuer,
        sha256=hashlib.sha256(der).hexdigest(),
    )


def _common_names(subject: str) -> list[str]:
    return [part[3:] for part in subject.split(",") if part.upper().startswith("CN=")]


def _identities(info: CertInfo):
    from vines_server.xmpp.certid import Identities

    return Identities(tuple(info.dns_names), tuple(info.srv_names), tuple(info.xmpp_addrs))


def match_identity(info: CertInfo, domain: str, kind: str = "client") -> str:
    """How the certificate identifies `domain` (RFC 6125, RFC 6120 §13.7), or '' if it does not.

    The server's own matching (`vines_server.xmpp.certid`) decides: DNS-ID, SRV-ID
    `_xmpp(s)-<kind>.domain`, XmppAddr. As a diagnosis only, a certificate without any of them
    whose CN names the domain is reported as such (a warning: RFC 6125 peers refuse it).
    """
    from vines_server.xmpp.certid import dns_id_matches, match
    from vines_server.xmpp.jid import JIDError, domain_to_ascii

    ids = _identities(info)
    found = match(ids, domain, "server" if kind == "server" else "client")
    if found or ids:
        return found
    try:
        a_domain = domain_to_ascii(domain)
    except JIDError:
        return ""
    for cn in _common_names(info.subject):
        if dns_id_matches(cn, a_domain):
            return f"CN {cn} (no subjectAltName)"
    return ""


def names_of(info: CertInfo) -> list[str]:
    names = _identities(info).describe()
    return names or [f"CN={cn}" for cn in _common_names(info.subject)]


# -- probing ----------------------------------------------------------------------------------


def _attempt(
    target: dnsprobe.Target,
    domain: str,
    s2s: bool,
    ca: str | None,
    timeout: float,
) -> Handshake:
    """Handshake verifying the chain; on a verification error, again without (to read it)."""
    ctx = make_context(ca=ca)
    hs = open_stream(
        target.host,
        target.port,
        domain,
        ctx,
        direct=target.direct_tls,
        s2s=s2s,
        timeout=timeout,
        addresses=target.addresses,
    )
    if hs.verified is False and hs.verify_error:
        again = open_stream(
            target.host,
            target.port,
            domain,
            make_context(verify=False),
            direct=target.direct_tls,
            s2s=s2s,
            timeout=timeout,
            addresses=target.addresses,
        )
        again.verified = False
        again.verify_error = hs.verify_error
        return again
    return hs


def probe_target(
    target: dnsprobe.Target,
    domain: str,
    *,
    s2s: bool = False,
    ca: str | None = None,
    timeout: float = 10.0,
    versions: bool = True,
    progress: Progress = no_progress,
) -> TargetReport:
    progress(f"TLS {target.mode} {target.label}")
    hs = _attempt(target, domain, s2s, ca, timeout)
    report = TargetReport(target=target, handshake=hs)
    if versions and hs.ok:
        for version in VERSIONS:
            if not local_support(version):
                report.versions[version] = None
                continue
            progress(f"TLS {target.label}: trying {version}")
            attempt = open_stream(
                target.host,
                target.port,
                domain,
                make_context(verify=False, version=version),
                direct=target.direct_tls,
                s2s=s2s,
                timeout=timeout,
                after_tls=False,
                addresses=target.addresses,
            )
            report.versions[version] = attempt.ok
    report.chain = [cert_info(der, i) for i, der in enumerate(hs.chain)]
    hs.chain = []  # parsed above; keep the JSON readable
    report.chain_complete = _has_chain_api()
    report.trusted = hs.verified if hs.ok or hs.verify_error else None
    report.trust_error = hs.verify_error
    if report.chain:
        report.identity = match_identity(report.chain[0], domain, "server" if s2s else "client")
    _findings(report, domain, s2s, ca)
    _grade(report)
    return report


def _has_chain_api() -> bool:
    return hasattr(ssl._ssl._SSLSocket, "get_unverified_chain")  # type: ignore[attr-defined]


def _findings(r: TargetReport, domain: str, s2s: bool, ca: str | None) -> None:
    hs, t = r.handshake, r.target
    label = t.label

    def add(name: str, status: Status, detail: str, fix: str = "") -> None:
        r.findings.append(Finding(name, status, detail, fix, check="tls", target=label))

    if not hs.ok:
        fix = {
            "tcp": f"is the server running and reachable on {label}? check firewalls",
            "stream": "the port may not speak XMPP: check the SRV port"
            + (" (direct TLS port?)" if not t.direct_tls else ""),
            "starttls": "enable STARTTLS (TLS) on the server",
            "tls": "check the certificate and TLS configuration of the server"
            + (
                "; is this a STARTTLS port? direct TLS needs its own port (XEP-0368)"
                if t.direct_tls
                else "; is this a direct TLS port used for STARTTLS?"
            ),
            "features": "the server stopped after TLS: check its logs",
        }.get(hs.stage, "")
        if _closed_domain(t, s2s, hs.error):
            add("connect", Status.WARN, f"{t.mode} to {label}: {hs.error}; {NOT_FEDERATING}", fix)
        else:
            add("connect", Status.FAIL, f"{t.mode} to {label}: {hs.error}", fix)
        return
    if not t.direct_tls:
        if hs.starttls_required:
            add("starttls", Status.OK, "STARTTLS offered and required")
        else:
            add(
                "starttls",
                Status.WARN,
                "STARTTLS offered but not required",
                "require encryption (Prosody: c2s_require_encryption / s2s_require_encryption)",
            )
    else:
        alpn = hs.alpn or "none selected"
        add("direct TLS", Status.OK, f"direct TLS (XEP-0368), ALPN {alpn}")
    fs = hs.tls_version == "TLSv1.3" or "DHE" in hs.cipher
    detail = f"{hs.tls_version}, {hs.cipher} ({hs.cipher_bits} bits)"
    if hs.cipher_bits and hs.cipher_bits < 128:
        add("protocol", Status.FAIL, detail + ": weak cipher", "disable ciphers under 128 bits")
    elif not fs:
        add("protocol", Status.WARN, detail + ": no forward secrecy", "prefer ECDHE cipher suites")
    else:
        add("protocol", Status.OK, detail + ", forward secrecy")
    if r.versions:
        accepted = [v for v, ok in r.versions.items() if ok]
        refused = [v for v, ok in r.versions.items() if ok is False]
        untested = [v for v, ok in r.versions.items() if ok is None]
        text = f"accepts {', '.join(accepted) or 'none'}"
        if refused:
            text += f"; refuses {', '.join(refused)}"
        if untested:
            text += f"; not tested (local OpenSSL lacks {', '.join(untested)})"
        legacy = [v for v in accepted if v in LEGACY]
        if legacy:
            add(
                "versions",
                Status.WARN,
                text,
                f"disable {' and '.join(legacy)} (RFC 7590 / RFC 8996): TLS 1.2 minimum",
            )
        elif "TLSv1.2" not in accepted and "TLSv1.3" not in accepted:
            add("versions", Status.FAIL, text, "enable TLS 1.2 and TLS 1.3")
        else:
            add("versions", Status.OK, text)
    if not r.chain:
        add("certificate", Status.FAIL, "the server sent no certificate", "configure a certificate")
        return
    leaf = r.chain[0]
    names = ", ".join(names_of(leaf)) or "no names"
    # trust
    if r.trusted:
        add("trust", Status.OK, f"chain trusted by {'CA file ' + ca if ca else 'the system store'}")
    else:
        why = r.trust_error or "not verified"
        fix = (
            "use a certificate from a public CA (e.g. Let's Encrypt) and send the intermediates"
            if not ca
            else f"the chain does not lead to the CA in {ca}"
        )
        if leaf.self_signed:
            why = f"self-signed certificate ({why})"
            fix = "replace the self-signed certificate with one from a CA, or pass --ca FILE"
        add("trust", Status.FAIL, f"not trusted: {why}", fix)
    # identity: the source domain, never the SRV target
    if r.identity:
        status = Status.WARN if r.identity.startswith("CN ") else Status.OK
        add(
            "identity",
            status,
            f"valid for {domain} ({r.identity})",
            "add a subjectAltName dNSName" if status is Status.WARN else "",
        )
    else:
        add(
            "identity",
            Status.FAIL,
            f"certificate is for {names}, not {domain}",
            f"get a certificate whose subjectAltName includes {domain} "
            f"(dNSName, and SRVName _xmpp-{'server' if s2s else 'client'}.{domain})",
        )
    if s2s and not leaf.xmpp_addrs and r.identity:
        add("xmppAddr", Status.OK, "no id-on-xmppAddr (optional; peers use the DNS-ID)")
    # validity
    now = datetime.now(UTC)
    if leaf.not_after < now:
        add(
            "validity",
            Status.FAIL,
            f"expired {-leaf.days_left} days ago ({leaf.not_after:%Y-%m-%d})",
            "renew the certificate",
        )
    elif leaf.not_before > now:
        add(
            "validity",
            Status.FAIL,
            f"not valid before {leaf.not_before:%Y-%m-%d %H:%M} UTC",
            "check the server's clock or the certificate's dates",
        )
    elif leaf.days_left < EXPIRY_WARN_DAYS:
        add(
            "validity",
            Status.WARN,
            f"expires in {leaf.days_left} days ({leaf.not_after:%Y-%m-%d})",
            "renew the certificate soon (automate renewal)",
        )
    else:
        add("validity", Status.OK, f"valid until {leaf.not_after:%Y-%m-%d} ({leaf.days_left} days)")
    # key and signature
    weak_key = (leaf.key_type in ("RSA", "DSA") and leaf.key_bits < 2048) or (
        leaf.key_type.startswith("EC") and leaf.key_bits < 256
    )
    key_text = f"{leaf.key_type} {leaf.key_bits} bits"
    if weak_key:
        add("key", Status.WARN, key_text + ": weak", "use RSA 2048+ or ECDSA P-256+")
    else:
        add("key", Status.OK, key_text)
    sig = leaf.signature_algorithm.lower()
    if "md5" in sig or "md2" in sig:
        add("signature", Status.FAIL, leaf.signature_algorithm, "reissue with SHA-256")
    elif "sha1" in sig and not leaf.self_signed:
        add("signature", Status.WARN, leaf.signature_algorithm, "reissue with SHA-256")
    else:
        add("signature", Status.OK, leaf.signature_algorithm)


def _grade(r: TargetReport) -> None:
    """A letter from the findings (A, A-, B, C, F), each cap explained."""
    caps: list[tuple[str, str]] = []
    hs = r.handshake
    by = {f.name: f for f in r.findings}
    if not hs.ok:
        caps.append(("F", "no TLS connection"))
    else:
        for name, why in (
            ("trust", "certificate not trusted"),
            ("identity", "certificate not valid for the domain"),
            ("validity", "certificate not valid now"),
            ("signature", "broken signature algorithm"),
            ("protocol", "weak cipher"),
            ("versions", "no modern TLS version"),
        ):
            if name in by and by[name].status is Status.FAIL:
                caps.append(("F", why))
        legacy = [v for v in LEGACY if r.versions.get(v)]
        if legacy:
            caps.append(("B", f"accepts {' and '.join(legacy)}"))
        if "protocol" in by and by["protocol"].status is Status.WARN:
            caps.append(("B", "no forward secrecy"))
        if "key" in by and by["key"].status is Status.WARN:
            caps.append(("B", "weak key"))
        if "signature" in by and by["signature"].status is Status.WARN:
            caps.append(("B", "SHA-1 signature"))
        if "starttls" in by and by["starttls"].status is Status.WARN:
            caps.append(("B", "STARTTLS not required"))
        if r.versions and r.versions.get("TLSv1.3") is False:
            caps.append(("A-", "no TLS 1.3"))
    order = ["A", "A-", "B", "C", "F"]
    grade = "A"
    for letter, _ in caps:
        if order.index(letter) > order.index(grade):
            grade = letter
    r.grade = grade
    r.grade_reasons = [f"{letter}: {why}" for letter, why in caps] or [
        "A: trusted, valid for the domain, modern protocol versions only"
    ]


def targets_for(
    domain: str,
    kind: str,
    *,
    host: str | None = None,
    port: int | None = None,
    direct: bool = False,
    resolver: str | None = None,
    timeout: float = 5.0,
    progress: Progress = no_progress,
) -> tuple[list[dnsprobe.Target], list[Finding]]:
    """Targets as a client finds them; an explicit host or port skips DNS (RFC 6120 §3.2.1)."""
    if host or port:
        default = {
            ("client", False): 5222,
            ("client", True): 5223,
            ("server", False): 5269,
            ("server", True): 5270,
        }[(kind, direct)]
        t = dnsprobe.explicit_target(host or domain, port or default, direct, kind)
        return [t], []
    res = dnsprobe.lookup(domain, kind, resolver=resolver, timeout=timeout, progress=progress)
    targets = [t for t in res.targets if t.addresses or t.source == "fallback"]
    if direct:
        targets = [t for t in targets if t.direct_tls]
    bad = [f for f in res.findings if f.status is Status.FAIL]
    if not targets and not bad:
        what = "direct TLS (_xmpps-" + kind + ")" if direct else kind
        bad.append(
            Finding.fail(
                "targets",
                f"no {what} targets for {domain}",
                f"publish SRV records for {domain}",
                check="dns",
            )
        )
    return targets, bad


def probe(
    domain: str,
    *,
    s2s: bool = False,
    host: str | None = None,
    port: int | None = None,
    direct: bool = False,
    ca: str | None = None,
    resolver: str | None = None,
    timeout: float = 10.0,
    versions: bool = True,
    progress: Progress = no_progress,
) -> TlsResult:
    kind = "server" if s2s else "client"
    domain = domain.rstrip(".").lower()
    result = TlsResult(domain=domain, kind=kind, ca=ca or "system")
    targets, dns_findings = targets_for(
        domain,
        kind,
        host=host,
        port=port,
        direct=direct,
        resolver=resolver,
        timeout=min(timeout, 10.0),
        progress=progress,
    )
    result.findings.extend(dns_findings)
    if not targets:
        result.grade = "F"
        return result
    probed = probe_targets(
        targets, domain, s2s=s2s, ca=ca, timeout=timeout, versions=versions, progress=progress
    )
    result.targets, result.grade = probed.targets, probed.grade
    result.findings.extend(probed.findings)
    return result


def probe_targets(
    targets: list[dnsprobe.Target],
    domain: str,
    *,
    s2s: bool = False,
    ca: str | None = None,
    timeout: float = 10.0,
    versions: bool = True,
    progress: Progress = no_progress,
) -> TlsResult:
    """`probe_target` on each target, in parallel threads; the grade is the worst target's."""
    domain = domain.rstrip(".").lower()
    result = TlsResult(domain=domain, kind="server" if s2s else "client", ca=ca or "system")
    if not targets:
        return result
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        reports = list(
            pool.map(
                lambda t: probe_target(
                    t, domain, s2s=s2s, ca=ca, timeout=timeout, versions=versions, progress=progress
                ),
                targets,
            )
        )
    result.targets = reports
    for rep in reports:
        result.findings.extend(rep.findings)
    order = ["A", "A-", "B", "C", "F"]
    result.grade = max((rep.grade for rep in reports), key=order.index)
    return result


NOT_FEDERATING = "fine for a domain that does not federate (no _xmpp-server SRV records)"


def _closed_domain(t: dnsprobe.Target, s2s: bool, error: str | None) -> bool:
    """Nothing listens on the server fallback port and no SRV record promised anything: the
    domain simply does not federate (a closed domain), which is a choice, not a fault."""
    return s2s and t.source == "fallback" and "refused" in (error or "")


def connectivity(
    targets: list[dnsprobe.Target],
    domain: str,
    *,
    s2s: bool = False,
    ca: str | None = None,
    verify: bool = True,
    timeout: float = 10.0,
    progress: Progress = no_progress,
) -> tuple[list[Handshake], list[Finding]]:
    """Per target: TCP, stream header, STARTTLS or direct TLS (and the certificate, if `verify`)."""
    usable = [t for t in targets if t.addresses or t.source != "srv"]

    def one(t: dnsprobe.Target) -> Handshake:
        progress(f"connect {t.mode} {t.label}")
        if verify:
            return _attempt(t, domain, s2s, ca, timeout)
        return open_stream(
            t.host,
            t.port,
            domain,
            make_context(verify=False),
            direct=t.direct_tls,
            s2s=s2s,
            timeout=timeout,
            addresses=t.addresses,
        )

    if not usable:
        return [], []
    with ThreadPoolExecutor(max_workers=min(8, len(usable))) as pool:
        results = list(pool.map(one, usable))
    findings: list[Finding] = []
    kind = "server" if s2s else "client"
    for t, hs in zip(usable, results, strict=True):
        name = f"connect {kind}"
        if not hs.ok:
            status = Status.WARN if _closed_domain(t, s2s, hs.error) else Status.FAIL
            detail = f"{t.mode}: {hs.error}" + (
                f"; {NOT_FEDERATING}" if status is Status.WARN else ""
            )
            findings.append(
                Finding(
                    name,
                    status,
                    detail,
                    f"is the server listening on {t.label} with {t.mode}?",
                    check="connectivity",
                    target=t.label,
                )
            )
            continue
        detail = f"{t.mode} ok, {hs.tls_version} ({hs.seconds:.2f}s)"
        status = Status.OK
        fix = ""
        if verify:
            ident = match_identity(cert_info(hs.chain[0]), domain, kind) if hs.chain else ""
            if hs.verified is False:
                status, fix = Status.WARN, "see 'vinesctl tls' for the certificate"
                detail += f"; certificate not trusted ({hs.verify_error})"
            elif not ident:
                status, fix = Status.WARN, "see 'vinesctl tls' for the certificate"
                detail += f"; certificate not valid for {domain}"
            else:
                detail += "; certificate ok"
        hs.chain = []
        findings.append(Finding(name, status, detail, fix, check="connectivity", target=t.label))
    return results, findings
