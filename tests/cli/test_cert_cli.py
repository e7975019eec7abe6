"""`vinesctl cert show|generate|import` against a real detached server: an imported certificate
is the one presented on the wire after the reload the import signals; every failed check exits 1
with one line and leaves the installed files untouched."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from vines_server import certs

from tests.cli.test_server_cli import vinesctl
from tests.cli.test_server_ops import wait_until

DOMAIN = "localhost"  # what `server init` hosts by default


def pem(*chain) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in chain)


class LetsEncrypt:
    """A root, an intermediate and certbot's live/DOMAIN layout for a leaf they issued."""

    def __init__(self, directory: Path) -> None:
        self.root = certs.make_ca("test root")
        self.intermediate = certs.make_ca("test intermediate", issuer=self.root)
        self.ca_file = directory / "root.pem"
        self.ca_file.write_bytes(pem(self.root[0]))
        self.live = directory / "live"

    def issue(self, domain: str = DOMAIN, lineage: str | None = None, **kwargs) -> Path:
        leaf, key = certs.make_certificate([domain], issuer=self.intermediate, **kwargs)
        where = self.live / (lineage or domain)
        certs.write_pem([leaf, self.intermediate[0]], key, where / "fullchain.pem",
                        where / "privkey.pem")  # fmt: skip
        self.leaf = leaf
        return where


