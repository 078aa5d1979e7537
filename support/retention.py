"""The support console stores no rows of its own."""

from core.retention import history

from .models import SupportConsole

history(SupportConsole, why="holds the console's permissions; no rows")
