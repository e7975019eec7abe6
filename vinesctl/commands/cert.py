"""`vinesctl cert show|generate|import`: the certificates of the bundled server of --config.

An import checks everything before it writes (vinesctl/certfiles.py), installs over the files
vines.toml names (the config is never rewritten; the key with mode 0600), then signals the
running server, whose reload rebuilds its TLS contexts: new connections get the new
certificate. As a certbot deploy hook:

    certbot ... --deploy-hook 'vinesctl cert import --config /etc/vines/vines.toml
                               --from "$RENEWED_LINEAGE" --quiet'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vinesctl.commands.server import config_option, config_path, load_config, signal_reload
from vinesctl.errors import UsageError, VinesctlError
from vinesctl.output import emit, json_option


@click.group("cert")
def command() -> None:
    """Show, generate and import the bundled server's certificates."""


def _domains(cfg: Any, domain: str | None) -> list[str]:
    """The hosted domains asked for (all when `domain` is None), by their configured name."""
    if domain is None:
        return list(cfg.domains)
    from vinesctl.profiles import check_domain

    name = check_domain(domain)
    if name not in cfg.domains:
        hosted = ", ".join(sorted(cfg.domains))
        raise UsageError(
            f"{name} is not hosted by {cfg.path} (hosted: {hosted})", "give a hosted domain"
        )
    return [name]


@command.command("show")
@click.argument("domain", required=False)
@config_option
@json_option
@click.pass_context
def show(ctx: click.Context, domain: str | None, config: str | None, as_json: bool) -> None:
    """The certificate each hosted domain serves: chain, names, expiry, issuer, key type."""
    from vinesctl.certfiles import describe

    cfg = load_config(config_path(ctx, config))
    found = [
        describe(name, cfg.domains[name].certificate, cfg.domains[name].key)
        for name in _domains(cfg, domain)
    ]
    if as_json:
        emit({"certificates": found}, True)
    else:
        from vinesctl.render.certs import certificates_view

        emit(found, False, certificates_view)
    if any(c.error for c in found):
        ctx.exit(1)


def _reload(path: Path) -> dict[str, Any]:
    pid = signal_reload(path)
    return {"signalled": pid is not None, "pid": pid}


def _say_reload(reload: dict[str, Any]) -> None:
    if reload["signalled"]:
        click.echo(
            f"signalled vines-server (pid {reload['pid']}) to reload: "
            "new connections get the new certificate"
        )
    else:
        click.echo("vines-server is not running: the certificate is used at the next start")


