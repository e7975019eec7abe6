"""`vinesctl check DOMAIN`: DNS, connectivity, TLS (client and server) and a feature audit, as
one table of findings with remedies and a summary line. The exit code is the worst finding's."""

from __future__ import annotations

from typing import Any

import click

from vinesctl.commands.dns import (
    domain_of_argument,
    finish,
    resolver_option,
    strict_option,
    timeout_option,
)
from vinesctl.connection import connect_options
from vinesctl.errors import UsageError, VinesctlError
from vinesctl.output import json_option

CHECKS = ("dns", "connectivity", "tls", "features")


def _parse_only(value: str | None) -> list[str]:
    if not value:
        return list(CHECKS)
    chosen = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown or not chosen:
        raise UsageError(
            f"unknown check {', '.join(unknown) or repr(value)}",
            f"choose from {', '.join(CHECKS)} (comma-separated)",
        )
    return [c for c in CHECKS if c in chosen]


@click.command("check")
@click.argument("domain", required=False)
@click.option(
    "--federation",
    is_flag=True,
    help="Check every allowlisted peer of the bundled server (DNS, TLS, certificate) as it "
    "would see them, and our own certificate as peers would.",
)
@click.option(
    "--config",
    "config",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="With --federation: the server's vines.toml (default: the profile's).",
)
@click.option(
    "--only",
    metavar="CHECKS",
    help=f"Comma-separated subset of: {', '.join(CHECKS)} (default: all).",
)
@resolver_option
@click.option("--no-versions", is_flag=True, help="Skip probing each TLS version separately.")
@timeout_option
@connect_options
@strict_option
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    domain: str | None,
    federation: bool,
    config: str | None,
    only: str | None,
    resolver: str | None,
    no_versions: bool,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    strict: bool,
    as_json: bool,
) -> None:
    """Check everything about DOMAIN's XMPP service and print one table of findings.

    dns: SRV records and their targets (client and server). connectivity: a stream to every
    target. tls: certificates, trust (system store or --ca), identity, versions, for the client
    and the server ports. features: service discovery through your profile's account, checked
    against the XEP-0479 compliance suites (skipped, with the reason, when there is no profile
    or your server cannot reach DOMAIN). --server/--ca/--insecure apply to that account's login;
    --ca is also the trust anchor for the TLS checks (default: the profile's CA when DOMAIN is
    the profile's domain). Without SRV records, the profile's running bundled server is checked
    at the ports it listens on.
    """
    from vinesctl.probes import dns as dnsprobe
    from vinesctl.probes import tls as tlsprobe
    from vinesctl.probes.findings import Finding, Report
    from vinesctl.render.findings import progress, render_report

    if federation:
        if domain is not None:
            raise UsageError(
                "--federation checks the server's peers, not a DOMAIN",
                "run 'vinesctl check --federation' without a domain",
            )
        _federation(ctx, config, timeout, strict, as_json)
        return
    if domain is None:
        raise UsageError("which domain?", "give a DOMAIN, or --federation to check your peers")
    checks = _parse_only(only)
    if domain.strip().lower() == "config":
        raise UsageError(
            "'config' is not a domain: to validate a server's vines.toml, use "
            "'vinesctl server check-config'",
            "run 'vinesctl server check-config [--config PATH]', or give a domain to check",
        )
    domain = domain_of_argument(domain)
    report = Report("check", domain)
    mine = _profile_of(ctx, domain)
    if ca is None and mine is not None and mine.ca:
        ca = mine.ca  # the profile's CA is the documented trust anchor of its own domain
    bundled = mine if mine is not None and _bundled_running(mine) else None
    data: dict[str, Any] = {"checks": checks}
    add = report.findings.extend
    with progress(not as_json, f"checking {domain}") as step:
        results: dict[str, Any] = {}
        if {"dns", "connectivity", "tls"} & set(checks):
            for kind in ("client", "server"):
                results[kind] = dnsprobe.lookup(
                    domain,
                    kind,
                    resolver=resolver,
                    timeout=min(timeout, 10.0),
                    progress=step,
                    required=kind == "client",
                )
            data["dns"] = list(results.values())
            seen = _bundled_targets(results["client"], bundled) if bundled is not None else []
        if "dns" in checks:
            for res in results.values():
                add(res.findings)
            add(dnsprobe.cross_check(list(results.values())))
            add(seen)
        if "connectivity" in checks:
            for kind, res in results.items():
                _, found = tlsprobe.connectivity(
                    res.targets,
                    domain,
                    s2s=kind == "server",
                    verify=False,
                    timeout=timeout,
                    progress=step,
                )
                add(found or [_no_targets(Finding, "connectivity", kind, domain)])
        if "tls" in checks:
            data["tls"] = {}
            for kind, res in results.items():
                usable = [t for t in res.targets if t.addresses]
                if not usable:
                    add([_no_targets(Finding, "tls", kind, domain)])
                    continue
                tls = tlsprobe.probe_targets(
                    usable,
                    domain,
                    s2s=kind == "server",
                    ca=ca,
                    timeout=timeout,
                    versions=not no_versions,
                    progress=step,
                )
                for finding in tls.findings:
                    finding.name = f"{kind} {finding.name}"
                add(tls.findings)
                data["tls"][kind] = tls
        if "features" in checks:
            step(f"feature audit of {domain} (disco)")
            evidence, found = _features(ctx, domain, server, ca, insecure, timeout, results)
            data["features"] = evidence
            add(found)
    report.data = data
    finish(ctx, report, as_json, strict, render_report)


