"""OAuth secrets at rest: access tokens, refresh tokens and authorization codes are stored as digests.

A bearer string is a long random value, so its SHA-256 is as good as the value for finding its row and
worthless to whoever reads the table (or a backup of it). Each row's `token` (or a grant's `code`) holds
`sha256$<hex digest>`; an access token's `token_checksum` holds the bare digest, exactly as
django-oauth-toolkit defines it (the SHA-256 of the bearer string), so the provider's own lookup and
ours (protocol.auth) stay one indexed statement.

The models are the provider's own; the digests are written by the receivers below, so no code path (the
provider's, ours, the admin, a test) can store a secret by accident. Lookups go through `token_stored`
(protocol.oauth's validator and protocol.access).
"""

from __future__ import annotations

import hashlib
from typing import Any

from oauth2_provider.models import AccessToken, Grant, RefreshToken

STORED_PREFIX = "sha256$"


def token_digest(raw: str) -> str:
    """The SHA-256 of a bearer string, hex: an access token's `token_checksum`."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def token_stored(raw: str) -> str:
    """What the database holds for a token or code: its digest, marked as one."""
    return STORED_PREFIX + token_digest(raw)


def is_stored(value: str | None) -> bool:
    return bool(value) and str(value).startswith(STORED_PREFIX)


def _digest_before_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Replace a bearer string about to be written by its stored digest (a stored one is left as is)."""
    if raw:
        return
    field = "code" if isinstance(instance, Grant) else "token"
    if isinstance(instance, AccessToken | RefreshToken | Grant):
        value = getattr(instance, field)
        if value and not is_stored(value):
            setattr(instance, field, token_stored(value))


def _checksum_after_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Point an access token's `token_checksum` at the bearer string's digest.

    The provider's checksum field hashes whatever `token` holds as the row is written, which is by then
    the stored digest; one UPDATE by primary key puts the bearer's own digest in, on issue only.
    """
    if raw or not isinstance(instance, AccessToken) or not is_stored(instance.token):
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not {"token", "token_checksum"} & set(update_fields):
        return
    digest = instance.token.removeprefix(STORED_PREFIX)
    if instance.token_checksum != digest:
        AccessToken.objects.filter(pk=instance.pk).update(token_checksum=digest)
        instance.token_checksum = digest


def token_storage_connect() -> None:
    """Connect the receivers (from the app's ready()), for the models and any proxy of them."""
    from django.db.models.signals import post_save, pre_save

    pre_save.connect(_digest_before_save, dispatch_uid="protocol-token-digest")
    post_save.connect(_checksum_after_save, dispatch_uid="protocol-token-checksum")
