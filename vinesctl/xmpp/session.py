"""A logged-in slixmpp session for the console, from `ConnectionSettings`.

    async with open_session(settings, plugins=("xep_0030",)) as client:
        ...

Every failure becomes a `VinesctlError` naming the cause and the fix: connection refused or
timed out, certificate not trusted, authentication failed. Connecting never retries forever
(slixmpp's default): the first failure ends the attempt, and the whole login is bounded by
`timeout`. Also records the stream features the server advertised (`client.vinesctl_features`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import ssl
import sys
import types
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, TypeVar

from vinesctl.errors import VinesctlError

NS_STREAMS = "http://etherx.jabber.org/streams"
T = TypeVar("T")


def _reason(exc: object) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or exc.__class__.__name__


def _condition_and_text(stanza: Any) -> tuple[str, str]:
    if not hasattr(stanza, "get"):
        return str(stanza), ""
    return str(stanza["condition"] or ""), str(stanza["text"] or "").strip()


def _auth_failure(jid: str, failure: Any) -> tuple[str, str]:
    """A SASL <failure/> (RFC 6120 6.5) as one line: a disabled account says so."""
    condition, text = _condition_and_text(failure)
    if condition == "account-disabled":
        return (
            f"the account {jid} is disabled" + (f" ({text})" if text else ""),
            "another administrator can run 'vinesctl user enable "
            f"{jid}', or on the server's machine 'vinesctl user enable {jid} --config PATH'",
        )
    detail = f" ({condition}: {text})" if text else f" ({condition})" if condition else ""
    return (
        f"authentication failed for {jid}{detail}",
        "check the password (VINESCTL_PASSWORD or the profile) and the account",
    )


def _stream_error(where: str, error: Any) -> tuple[str, str]:
    """The server's own words (e.g. a ban's retry time) with the condition."""
    condition, text = _condition_and_text(error)
    said = f"{condition}: {text}" if text else condition
    if "retry after" in text:  # a ban (too many failed logins from this address)
        return (
            f"{where} refused the connection ({said})",
            "wait until then, or ask an operator of the server to run 'vinesctl unban IP'",
        )
    if condition == "policy-violation":
        return f"{where} closed the stream ({said})", "stay within the server's limits"
    return f"{where} closed the stream ({said})", "check the account's domain and the server's logs"


async def guarded(client: Any, work: Awaitable[T]) -> T:
    """Await `work`, but when the server closes the stream meanwhile (e.g. a stanza too big),
    raise its error at once instead of waiting for a reply that cannot come."""
    task = asyncio.ensure_future(work)
    closed = client.vinesctl_closed
    await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    closed.result()  # raises the server's error
    raise AssertionError("unreachable")  # pragma: no cover


def _tls_context(settings: Any) -> ssl.SSLContext | None:
    """With --ca or --insecure, our own context: slixmpp's default one loads the system trust
    store twice (~35 ms) only to be told to trust one file. None: slixmpp's default."""
    if not settings.ca and not settings.insecure:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check and CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=settings.ca)
    return ctx


def _fast_scram() -> None:
    """slixmpp derives the SCRAM salted password with a Python loop of HMACs (~45 ms for 10 000
    iterations); hashlib.pbkdf2_hmac computes the same Hi() (RFC 5802) in C."""
    import hashlib

    from slixmpp.util.sasl.mechanisms import SCRAM

    if getattr(SCRAM.Hi, "vinesctl", False):
        return

    def hi(self: Any, text: Any, salt: Any, iterations: int) -> bytes:
        return hashlib.pbkdf2_hmac(self.hash().name, bytes(text), bytes(salt), iterations)

    hi.vinesctl = True  # type: ignore[attr-defined]
    SCRAM.Hi = hi


# Most of `import slixmpp` (~75 ms) is modules a console session does not use: pygments, for a
# highlighter slixmpp defines but never calls (~8 ms); aiodns, for DNS lookups slixmpp skips
# when it is given the address (~15 ms); importlib.metadata, to read slixmpp's own version
# (~15 ms, see `_slixmpp_version`).
_UNUSED_BY_SLIXMPP = ("pygments",)
_UNUSED_WITH_ADDRESS = ("aiodns",)


