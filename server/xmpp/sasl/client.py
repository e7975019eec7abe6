"""Our own SCRAM client (RFC 5802/7677), pure: for tests, the benchmark's load generator, and
-PLUS with tls-server-end-point, which slixmpp cannot do.

    c = ScramClient("SHA-256", "alice", "secret", cb_type="tls-server-end-point", cb_data=h)
    first = c.first(); final = c.final(server_first); assert c.verify(server_final)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from .credentials import HASHES, salted_password
from .steps import b64decode_strict, escape_saslname


class ScramClient:
    def __init__(
        self,
        hash_name: str,
        username: str,
        password: str,
        cb_type: str | None = None,
        cb_data: bytes = b"",
        *,
        authzid: str | None = None,
        nonce: str | None = None,
        cb_supported: bool = False,
        min_iterations: int = 1,
        salted_cache: dict[tuple[str, bytes, int], bytes] | None = None,
    ) -> None:
        """`cb_type` selects -PLUS (flag 'p='). Without it the flag is 'n', or 'y' when
        `cb_supported` (we could bind but the server did not offer -PLUS). `nonce` is
        injectable for test vectors; `min_iterations` guards against a weakened server.
        `salted_cache`, a dict shared between clients of one password, skips PBKDF2 on repeat
        logins, so a load generator measures the server rather than itself."""
        if hash_name not in HASHES:
            raise ValueError(f"unsupported hash {hash_name!r}")
        self.hash_name = hash_name
        self.mechanism = f"SCRAM-{hash_name}" + ("-PLUS" if cb_type else "")
        self._algo = HASHES[hash_name]
        self._password = password
        self._cb_data = cb_data if cb_type else b""
        flag = f"p={cb_type}" if cb_type else ("y" if cb_supported else "n")
        authz = f"a={escape_saslname(authzid)}" if authzid else ""
        self._gs2_header = f"{flag},{authz},"
        self._nonce = nonce if nonce is not None else secrets.token_urlsafe(18)
        self._bare = f"n={escape_saslname(username)},r={self._nonce}"
        self._min_iterations = min_iterations
        self._server_signature: bytes | None = None
        self._cache = salted_cache

    def first(self) -> bytes:
        return (self._gs2_header + self._bare).encode()

    def final(self, server_first: bytes) -> bytes:
        """client-final for a server-first; raises ValueError when server-first is unusable."""
        text = server_first.decode("utf-8")
        m = re.fullmatch(r"r=([^,]+),s=([^,]+),i=([0-9]+)(?:,[A-Za-z]=[^,]+)*", text)
        if m is None:
            raise ValueError("malformed server-first message")
        nonce, salt_b64, iterations = m.group(1), m.group(2), int(m.group(3))
        salt = b64decode_strict(salt_b64)
        if salt is None or not nonce.startswith(self._nonce) or nonce == self._nonce:
            raise ValueError("server-first has a bad salt or nonce")
        if iterations < self._min_iterations:
            raise ValueError(f"iteration count {iterations} below {self._min_iterations}")

        cbind = base64.b64encode(self._gs2_header.encode() + self._cb_data).decode()
        without_proof = f"c={cbind},r={nonce}"
        auth_message = f"{self._bare},{text},{without_proof}".encode()
        salted = self._salted(salt, iterations)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._algo, client_key).digest()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> bool:
        """True when server-final proves the server knows our keys (mutual authentication)."""
        if self._server_signature is None or not server_final.startswith(b"v="):
            return False
        signature = b64decode_strict(server_final[2:].decode("ascii", "replace"))
        return signature is not None and hmac.compare_digest(signature, self._server_signature)

    def _salted(self, salt: bytes, iterations: int) -> bytes:
        key = (self.hash_name, salt, iterations)
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        salted = salted_password(self._password, self.hash_name, salt, iterations)
        if self._cache is not None:
            self._cache[key] = salted
        return salted

    def _hmac(self, key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, self._algo).digest()
