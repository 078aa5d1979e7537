"""What actions keep: each run, for support to read and replay, then it goes."""

from core.retention import kept

from .models import ActionRun

kept(ActionRun, by="created_at", setting="ACTION_RUN_RETENTION_DAYS", why="each action IFTTT ran, and its outcome")
