"""A TCP relay between worker processes and PostgreSQL that can play a database restart.

`restart(seconds)` drops every open connection at once (as a restarting server does) and refuses new
ones for `seconds`, then relays again: what clients see is what a real restart shows them, without
restarting the PostgreSQL other tests share.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class PostgresRelay:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.down_until = 0.0
        self.restarts = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                client.close()  # "the database system is starting up"
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)

    def restart(self, seconds: float) -> None:
        """Every connection dropped now; none accepted for `seconds`."""
        self.restarts += 1
        self.down_until = time.monotonic() + seconds
        with self._lock:
            victims = list(self._open)
        for end in victims:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stopped = True
        self.restart(0)
        self.listener.close()