def presented(config: Path) -> bytes:
    """The leaf certificate the running server presents on its direct TLS port."""
    state = json.loads(config.with_name("vines.state.json").read_text())
    port = next(li["port"] for li in state["listeners"] if li["kind"] == "c2s-direct-tls")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["xmpp-client"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def der(cert) -> bytes:
    return cert.public_bytes(Encoding.DER)


def test_import_from_letsencrypt_reloads_and_serves_it(running_bundled, cli_env, tmp_path):
    config = running_bundled
    le = LetsEncrypt(tmp_path)
    le.issue("elsewhere.example", lineage="elsewhere.example")  # not ours: skipped
    lineage = le.issue()
    old = presented(config)
    log = config.with_name("vines.log")

    r = vinesctl("cert", "import", "--config", str(config), "--from", str(le.live),
                 "--ca", str(le.ca_file), "--json", env=cli_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    [item] = data["installed"]
    assert item["domain"] == DOMAIN and item["anchor"] == f"--ca {le.ca_file}"
    assert [Path(s["certificate"]).parent.name for s in data["skipped"]] == ["elsewhere.example"]
    assert data["reload"]["signalled"] is True
    key = config.with_name(f"{DOMAIN}.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() == (lineage / "privkey.pem").read_bytes()

    wait_until(lambda: "changed: certificates" in log.read_text())
    assert presented(config) == der(le.leaf) != old

    # certbot's deploy hook: one lineage, quiet, exit 0
    lineage = le.issue()
    r = vinesctl("cert", "import", "--config", str(config), "--from", str(lineage),
                 "--ca", str(le.ca_file), "--quiet", env=cli_env)  # fmt: skip
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    wait_until(lambda: log.read_text().count("changed: certificates") == 2)
    assert presented(config) == der(le.leaf)

    r = vinesctl("cert", "show", "--config", str(config), "--json", env=cli_env)
    [shown] = json.loads(r.stdout)["certificates"]
    assert shown["identity"] == f"DNS-ID {DOMAIN}" and len(shown["chain"]) == 2
    assert shown["chain"][0]["issuer"] == "CN=test intermediate"
    r = vinesctl("server", "status", "--config", str(config), "--json", env=cli_env)
    [expiry] = json.loads(r.stdout)["certificates"]
    assert expiry["domain"] == DOMAIN
    assert expiry["not_after"] == le.leaf.not_valid_after_utc.isoformat()


@pytest.fixture
def stopped(tmp_path, cli_env) -> Path:
    directory = tmp_path / "srv"
    r = vinesctl("server", "init", "--dir", str(directory), env=cli_env)
    assert r.returncode == 0, r.stderr
    return directory / "vines.toml"


def _refused(config: Path, env: dict, *args: str) -> str:
    before = {p.name: p.read_bytes() for p in config.parent.glob(f"{DOMAIN}.*")}
    r = vinesctl("cert", "import", DOMAIN, "--config", str(config), *args, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith("vinesctl: ") and r.stderr.count("\n") <= 2, r.stderr
    assert {p.name: p.read_bytes() for p in config.parent.glob(f"{DOMAIN}.*")} == before
    return r.stderr


def test_import_refuses_what_it_must_not_install(stopped, cli_env, tmp_path):
    le = LetsEncrypt(tmp_path)
    good = le.issue()
    other = le.issue(lineage="other")
    ca = ("--ca", str(le.ca_file))

    def files(chain: Path, key: Path) -> tuple[str, ...]:
        return ("--cert", str(chain), "--key", str(key))

    err = _refused(stopped, cli_env, *files(good / "fullchain.pem", other / "privkey.pem"), *ca)
    assert "does not belong to the certificate" in err
    wrong = le.issue("wrong.example", lineage="wrong")
    err = _refused(stopped, cli_env, *files(wrong / "fullchain.pem", wrong / "privkey.pem"), *ca)
    assert "not localhost" in err
    # the leaf alone: the intermediate is missing
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(pem(certs.load_certificate(other / "fullchain.pem")))
    err = _refused(stopped, cli_env, *files(leaf_only, other / "privkey.pem"), *ca)
    assert "does not verify" in err and "fullchain.pem" in err
    # no --ca: the private root is in no system store
    err = _refused(stopped, cli_env, *files(other / "fullchain.pem", other / "privkey.pem"))
    assert "does not verify" in err and "--ca" in err
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    old = le.issue(lineage="old", not_before=past, not_after=past + dt.timedelta(days=90))
    err = _refused(stopped, cli_env, *files(old / "fullchain.pem", old / "privkey.pem"), *ca)
    assert "expired on" in err
    err = _refused(stopped, cli_env, *files(tmp_path / "none.pem", old / "privkey.pem"), *ca)
    assert "cannot read the certificate" in err

    r = vinesctl("cert", "import", "--config", str(stopped), env=cli_env)
    assert r.returncode == 2 and "--from DIR" in r.stderr
    r = vinesctl("cert", "import", "nothere.example", "--config", str(stopped),
                 *files(good / "fullchain.pem", good / "privkey.pem"), env=cli_env)  # fmt: skip
    assert r.returncode == 2 and "not hosted" in r.stderr


def test_generate_and_self_signed_import(stopped, cli_env, tmp_path):
    crt = stopped.with_name(f"{DOMAIN}.crt")
    before = crt.read_bytes()
    r = vinesctl("cert", "generate", DOMAIN, "--config", str(stopped), "--key-type", "rsa",
                 "--json", env=cli_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["generated"]["chain"][0]["key_type"] == "RSA"
    assert data["reload"] == {"signalled": False, "pid": None}
    assert crt.read_bytes() != before
    assert stat.S_IMODE(stopped.with_name(f"{DOMAIN}.key").stat().st_mode) == 0o600

    # a CA-signed certificate is not replaced by a self-signed one unless forced
    le = LetsEncrypt(tmp_path)
    good = le.issue()
    r = vinesctl("cert", "import", DOMAIN, "--config", str(stopped), "--cert",
                 str(good / "fullchain.pem"), "--key", str(good / "privkey.pem"),
                 "--ca", str(le.ca_file), env=cli_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "not running: the certificate is used at the next start" in r.stdout
    r = vinesctl("cert", "generate", DOMAIN, "--config", str(stopped), env=cli_env)
    assert r.returncode == 2 and "--force" in r.stderr

    # a self-signed pair verifies against itself ("the chain as given")
    leaf, key = certs.make_certificate([DOMAIN])
    certs.write_pem(leaf, key, tmp_path / "ss.crt", tmp_path / "ss.key")
    r = vinesctl("cert", "import", DOMAIN, "--config", str(stopped), "--cert",
                 str(tmp_path / "ss.crt"), "--key", str(tmp_path / "ss.key"), "--json",
                 env=cli_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["installed"][0]["anchor"] == "the chain as given: self-signed"
    assert os.path.samefile(crt, stopped.with_name(f"{DOMAIN}.crt"))


def test_import_never_replaces_a_linked_file(stopped, cli_env, tmp_path):
    le = LetsEncrypt(tmp_path)
    lineage = le.issue()
    crt = stopped.with_name(f"{DOMAIN}.crt")
    crt.unlink()
    crt.symlink_to(lineage / "fullchain.pem")  # the config points into certbot's live/
    newer = le.issue(lineage="newer")
    err = _refused(stopped, cli_env, "--cert", str(newer / "fullchain.pem"),
                   "--key", str(newer / "privkey.pem"), "--ca", str(le.ca_file))  # fmt: skip
    assert "is a link to" in err and "reload" in err
    assert crt.is_symlink() and crt.read_bytes() == (lineage / "fullchain.pem").read_bytes()
