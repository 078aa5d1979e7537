"""How OAuth client secrets are stored: hashed, but not with the slow password hash."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare, get_random_string


class ClientSecretHasher(BasePasswordHasher):
    """One salted SHA-256, for client secrets only (listed after the password hashers, never first).

    A slow key-derivation function protects guessable passwords. A client secret is a long random
    string that no one can guess from its hash, and the token endpoint verifies it on every call:
    there the slow hash would only let anyone who posts a wrong secret to /oauth/token/ spend half a
    second of our CPU per request (measured in bench/oauth.py).
    """

    algorithm = "client_secret_sha256"

    def salt(self) -> str:
        return get_random_string(22)

    def encode(self, password: str, salt: str) -> str:
        if password is None or not salt or "$" in salt:
            raise ValueError("A client secret and a salt without '$' are needed to hash.")
        digest = hashlib.sha256(f"{salt}${password}".encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass
