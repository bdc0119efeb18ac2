"""Follows a mounted verifier file, as verify/follow.ts does, with the stdlib only.

The kubelet updates a mounted Secret by writing a new folder and swapping the `..data`
symlink, so the file's path leads to a new file (a new inode) after an update. The
stdlib cannot watch a folder, so a daemon thread polls: a cheap os.stat every `interval`
seconds notices the swap, and a full read every `reread` seconds catches a file
rewritten in place with the same size and time stamps (a hand edit), as the
TypeScript's 10 s poll does. The poll runs off the request path: no request waits for a
document to be read or parsed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

from .document import parse_verifier_document
from .verifier import Verifier, VerifyResult

_log: Final = logging.getLogger("keyrotor_verify")

_Signature = tuple[int, int, int, int, int]


def _signature(status: os.stat_result) -> _Signature:
    return (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )


def _read(path: str) -> tuple[bytes, _Signature]:
    # The signature of the file read, not of the path, which may lead elsewhere by now.
    with open(path, "rb") as file:
        return file.read(), _signature(os.fstat(file.fileno()))


class FollowedVerifier:
    """A verifier that follows its file: verify() uses the newest document that parsed.

    An update that cannot be read or parsed leaves the current verifier in place (keys
    keep verifying) and is reported to on_error, by default as a warning on the
    "keyrotor_verify" logger. on_reload gets the revision of each document loaded after
    the first. Callbacks run on the polling thread, or in refresh().
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        reread: float = 10.0,
        on_reload: Callable[[int], object] | None = None,
        on_error: Callable[[Exception], object] | None = None,
    ) -> None:
        if interval <= 0 or reread <= 0:
            raise ValueError("interval and reread must be positive")
        self._path = os.fspath(path)
        self._interval = interval
        self._reread = reread
        self._on_reload = on_reload
        self._on_error = on_error
        # The first load raises: a service with no verifier should not start.
        self._data, self._signature = _read(self._path)
        self._last_read = time.monotonic()
        # Replaced whole, never changed: verify() reads it once, and needs no lock.
        self._verifier = Verifier(parse_verifier_document(self._data))
        self._lock = threading.Lock()  # one check at a time: the poll's or refresh()'s
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"keyrotor-verify {self._path}", daemon=True
        )
        self._thread.start()

    @property
    def verifier(self) -> Verifier:
        """The verifier in use: a snapshot, which later updates leave alone."""
        return self._verifier

    @property
    def revision(self) -> int:
        return self._verifier.revision

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def verify(
        self, key: str, *, scope: str | None = None, now: int | None = None
    ) -> VerifyResult:
        """Verifier.verify with the current document."""
        return self._verifier.verify(key, scope=scope, now=now)

    def refresh(self) -> bool:
        """Reads the file now (say, on SIGHUP); True if a new document was loaded."""
        return self._check(full=True)

    def close(self) -> None:
        """Stops following; verify() goes on with the last document. Idempotent."""
        self._closed.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> FollowedVerifier:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FollowedVerifier {self._path!r} revision={self.revision}>"

    def _run(self) -> None:
        while not self._closed.wait(self._interval):
            self._check(full=time.monotonic() - self._last_read >= self._reread)

    def _check(self, *, full: bool) -> bool:
        with self._lock:
            if self._closed.is_set():
                return False
            try:
                if not full and _signature(os.stat(self._path)) == self._signature:
                    return False
                data, self._signature = _read(self._path)
                self._last_read = time.monotonic()
                # The content, not the revision, tells a change: a document rewritten
                # under the same revision (by hand, from a backup) must not be ignored.
                if data == self._data:
                    return False
                verifier = Verifier(parse_verifier_document(data))
            except Exception as error:  # OSError, VerifierDocumentError: keep following
                self._report(error)
                return False
            if self._closed.is_set():
                return False
            self._data = data
            self._verifier = verifier
        if self._on_reload is not None:
            try:
                self._on_reload(verifier.revision)
            except Exception as error:
                self._report(error)
        return True

    def _report(self, error: Exception) -> None:
        if self._on_error is None:
            _log.warning(
                "%s: update not loaded, revision %s stays in use: %s",
                self._path,
                self.revision,
                error,
            )
            return
        try:
            self._on_error(error)
        except Exception:
            _log.exception("%s: on_error raised", self._path)


def follow_verifier(
    path: str | os.PathLike[str],
    *,
    interval: float = 1.0,
    reread: float = 10.0,
    on_reload: Callable[[int], object] | None = None,
    on_error: Callable[[Exception], object] | None = None,
) -> FollowedVerifier:
    """Loads a mounted verifier file and follows its updates until close().

    Raises OSError or VerifierDocumentError if the file cannot be loaded at first.
    """
    return FollowedVerifier(
        path, interval=interval, reread=reread, on_reload=on_reload, on_error=on_error
    )
