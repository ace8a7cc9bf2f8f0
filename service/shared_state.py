"""What the workers tell each other: each one's own observations, and a few shared documents.

The drift window and the shadow's tally are counted by every worker on its own and added
up when reported; which version shadows is one document that every worker follows. On one
machine they are files in a directory all the workers of a ``python -m service`` share
(:class:`DirectoryState`). Several replicas share them in Redis (:class:`RedisState`, with
``REDIS_URL``), so that a report covers every replica's customers, not the one that
happened to answer.

A worker's own piece is ``publish``-ed whenever it changed (once a second at most, off the
request path) and taken out when the worker stops. A replica that dies cannot take its
pieces out: in Redis they expire ``PIECE_SECONDS`` after the worker last refreshed them.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from segmentation.artifact import write_bytes_atomically

if TYPE_CHECKING:
    from redis import Redis

logger = logging.getLogger(__name__)

PIECE_SECONDS = 30
"""How long a worker's piece outlives its last refresh in Redis (a replica that died
stops counting after this)."""
REDIS_PREFIX = "segmentation:"
TIMEOUT_SECONDS = 2.0


class SharedState(Protocol):
    """Where the workers' pieces and the shared documents are kept."""

    def publish(self, kind: str, data: bytes) -> None:
        """Put this worker's piece of ``kind`` (replacing its previous one)."""

    def pieces(self, kind: str) -> list[bytes]:
        """Every other worker's piece of ``kind`` (what cannot be read is left out)."""

    def withdraw(self, kind: str) -> None:
        """Take this worker's piece of ``kind`` out (it is stopping)."""

    def refresh(self) -> None:
        """Keep this worker's pieces alive (called once a second)."""

    def read(self, name: str) -> bytes | None:
        """The shared document ``name``, or None when there is none."""

    def write(self, name: str, data: bytes) -> None:
        """Replace the shared document ``name`` for every worker."""

    def close(self) -> None:
        """Let go of what holds the state (not the state itself)."""


def worker_id() -> str:
    """This worker's name among the others (unique across replicas and restarts)."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


class DirectoryState:
    """Pieces and documents as files in a directory the workers of one machine share."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._worker = worker_id()

    def publish(self, kind: str, data: bytes) -> None:
        write_bytes_atomically(self._own(kind), data)

    def pieces(self, kind: str) -> list[bytes]:
        found = []
        for path in self._directory.glob(f"{kind}-*.piece"):
            if path != self._own(kind):
                try:
                    found.append(path.read_bytes())
                except OSError:  # a worker that has just stopped
                    continue
        return found

    def withdraw(self, kind: str) -> None:
        self._own(kind).unlink(missing_ok=True)

    def refresh(self) -> None:
        """Nothing to do: a worker's files go when it stops."""

    def read(self, name: str) -> bytes | None:
        try:
            return (self._directory / name).read_bytes()
        except OSError:
            return None

    def write(self, name: str, data: bytes) -> None:
        write_bytes_atomically(self._directory / name, data)

    def close(self) -> None:
        """Nothing is held open."""

    def _own(self, kind: str) -> Path:
        return self._directory / f"{kind}-{self._worker}.piece"


class RedisState:
    """Pieces and documents in Redis, shared by every worker of every replica.

    A kind's pieces are keys ``<prefix><kind>:<worker>`` that expire, listed in a set
    ``<prefix><kind>`` (members whose key expired are dropped when read). Reads that fail
    leave the other workers out, logged, rather than failing a report; writes raise.
    """

    def __init__(self, url: str) -> None:
        # redis is imported by the workers that use it alone (some 6 MB of memory).
        from redis import Redis

        self._redis: Redis = Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._worker = worker_id()
        self._published: set[str] = set()

    def publish(self, kind: str, data: bytes) -> None:
        with self._redis.pipeline() as pipeline:
            pipeline.set(self._own(kind), data, ex=PIECE_SECONDS)
            pipeline.sadd(REDIS_PREFIX + kind, self._worker)
            pipeline.execute()
        self._published.add(kind)

    def pieces(self, kind: str) -> list[bytes]:
        from redis.exceptions import RedisError  # loaded with the client (see __init__)

        try:
            workers = [_text(member) for member in self._redis.smembers(REDIS_PREFIX + kind)]
            others = [worker for worker in workers if worker != self._worker]
            if not others:
                return []
            values = self._redis.mget([f"{REDIS_PREFIX}{kind}:{worker}" for worker in others])
            gone = [worker for worker, value in zip(others, values, strict=True) if value is None]
            if gone:
                self._redis.srem(REDIS_PREFIX + kind, *gone)
        except RedisError as error:
            logger.warning("the other workers' %s is left out: Redis: %s", kind, error)
            return []
        return [_bytes(value) for value in values if value is not None]

    def withdraw(self, kind: str) -> None:
        with self._redis.pipeline() as pipeline:
            pipeline.delete(self._own(kind))
            pipeline.srem(REDIS_PREFIX + kind, self._worker)
            pipeline.execute()
        self._published.discard(kind)

    def refresh(self) -> None:
        if self._published:
            with self._redis.pipeline() as pipeline:
                for kind in self._published:
                    pipeline.expire(self._own(kind), PIECE_SECONDS)
                pipeline.execute()

    def read(self, name: str) -> bytes | None:
        from redis.exceptions import RedisError  # loaded with the client (see __init__)

        try:
            value = self._redis.get(REDIS_PREFIX + name)
        except RedisError as error:
            logger.warning("shared %s unread: Redis: %s", name, error)
            return None
        return None if value is None else _bytes(value)

    def write(self, name: str, data: bytes) -> None:
        self._redis.set(REDIS_PREFIX + name, data)

    def close(self) -> None:
        self._redis.close()

    def _own(self, kind: str) -> str:
        return f"{REDIS_PREFIX}{kind}:{self._worker}"


def _bytes(value: bytes | str) -> bytes:
    """A reply as bytes (the client is made without ``decode_responses``: always bytes)."""
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def shared_state(directory: Path, redis_url: str | None) -> DirectoryState | RedisState:
    """Redis when it is set (every replica), else the machine's shared directory."""
    return DirectoryState(directory) if redis_url is None else RedisState(redis_url)
