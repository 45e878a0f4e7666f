"""Turso-style tokens for the sqld auth tests: an Ed25519 key pair and EdDSA JWTs."""

from __future__ import annotations

import base64
import time

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class KeyPair:
    """A fresh Ed25519 key pair; ``public_pem`` is what sqld's ``--auth-jwt-key-file`` reads."""

    def __init__(self) -> None:
        self._private = Ed25519PrivateKey.generate()
        self.public_pem = self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, access: str = "rw", expires_in: float = 3600) -> str:
        """A signed JWT with the claims ``{"a": access, "exp": now + expires_in}``."""
        header = _b64(orjson.dumps({"alg": "EdDSA", "typ": "JWT"}))
        claims = _b64(orjson.dumps({"a": access, "exp": int(time.time() + expires_in)}))
        signing_input = f"{header}.{claims}".encode("ascii")
        return f"{header}.{claims}.{_b64(self._private.sign(signing_input))}"
