"""Export the service's copy for pasting into IFTTT's platform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from localifttt.copytext import Identity, copy_document, copy_json, copy_markdown
from protocol.recipes import RECIPES
from protocol.registry import registry


class Command(BaseCommand):
    help = (
        "Print the service's copy (name, description, every trigger, query and action with its fields and "
        "ingredients, and the Applet recipes) as Markdown or JSON, for IFTTT's platform."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
        parser.add_argument("--output", metavar="FILE", help="Write to FILE instead of printing.")

    def handle(self, *args: Any, **options: Any) -> None:
        document = copy_document(registry=registry, identity=Identity.from_settings(), recipes=RECIPES)
        text = copy_json(document) if options["format"] == "json" else copy_markdown(document)
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote the service copy to {options['output']}.")
        else:
            self.stdout.write(text)
