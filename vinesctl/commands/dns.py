"""`vinesctl dns DOMAIN`: XMPP SRV records, their targets, the fallback, and a connection test.

Also holds the small helpers the other diagnostic commands (tls, check) share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vinesctl.errors import UsageError
from vinesctl.output import emit, json_option


def strict_option(f: Any) -> Any:
    return click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")(f)


def timeout_option(f: Any) -> Any:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1, max=600),
        default=10.0,
        show_default=True,
        metavar="SECONDS",
        help="Give up on a DNS query or a connection attempt after this long.",
    )(f)


def resolver_option(f: Any) -> Any:
    return click.option(
        "--resolver",
        metavar="IP[:PORT]",
        callback=_check_resolver,
        help="Ask this DNS server instead of the system's (e.g. 127.0.0.1:5353, [::1]:53).",
    )(f)


def _check_resolver(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from vinesctl.probes.dns import parse_resolver

    try:
        parse_resolver(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not IP[:PORT]") from None
    return value


def domain_of_argument(value: str) -> str:
    """The domain to check: a domain, or the domain part of a JID. UsageError when invalid."""
    from vinesctl.profiles import check_domain

    text = value.strip()
    domain = text.rpartition("@")[2].partition("/")[0]
    if not domain:
        raise UsageError(f"{value!r} is not a domain", "give a domain such as example.org")
    return check_domain(domain)


def finish(
    ctx: click.Context, report: Any, as_json: bool, strict: bool, render: Callable[..., Any]
) -> None:
    """Print the report (JSON or Rich) and exit with the code its findings call for."""
    report.finish()
    emit(report, as_json, lambda r: render(r, strict))
    code = report.exit_code(strict)
    if code:
        ctx.exit(code)


@click.command("dns")
@click.argument("domain")
@resolver_option
@click.option("--client", "kinds", flag_value="client", help="Only client SRV records.")
@click.option("--server", "kinds", flag_value="server", help="Only server SRV records.")
@click.option("--no-connect", is_flag=True, help="Skip the connection test per target.")
@click.option(
    "--ca",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="CA file to trust in the connection test (default: the system store).",
)
@timeout_option
@strict_option
@json_option
@click.pass_context
def command(
    ctx: click.Context,
    domain: str,
    resolver: str | None,
    kinds: str | None,
    no_connect: bool,
    ca: str | None,
    timeout: float,
    strict: bool,
    as_json: bool,
) -> None:
    """Check the XMPP DNS records of DOMAIN and connect to every target.

    Reports _xmpp-client, _xmpps-client, _xmpp-server and _xmpps-server SRV records in the order
    a client tries them (RFC 2782), a '.' target (service declared absent), the A/AAAA fallback,
    targets that are CNAMEs or do not resolve, unusual ports, a host:port used for both STARTTLS
    and direct TLS; then opens a stream to each target (STARTTLS or direct TLS).
    """
    from vinesctl.probes import dns as dnsprobe
    from vinesctl.probes import tls as tlsprobe
    from vinesctl.probes.findings import Report
    from vinesctl.render.diag import render_dns
    from vinesctl.render.findings import progress

    domain = domain_of_argument(domain)
    report = Report("dns", domain)
    results = []
    with progress(not as_json, f"checking DNS for {domain}") as step:
        for kind in [kinds] if kinds else ["client", "server"]:
            # asked for explicitly, or the client side: nothing found is a failure
            required = bool(kinds) or kind == "client"
            res = dnsprobe.lookup(
                domain, kind, resolver=resolver, timeout=timeout, progress=step, required=required
            )
            results.append(res)
            report.findings.extend(res.findings)
        report.findings.extend(dnsprobe.cross_check(results))
        handshakes = []
        if not no_connect:
            for res in results:
                hs, found = tlsprobe.connectivity(
                    res.targets,
                    domain,
                    s2s=res.kind == "server",
                    ca=ca,
                    timeout=timeout,
                    progress=step,
                )
                handshakes.extend(hs)
                report.findings.extend(found)
    report.data = {"results": results, "connections": handshakes}
    finish(ctx, report, as_json, strict, render_dns)
