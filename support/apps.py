from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


def _support_group_after_migrate(sender: Any, **kwargs: Any) -> None:
    from django.apps import apps

    # Auth creates each app's permissions as that app's post_migrate is sent: once the last app's
    # has been, every permission exists and the group can be given them (idempotently).
    if sender is not list(apps.get_app_configs())[-1]:
        return
    from .services import support_group_ensure

    support_group_ensure(using=kwargs.get("using", "default"))


class SupportConfig(AppConfig):
    default = True
    name = "support"
    verbose_name = "Support console"

    def ready(self) -> None:
        post_migrate.connect(_support_group_after_migrate, dispatch_uid="support_group_ensure")


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """The admin, as the support console (listed in INSTALLED_APPS in place of django.contrib.admin)."""

    default = False
    default_site = "support.site.ConsoleSite"
