"""`vinesctl server export|import` (XEP-0227): a store exported from one bundled server and
imported into a fresh one lets every user log in (same SCRAM keys, same passwords) and see the
same roster, vCard, private XML and offline messages; import refuses to overwrite and rejects
broken or foreign files before it writes anything."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

from vines_server.storage import RosterItem
from vines_server.xmpp.sasl.credentials import derive, derive_all

from tests.cli.test_server_cli import in_store
from tests.support.logins import login
from tests.support.xmpp import TEST_ITERATIONS

ALICE, BOB = "alice@localhost", "bob@localhost"
STAMP = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def init(run_cli, directory: Path) -> Path:
    r = run_cli("server", "init", "--dir", str(directory), "--port", "0",
                "--direct-tls-port", "0", "--profile-name", directory.name)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    return directory / "vines.toml"


async def populate(storage) -> None:
    await storage.create_account(ALICE, derive_all("alice-pw", TEST_ITERATIONS))
    # an account as Prosody exports it: SCRAM-SHA-1 keys only
    await storage.create_account(BOB, {"SHA-1": derive("bob-pw", "SHA-1", TEST_ITERATIONS)})
    await storage.put_roster_item(ALICE, RosterItem(BOB, "Bob", "both", groups=("Friends", "Ü")))
    await storage.put_roster_item(ALICE, RosterItem("carol@else.example", None, "none", ask=True))
    await storage.put_roster_item(BOB, RosterItem(ALICE, "Alice & co", "both"))
    await storage.add_pending_in(
        BOB, "dave@else.example", "<presence from='dave@else.example' type='subscribe'/>"
    )
    await storage.set_vcard(ALICE, "<vCard xmlns='vcard-temp'><FN>Alice &lt;A&gt;</FN></vCard>")
    bookmarks = "<storage xmlns='storage:bookmarks'><url name='x' url='https://x'/></storage>"
    await storage.set_private(ALICE, "{storage:bookmarks}storage", bookmarks)
    await storage.store_offline(
        BOB, "<message from='alice@localhost/a' to='bob@localhost'><body>hi</body></message>", STAMP
    )


async def snapshot(storage) -> dict:
    out = {}
    for jid in await storage.list_accounts():
        account = await storage.get_account(jid)
        out[jid] = {
            "credentials": account.credentials,
            "roster": await storage.get_roster(jid),
            "pending": await storage.get_pending_in(jid),
            "vcard": await storage.get_vcard(jid),
            "private": await storage.list_private(jid),
            "offline": [(m.xml, m.stamp) for m in await storage.list_offline(jid)],
        }
    return out


def test_export_then_import_into_a_fresh_server(run_cli, tmp_path):
    old = init(run_cli, tmp_path / "old")
    in_store(old, populate)
    before = in_store(old, snapshot)
    exported = tmp_path / "export.xml"
    r = run_cli("server", "export", "--config", str(old), "--output", str(exported))
    assert r.exit_code == 0, r.stderr
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600  # password keys inside
    text = exported.read_text()
    assert "alice-pw" not in text and "<server-data xmlns='urn:xmpp:pie:0'>" in text
    r = run_cli("server", "export", "--config", str(old))  # standard output by default
    assert r.stdout == text

    new = init(run_cli, tmp_path / "new")
    r = run_cli("server", "import", "--config", str(new), str(exported))
    assert r.exit_code == 1 and "admin@localhost" in r.stderr and "--overwrite" in r.stderr
    r = run_cli("server", "import", "--config", str(new), str(exported), "--overwrite", "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert sorted(report["imported"]) == sorted(before)
    assert report["replaced"] == ["admin@localhost"]
    assert report["without_sha256"] == [BOB]
    assert report["roster_items"] == 3 and report["offline_messages"] == 1
    after = in_store(new, snapshot)
    # the export stamps each offline message with the server's XEP-0203 delay, as delivery would
    [(xml, stamp)] = after[BOB].pop("offline")
    assert stamp == STAMP and xml == before[BOB].pop("offline")[0][0].replace(
        "</body>",
        "</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-03-04T05:06:07Z'/>",
    )
    assert after == before

    # the fresh server serves them: both log in with their passwords and see their rosters
    r = run_cli("server", "start", "--config", str(new))
    assert r.exit_code == 0, r.stderr
    try:
        state = json.loads(new.with_name("vines.state.json").read_text())
        port = next(li["port"] for li in state["listeners"] if li["kind"] == "c2s-starttls")
        ca = new.with_name("localhost.crt")
        for jid, password in ((ALICE, "alice-pw"), (BOB, "bob-pw")):
            user = jid.partition("@")[0]
            seen = asyncio.run(login("localhost", user, password, port, ca, {}))
            roster = {i.jid: (i.name or "", sorted(i.groups)) for i in before[jid]["roster"]}
            assert seen["roster"] == roster, jid
            # alice has SCRAM-SHA-256 keys; bob, SHA-1 only, gets there by SCRAM-SHA-1
            assert seen["mechanism"] == ("SCRAM-SHA-256" if jid == ALICE else "SCRAM-SHA-1")
    finally:
        run_cli("server", "stop", "--config", str(new))

    # again without --overwrite: refused, nothing written
    in_store(new, lambda s: s.delete_roster_item(ALICE, BOB))
    r = run_cli("server", "import", "--config", str(new), str(exported))
    assert r.exit_code == 1 and "exist already" in r.stderr
    assert in_store(new, lambda s: s.get_roster_item(ALICE, BOB)) is None


def test_import_rejects_broken_and_foreign_files(run_cli, tmp_path):
    config = init(run_cli, tmp_path / "srv")
    directory = tmp_path / "dir"
    directory.mkdir()
    good = "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='zed'/></host></server-data>"  # noqa: E501
    (directory / "a.xml").write_text(good)
    (directory / "b.xml").write_text("<!DOCTYPE x [<!ENTITY a 'b'>]><server-data/>")
    r = run_cli("server", "import", "--config", str(config), str(directory))
    assert r.exit_code == 1 and "b.xml" in r.stderr and "nothing was imported" in r.stderr
    assert in_store(config, lambda s: s.get_account("zed@localhost")) is None

    (directory / "b.xml").write_text(good.replace("localhost", "elsewhere.example"))
    r = run_cli("server", "import", "--config", str(config), str(directory))
    assert r.exit_code == 1 and "does not host elsewhere.example" in r.stderr

    (directory / "b.xml").unlink()
    r = run_cli("server", "import", "--config", str(config), str(directory))
    assert r.exit_code == 0, r.stderr
    assert "imported 1 accounts" in r.stdout


def scram(count: str = "10000", salt: str = "c2FsdA==", key: str = "A" * 27 + "=") -> str:
    return (
        "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='zed'>"
        "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>"
        f"<iter-count>{count}</iter-count><salt>{salt}</salt>"
        f"<server-key>{key}</server-key><stored-key>{key}</stored-key>"
        "</scram-credentials></user></host></server-data>"
    )


def test_import_checks_scram_keys(run_cli, tmp_path):
    config = init(run_cli, tmp_path / "srv")
    file = tmp_path / "zed.xml"
    for document, complaint in (
        (scram(count="1000000000"), "iterations"),  # each login would burn minutes of CPU
        (scram(count="many"), "not a number"),
        (scram(key="AAAA"), "wrong size"),
        (scram(salt=""), "no salt"),
        (scram(salt="%%%"), "not base64"),
    ):
        file.write_text(document)
        r = run_cli("server", "import", "--config", str(config), str(file))
        assert r.exit_code == 1 and complaint in r.stderr, (complaint, r.stderr)
    file.write_text(scram())
    r = run_cli("server", "import", "--config", str(config), str(file), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["without_sha256"] == ["zed@localhost"]
