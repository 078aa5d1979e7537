"""The support console's pages for every app's models (the console may import every app; none imports it)."""

from . import actions, devices, triggers, users

__all__ = ["actions", "devices", "triggers", "users"]