@command.command("generate")
@click.argument("domain")
@click.option(
    "--key-type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True,
    help="ECDSA P-256 or RSA-2048.",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Replace a certificate that is not self-signed.")
@config_option
@json_option
@click.pass_context
def generate(
    ctx: click.Context,
    domain: str,
    key_type: str,
    force: bool,
    config: str | None,
    as_json: bool,
) -> None:
    """A new self-signed certificate and key for DOMAIN, over the files vines.toml names for it,
    then a reload."""
    from vines_server.certs import make_certificate, write_pem

    from vinesctl.certfiles import describe

    path = config_path(ctx, config)
    cfg = load_config(path)
    (name,) = _domains(cfg, domain)
    files = cfg.domains[name]
    old = describe(name, files.certificate, files.key)
    if old.leaf is not None and not old.leaf.self_signed and not force:
        raise UsageError(
            f"{files.certificate} holds a certificate issued by {old.leaf.issuer}",
            "pass --force to replace it with a self-signed one",
        )
    cert, key = make_certificate([name], key_type=key_type)  # type: ignore[arg-type]
    try:
        write_pem(cert, key, files.certificate, files.key)
    except OSError as exc:
        raise VinesctlError(
            f"cannot write {files.certificate} ({exc.strerror})", "check the directory"
        ) from None
    new = describe(name, files.certificate, files.key)
    data = {"generated": new, "reload": _reload(path)}
    if as_json:
        emit(data, True)
        return
    leaf = new.leaf
    assert leaf is not None
    click.echo(
        f"generated a self-signed {leaf.key_type} certificate for {name} "
        f"(until {leaf.not_after:%Y-%m-%d}) in {files.certificate}"
    )
    _say_reload(data["reload"])


@command.command("import")
@click.argument("domain", required=False)
@click.option("--cert", "cert_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="The certificate chain (PEM, leaf first).")  # fmt: skip
@click.option("--key", "key_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Its private key (PEM, unencrypted).")  # fmt: skip
@click.option("--from", "from_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="A Let's Encrypt live/ directory, or one of its domain directories "
              "(fullchain.pem, privkey.pem).")  # fmt: skip
@click.option("--ca", metavar="FILE", type=click.Path(dir_okay=False),
              help="Verify the chain up to this root, not the system's trust store.")  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No output unless it fails (deploy hooks).")
@config_option
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    domain: str | None,
    cert_file: str | None,
    key_file: str | None,
    from_dir: str | None,
    ca: str | None,
    quiet: bool,
    config: str | None,
    as_json: bool,
) -> None:
    """Check a certificate and key (they match, the names cover the domain, the chain is
    complete and valid), install them over the files vines.toml names, and reload the server.
    Exit 1 and nothing written when a check fails."""
    from vinesctl.certfiles import CertProblem, check_pair, install, lineages, utcnow

    if from_dir is None and not (cert_file and key_file and domain):
        raise UsageError("which certificate?", "give DOMAIN --cert FILE --key FILE, or --from DIR")
    if from_dir is not None and (cert_file or key_file):
        raise UsageError("--from and --cert/--key both given", "give one of them")
    path = config_path(ctx, config)
    cfg = load_config(path)
    wanted = _domains(cfg, domain)
    anchor_file = Path(ca).expanduser() if ca else None
    now = utcnow()
    try:
        if from_dir is None:
            sources = [(Path(cert_file), Path(key_file))]  # type: ignore[arg-type]
        else:
            sources = [(d / "fullchain.pem", d / "privkey.pem") for d in lineages(Path(from_dir))]
        installed, skipped = [], []
        for chain_path, key_path in sources:
            try:
                pair = check_pair(chain_path, key_path, wanted, anchor_file, now)
            except CertProblem as exc:
                if len(sources) == 1:
                    raise
                # live/ holds every certificate certbot manages; those for other names wait
                skipped.append({"certificate": str(chain_path), "reason": str(exc)})
                continue
            for name in pair.domains:
                files = cfg.domains[name]
                try:
                    install(pair, files.certificate, files.key)
                except OSError as exc:
                    raise VinesctlError(
                        f"cannot write {exc.filename} ({exc.strerror})",
                        "run as the user that owns the server's files",
                    ) from None
                installed.append(
                    {
                        "domain": name,
                        "from": str(chain_path),
                        "certificate": str(files.certificate),
                        "key": str(files.key),
                        "not_after": pair.chain[0].not_after,
                        "issuer": pair.chain[0].issuer,
                        "anchor": pair.anchor,
                    }
                )
    except CertProblem as exc:
        raise VinesctlError(str(exc), exc.fix) from None
    if not installed:
        reasons = "; ".join(s["reason"] for s in skipped)
        raise VinesctlError(f"no certificate imported: {reasons}", "see each reason")
    data = {"installed": installed, "skipped": skipped, "reload": _reload(path)}
    if as_json:
        emit(data, True)
    elif not quiet:
        for item in installed:
            click.echo(
                f"installed the certificate for {item['domain']} (until "
                f"{item['not_after']:%Y-%m-%d}, issuer {item['issuer']}; "
                f"verified against {item['anchor']}) in {item['certificate']}"
            )
        for item in skipped:
            click.echo(f"skipped {item['certificate']}: {item['reason']}")
        _say_reload(data["reload"])
