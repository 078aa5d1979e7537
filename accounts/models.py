import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models

from protocol.models import DisconnectedBy


def _public_id() -> str:
    return secrets.token_hex(12)


class User(AbstractUser):
    """A person with an account.

    `public_id` is what IFTTT knows the user by (user/info `id`, Realtime `user_id`, Connect
    `user_id`): permanent and meaningless, never the email or username, which can change.
    """

    public_id = models.CharField(max_length=32, unique=True, default=_public_id, editable=False)
    # The isolated account that test/setup prepares for IFTTT's endpoint tests.
    is_ifttt_test_user = models.BooleanField(default=False)
    # The last time IFTTT's access was revoked, and by whom: what support reads when IFTTT's calls
    # start failing with 401.
    ifttt_disconnected_at = models.DateTimeField(null=True, blank=True)
    ifttt_disconnected_by = models.CharField(max_length=16, choices=DisconnectedBy.choices, blank=True)

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"
        # Support finds people by email first.
        indexes = [models.Index(fields=("email",), name="user_email")]

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email or self.username
