from django.apps import AppConfig


class ProtocolConfig(AppConfig):
    """The IFTTT protocol core: the catalog registry, IFTTT's authentication, the API log."""

    name = "protocol"
    # The label this app had when it lived in the project package: it names the API log's table and
    # migrations, so keeping it spares every deployment a table rename.
    label = "iftttsvc"
    verbose_name = "IFTTT service"

    def ready(self) -> None:
        # Fill the registry: each protocol app declares its catalog in `catalog.py`.
        from .registry import registry

        registry.autodiscover()
        # OAuth tokens and codes are stored as digests, whoever saves them (see protocol/tokens.py).
        from .tokens import token_storage_connect

        token_storage_connect()