def _import_slixmpp(with_address: bool) -> Any:
    """slixmpp, imported with the modules it will not use hidden (it falls back without them);
    aiodns comes back as soon as a session in this process needs DNS."""
    if "slixmpp" not in sys.modules:
        hide = _UNUSED_BY_SLIXMPP + (_UNUSED_WITH_ADDRESS if with_address else ())
        hidden = [name for name in hide if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # `import name` fails
        version = _slixmpp_version()
        if version is not None:
            sys.modules[version.__name__] = version
        try:
            import slixmpp
        finally:
            for name in hidden:
                if sys.modules.get(name, False) is None:
                    del sys.modules[name]
        if version is not None:  # as an import would have bound it
            slixmpp.version = version
    if not with_address:
        _restore_aiodns()
    import slixmpp

    return slixmpp


def _slixmpp_version() -> types.ModuleType | None:
    """A ready `slixmpp.version`: slixmpp's module asks importlib.metadata for the version, which
    imports zipfile, email and csv; the answer is the name of the .dist-info directory beside
    the package. None (the real module runs) when the name is not a plain X.Y.Z."""
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isfile(os.path.join(folder, "slixmpp", "__init__.py")):
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            return None
        infos = [n for n in names if re.fullmatch(r"slixmpp-[^-]+\.dist-info", n)]
        if len(infos) != 1:
            return None
        version = infos[0][len("slixmpp-") : -len(".dist-info")]
        if not re.fullmatch(r"\d+\.\d+\.\d+", version):
            return None
        module = types.ModuleType("slixmpp.version")
        module.__version__ = version  # type: ignore[attr-defined]
        module.__version_info__ = tuple(map(int, version.split(".")))  # type: ignore[attr-defined]
        return module
    return None


def _restore_aiodns() -> None:
    """SRV and host lookups through aiodns, as slixmpp does when it finds aiodns at import."""
    from slixmpp.xmlstream import resolver

    # a slixmpp without this switch (a later release) resolves as it decides: leave it be
    if getattr(resolver, "AIODNS_AVAILABLE", True):
        return
    try:
        import aiodns
    except ImportError:
        return
    resolver.aiodns = aiodns
    resolver.AIODNS_AVAILABLE = True


def load_slixmpp(settings: Any) -> Any:
    """slixmpp as a session with `settings` uses it (`open_session` imports it too: calling
    this first only chooses when)."""
    # slixmpp skips DNS with both host and port (XMLStream.custom_address)
    return _import_slixmpp(with_address=bool(settings.host and settings.port))


@contextlib.asynccontextmanager
async def open_session(
    settings: Any, plugins: Iterable[str] = ("xep_0030",), timeout: float = 20.0
) -> AsyncIterator[Any]:
    slixmpp = load_slixmpp(settings)
    from slixmpp.xmlstream.handler import Callback

    # slixmpp logs connection trouble itself; the error we raise says it once (--debug shows all)
    logger = logging.getLogger("slixmpp")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    from slixmpp.xmlstream.matcher import MatchXPath

    _fast_scram()
    resource = f"vinesctl-{secrets.token_hex(3)}"
    client = slixmpp.ClientXMPP(
        f"{settings.jid}/{resource}", settings.password, ssl_context=_tls_context(settings)
    )
    if settings.host:
        client.enable_direct_tls = False  # an explicit address is a STARTTLS port
    for plugin in plugins:
        client.register_plugin(plugin)
    client.vinesctl_features = set()

    def on_features(stanza: Any) -> None:
        for child in stanza.xml:
            client.vinesctl_features.add(child.tag.lstrip("{").split("}")[0])

    client.register_handler(
        Callback("vinesctl features", MatchXPath(f"{{{NS_STREAMS}}}features"), on_features)
    )
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    where = settings.address

    # after login, a stream error or a lost connection ends the work at once (see `guarded`)
    closed: asyncio.Future[None] = loop.create_future()
    closed.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no warning
    client.vinesctl_closed = closed
    ending = False

    def fail(message: str, fix: str) -> None:
        if not started.done():
            started.set_exception(VinesctlError(message, fix))
        elif not closed.done() and not ending:
            closed.set_exception(VinesctlError(message, fix))

    client.add_event_handler("session_start", lambda _e: started.done() or started.set_result(None))
    client.add_event_handler("failed_auth", lambda e: fail(*_auth_failure(settings.jid, e)))
    client.add_event_handler(
        "connection_failed",
        lambda e: fail(
            f"cannot reach {where} ({_reason(e)})",
            "is the server running? try 'vinesctl server status', or check --server",
        ),
    )
    client.add_event_handler(
        "ssl_invalid_chain",
        lambda e: fail(
            f"the certificate of {where} is not trusted ({_reason(e)})",
            "pass --ca FILE with the server's CA (or fix the server's certificate chain)",
        ),
    )
    client.add_event_handler("stream_error", lambda e: fail(*_stream_error(where, e)))

    def on_disconnected(reason: Any) -> None:
        text = str(reason or "")
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            why = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip()
            fail(
                f"the certificate of {where} is not trusted ({why or 'verify failed'})",
                "pass --ca FILE with the server's CA (or fix the server's certificate chain)",
            )
        when = "" if started.done() else " before login"
        fail(
            f"{where} closed the connection{when} ({text or 'no reason given'})",
            "check the server's logs; try --debug",
        )

    client.add_event_handler("disconnected", on_disconnected)
    client.connect(settings.host, settings.port)
    try:
        try:
            await asyncio.wait_for(asyncio.shield(started), timeout)
        except TimeoutError:
            raise VinesctlError(
                f"cannot log in to {where} as {settings.jid}: timed out after {timeout:g}s",
                "is the server reachable? try 'vinesctl dns' and 'vinesctl tls' on the domain",
            ) from None
        yield client
    finally:
        ending = True
        with contextlib.suppress(Exception):
            client.cancel_connection_attempt()
        # disconnect() returns a future that ends when the disconnect has; asyncio.wait neither
        # raises if slixmpp cancels it nor swallows our own cancellation
        await asyncio.wait({asyncio.ensure_future(client.disconnect())}, timeout=3)
        with contextlib.suppress(Exception):
            client.abort()
        # slixmpp only cancels its output-filter task in __del__, and a task collected while
        # still pending prints "Task was destroyed but it is pending!": end it here, in the loop.
        filters = getattr(client, "_run_out_filters", None)
        if filters is not None and not filters.done():
            filters.cancel()
            await asyncio.wait({filters}, timeout=1)
