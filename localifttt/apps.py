from django.apps import AppConfig


class LocalIftttConfig(AppConfig):
    name = "localifttt"
    verbose_name = "Local IFTTT (endpoint checks and Applet emulator)"
