"""`vinesctl tls DOMAIN`: the TLS setup of every target of a domain, graded and explained."""

from __future__ import annotations

import click

from vinesctl.commands.dns import (
    domain_of_argument,
    finish,
    resolver_option,
    strict_option,
    timeout_option,
)
from vinesctl.output import json_option


@click.command("tls")
@click.argument("domain")
@click.option(
    "--host",
    metavar="HOST",
    help="Connect to this host (skips DNS; default port "
    "5222, 5269 with --s2s, 5223/5270 with --direct).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    metavar="N",
    help="Connect to this port (skips DNS; host defaults to DOMAIN).",
)
@click.option(
    "--direct",
    is_flag=True,
    help="Direct TLS (XEP-0368) instead of STARTTLS; with DNS, only the _xmpps- targets.",
)
@click.option("--s2s", is_flag=True, help="Check the server-to-server side (_xmpp-server).")
@click.option(
    "--ca",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Trust this CA file instead of the system store.",
)
@click.option("--no-versions", is_flag=True, help="Skip probing each TLS version separately.")
@resolver_option
@timeout_option
@strict_option
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    domain: str,
    host: str | None,
    port: int | None,
    direct: bool,
    s2s: bool,
    ca: str | None,
    no_versions: bool,
    resolver: str | None,
    timeout: float,
    strict: bool,
    as_json: bool,
) -> None:
    """Check the TLS of DOMAIN's XMPP service, target by target.

    Targets come from DNS like a client finds them (SRV, then the fallback) unless --host or
    --port is given. Per target: STARTTLS or direct TLS with ALPN, protocol and cipher, which
    versions are accepted, the certificate chain, trust (system store or --ca) and the identity
    check against DOMAIN (RFC 6125, RFC 6120 §13.7), never against the SRV target. A grade
    sums it up, with the reasons.
    """
    from vinesctl.probes import tls as tlsprobe
    from vinesctl.probes.findings import Report
    from vinesctl.render.diag import render_tls
    from vinesctl.render.findings import progress

    domain = domain_of_argument(domain)
    if host is not None and not host.strip():
        raise click.BadParameter("empty host", param_hint="--host")
    report = Report("tls", domain)
    with progress(not as_json, f"checking TLS for {domain}") as step:
        result = tlsprobe.probe(
            domain,
            s2s=s2s,
            host=host,
            port=port,
            direct=direct,
            ca=ca,
            resolver=resolver,
            timeout=timeout,
            versions=not no_versions,
            progress=step,
        )
    report.findings = result.findings
    report.data = {"result": result, "grade": result.grade}
    finish(ctx, report, as_json, strict, render_tls)
