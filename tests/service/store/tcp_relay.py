"""A real TCP path to a server that a test can freeze, as a hung network path or a stuck
server would: while frozen, connections are still accepted and what is sent is still
taken by the kernel, but nothing is passed on in either direction; thawed, what waited
is delivered (including statements whose senders have given up on them)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType


class TcpRelay:
    """Relays ``127.0.0.1:<port>`` to ``target``; :meth:`freeze` and :meth:`thaw` the path."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._running = threading.Event()
        self._running.set()
        self._flowing = threading.Event()
        self._flowing.set()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        """Break every connection (each side sees it closed), then stop."""
        self._running.clear()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._flowing.set()  # the pumps wake, see they are done, and end

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while self._running.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                thread = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(source, selectors.EVENT_READ)
            while self._running.is_set():
                self._flowing.wait()
                if not self._running.is_set():
                    return
                if not selector.select(timeout=0.05) or not self._flowing.is_set():
                    continue
                try:
                    data = source.recv(65536)
                    if not data:
                        sink.shutdown(socket.SHUT_WR)
                        return
                    sink.sendall(data)
                except OSError:
                    return