def _federation(
    ctx: click.Context, config: str | None, timeout: float, strict: bool, as_json: bool
) -> None:
    from vinesctl.commands.server import config_path, load_config
    from vinesctl.probes import federation
    from vinesctl.probes.findings import Report
    from vinesctl.render.findings import progress, render_report

    path = config_path(ctx, config)
    cfg = load_config(path)
    report = Report("check", f"federation of {', '.join(sorted(cfg.domains))}")
    with progress(not as_json, "checking federation peers"):
        findings, peers = federation.check(cfg, min(timeout, 30.0))
    report.findings.extend(findings)
    report.data = {"config": str(path), "peers": peers}
    finish(ctx, report, as_json, strict, render_report)


def _profile_of(ctx: click.Context, domain: str) -> Any:
    """The selected profile when DOMAIN is its account's domain."""
    from vinesctl.profiles import current

    try:
        profile = current(ctx, required=False)
    except UsageError:
        return None
    return profile if profile is not None and profile.domain == domain else None


def _bundled_running(profile: Any) -> bool:
    from vinesctl.connection import bundled_listeners

    return bool(profile.config and bundled_listeners(profile.config))


def _bundled_targets(client: Any, profile: Any) -> list[Any]:
    """Without client SRV records, a client on this machine reaches the profile's bundled
    server through the port it runs on: probe its listeners (from its state file), the direct
    TLS one included, in place of the conventional fallback port."""
    from vinesctl.connection import bundled_listeners
    from vinesctl.probes.dns import explicit_target
    from vinesctl.probes.findings import Finding

    if any(t.source == "srv" for t in client.targets):
        return []
    direct = {"c2s-starttls": False, "c2s-direct-tls": True}
    client.targets = []
    for kind, host, port in bundled_listeners(profile.config):
        if kind in direct:
            target = explicit_target(host, port, direct[kind], "client")
            target.addresses = [host]
            client.targets.append(target)
    listed = ", ".join(f"{t.label} ({t.mode})" for t in client.targets)
    return [
        Finding.ok(
            "client targets",
            f"no SRV records: checking the bundled server of profile {profile.name!r} "
            f"({profile.config}) at {listed}",
            check="dns",
        )
    ]


def _no_targets(finding_cls: Any, check: str, kind: str, domain: str) -> Any:
    return finding_cls.skip(
        f"{kind} targets",
        f"no reachable {kind} targets for {domain} (see the dns findings)",
        check=check,
    )


def _features(
    ctx: click.Context,
    domain: str,
    server: str | None,
    ca: str | None,
    insecure: bool,
    timeout: float,
    results: dict[str, Any],
) -> tuple[Any, list[Any]]:
    """(evidence or None, findings): disco through the profile's account, then the audit."""
    import asyncio

    from vinesctl.connection import settings_from
    from vinesctl.probes import features

    try:
        settings = settings_from(ctx, server, ca, insecure)
    except UsageError as exc:
        return None, features.skipped(
            f"no account to query with ({exc.message})",
            exc.fix or "add a profile with 'vinesctl profile add'",
        )
    evidence = features.Evidence(domain)
    client_res = results.get("client")
    if client_res is not None:
        evidence.direct_tls = any(t.direct_tls and t.addresses for t in client_res.targets)
    try:
        asyncio.run(_gather(settings, domain, evidence, timeout))
    except VinesctlError as exc:
        return evidence, features.skipped(exc.message, exc.fix or "")
    return evidence, features.audit(evidence)


async def _gather(settings: Any, domain: str, ev: Any, timeout: float) -> None:
    import asyncio

    from vinesctl.xmpp import disco
    from vinesctl.xmpp.session import open_session

    async with open_session(settings, ("xep_0030",), timeout) as client:
        try:
            info = await disco.get_info(client, domain, "", timeout)
        except disco.DiscoError as exc:
            raise disco.unreachable(exc, settings.domain) or exc from None
        ev.server_features = {f.var for f in info.features}
        ev.server_identities = {(i.category, i.type) for i in info.identities}
        ev.software = next((i.name for i in info.identities if i.category == "server"), "")
        ev.forms = {f.form_type for f in info.forms if f.form_type}
        try:
            items = await disco.get_items(client, domain, "", timeout)
        except disco.DiscoError:
            items = []

        async def item_info(item: Any) -> Any:
            try:
                return await disco.get_info(client, item.jid, item.node, timeout)
            except disco.DiscoError:
                return None

        for sub in await asyncio.gather(*(item_info(i) for i in items[:50])):
            if sub is not None:
                ev.item_features |= {f.var for f in sub.features}
                ev.item_identities |= {(i.category, i.type) for i in sub.identities}
        if settings.domain.lower() == domain.lower():
            # the account's own bare JID shows PEP, MAM, push... (only on its own domain)
            try:
                own = await disco.get_info(client, settings.jid, "", timeout)
                ev.account_features = {f.var for f in own.features}
                ev.account_identities = {(i.category, i.type) for i in own.identities}
                ev.account_checked = True
            except disco.DiscoError:
                pass
            ev.stream_features = set(getattr(client, "vinesctl_features", set()))
