from django.db import models
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken


class SupportConsole(models.Model):
    """No table: holds the permissions for the support console's pages and staff actions.

    Each staff action is its own permission, so the "Support" group gets exactly these and no
    add/change/delete permission on any model.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_console", "Can see the diagnosis and health pages"),
            ("disconnect_ifttt", "Can disconnect IFTTT for a user"),
            ("resend_realtime", "Can resend a Realtime notification"),
            ("fire_test_event", "Can fire a test event for a device"),
            ("replay_action_run", "Can replay an action run"),
            ("set_device_online", "Can mark a device offline or online"),
        ]

    def __str__(self) -> str:
        return "Support console"


def _masked(checksum: str | None, kind: str, pk: object) -> str:
    return f"{kind} …{checksum[12:16]}" if checksum else f"{kind} #{pk}"


# The OAuth provider's rows print their secret (the token, the code) as their name, and the admin
# prints names in titles, breadcrumbs, inlines and the history. These proxies print a mask instead;
# the admin shows them in place of the provider's own models.


class IftttAccessToken(AccessToken):
    class Meta:
        proxy = True
        verbose_name = "IFTTT access token"

    def __str__(self) -> str:
        return _masked(self.token_checksum, "access token", self.pk)


class IftttRefreshToken(RefreshToken):
    class Meta:
        proxy = True
        verbose_name = "IFTTT refresh token"

    def __str__(self) -> str:
        return f"refresh token #{self.pk}"


class IftttGrant(Grant):
    class Meta:
        proxy = True
        verbose_name = "IFTTT authorization code"

    def __str__(self) -> str:
        return f"authorization code #{self.pk}"


class IftttIDToken(IDToken):
    class Meta:
        proxy = True
        verbose_name = "IFTTT ID token"

    def __str__(self) -> str:
        return f"ID token #{self.pk}"
