"""What every benchmark script shares: progress output, a throwaway PostgreSQL database, and the CPU
that processes (a server's workers, the database's backends) used."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def say(message: str = "") -> None:
    print(message, flush=True)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def maintenance_url(url: str) -> str:
    """The same server's `postgres` database, from which another database can be dropped and created."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))


def database_recreate(url: str) -> None:
    """Drop and create the database `url` names. Only a name starting with "bench": it is dropped."""
    import psycopg2

    name = database_name(url)
    if not name.startswith("bench") or not name.replace("_", "").isalnum():
        raise SystemExit(
            f"The database {name!r} would be dropped: name one that starts with 'bench' and has only "
            "letters, digits and underscores (--database-url)."
        )
    try:
        admin = psycopg2.connect(maintenance_url(url))
    except psycopg2.OperationalError as exc:
        raise SystemExit(
            f"Cannot reach PostgreSQL at {maintenance_url(url)}: {exc}Start it, or pass --database-url."
        ) from None
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def django_start(database_url: str, *, fresh: bool = True, **env: str) -> None:
    """Run Django in this process against `database_url` with `env` set: recreated and migrated when
    `fresh`, as found otherwise."""
    if fresh:
        say(f"Creating {database_name(database_url)} (dropped first if it exists)…")
        database_recreate(database_url)
    os.environ.update(env)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iftttsvc.settings")
    import django

    django.setup()
    if fresh:
        from django.core.management import call_command

        say("Migrating…")
        call_command("migrate", verbosity=0)


# -- CPU per process ---------------------------------------------------------------------------------


def children(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(entry.name))
    return pids


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


def cpu_used(before: dict[int, float], after: dict[int, float]) -> tuple[float, int]:
    """CPU used between two readings, process by process: one that started in between counts from
    zero, one that ended in between is lost (never negative; how many were lost is the second figure)."""
    used = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
    return used, len(before.keys() - after.keys())


def database_backends(name: str) -> list[int]:
    """The PostgreSQL backends serving the database `name` (their CPU is its share of a request)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if command.startswith("postgres: ") and f" {name} " in command:
                pids.append(int(entry.name))
    return pids
