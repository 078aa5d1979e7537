"""What accounts keep: people, and short-lived sign-in records."""

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session

from core.retention import history, kept

from .models import User

history(User, why="people's accounts; deleted when the person closes theirs")
kept(Session, by="expire_date", setting="SESSION_RETENTION_DAYS", why="expired sign-in sessions")
for model in (AccessAttempt, AccessFailureLog, AccessLog):
    kept(model, by="attempt_time", setting="LOGIN_RECORD_RETENTION_DAYS", why="sign-in attempts and lockouts")
history(LogEntry, why="the audit of what staff did in the support console")
for model in (Group, Permission, ContentType):
    history(model, why="configuration")
