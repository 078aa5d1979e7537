"""Replace every stored access token, refresh token and authorization code by its digest.

What protocol/tokens.py writes for new rows: `sha256$<hex>` in `token` (or a grant's `code`), and for an
access token the bearer string's own digest in `token_checksum` (it already holds that). Rows already
stored as digests are left alone, so running it again changes nothing. Not reversible: the tokens
themselves are gone, which is the point; rolling back the code means reconnecting IFTTT.
"""

import hashlib

from django.db import migrations

PREFIX = "sha256$"
BATCH = 1000


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _hash_column(model, field: str, checksum: bool = False) -> None:
    # bulk_update writes the values as given: the provider's checksum field does not recompute them.
    rows = model.objects.exclude(**{f"{field}__startswith": PREFIX}).order_by("pk")
    while True:
        batch = list(rows[:BATCH])
        if not batch:
            return
        for row in batch:
            digest = _digest(getattr(row, field))
            setattr(row, field, PREFIX + digest)
            if checksum:
                row.token_checksum = digest
        model.objects.bulk_update(batch, [field, "token_checksum"] if checksum else [field])


def forwards(apps, schema_editor) -> None:
    _hash_column(apps.get_model("oauth2_provider", "AccessToken"), "token", checksum=True)
    _hash_column(apps.get_model("oauth2_provider", "RefreshToken"), "token")
    _hash_column(apps.get_model("oauth2_provider", "Grant"), "code")


class Migration(migrations.Migration):
    dependencies = [
        ("iftttsvc", "0004_spent_authorization_codes"),
        ("oauth2_provider", "0012_add_token_checksum"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
