"""A mounted Secret: the kubelet swaps a `..data` symlink, the poll sees it."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import unittest
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from keyrotor_verify import (
    FollowedVerifier,
    Reason,
    VerifierDocumentError,
    follow_verifier,
)

from .helpers import document, entry, make_key, write_secret_volume

KEY = make_key("current")
NEXT = make_key("next")
FAST = 0.01  # seconds between polls in these tests


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Waits for a state the poll thread brings about, failing at the deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


class Follow(unittest.TestCase):
    def setUp(self) -> None:
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        self.root = Path(folder.name)
        self.generation = 0
        self.reloads: list[int] = []
        self.errors: list[Exception] = []
        self.lock = threading.Lock()

    def write(self, content: str | bytes) -> None:
        self.generation += 1
        write_secret_volume(self.root, {"verifier.json": content}, self.generation)

    def write_document(self, *keys: str, revision: int) -> None:
        entries = (entry(key, notAfter="2200-01-01T00:00:00Z") for key in keys)
        self.write(json.dumps(document(*entries, revision=revision)))

    def follow(self, interval: float = FAST, reread: float = 10.0) -> FollowedVerifier:
        def on_reload(revision: int) -> None:
            with self.lock:
                self.reloads.append(revision)

        def on_error(error: Exception) -> None:
            with self.lock:
                self.errors.append(error)

        followed = follow_verifier(
            self.root / "verifier.json",
            interval=interval,
            reread=reread,
            on_reload=on_reload,
            on_error=on_error,
        )
        self.addCleanup(followed.close)
        return followed

    def test_a_new_revision_is_picked_up(self) -> None:
        self.write_document(KEY, revision=1)
        followed = self.follow()
        self.assertEqual(followed.revision, 1)
        self.assertEqual(followed.verify(NEXT).reason, Reason.UNKNOWN)
        self.write_document(KEY, NEXT, revision=2)
        wait_for(lambda: followed.revision == 2)
        self.assertEqual(followed.verify(NEXT).reason, Reason.VALID)
        self.assertEqual(self.reloads, [2])
        self.assertEqual(self.errors, [])
        folder = os.readlink(self.root / "..data")
        self.assertEqual(folder, "..2026_11_28_12_00_00.000002")

    def test_a_malformed_update_keeps_the_old_verifier(self) -> None:
        self.write_document(KEY, revision=1)
        followed = self.follow()
        self.write('{"apiVersion": "keyrotor.dev/verifier/v1",')
        wait_for(lambda: len(self.errors) > 0)
        self.assertIsInstance(self.errors[0], VerifierDocumentError)
        self.assertTrue(str(self.errors[0]).startswith("not JSON"))
        self.assertEqual(followed.revision, 1)
        self.assertEqual(followed.verify(KEY).reason, Reason.VALID)
        # A good update after the bad one is taken.
        self.write_document(NEXT, revision=3)
        wait_for(lambda: followed.revision == 3)
        self.assertEqual(followed.verify(KEY).reason, Reason.UNKNOWN)
        self.assertEqual(self.reloads, [3])

    def test_a_missing_file_keeps_the_old_verifier(self) -> None:
        self.write_document(KEY, revision=1)
        followed = self.follow()
        self.write_document(KEY, revision=1)  # same content: no reload
        os.unlink(self.root / "verifier.json")
        wait_for(lambda: len(self.errors) > 0)
        self.assertIsInstance(self.errors[0], FileNotFoundError)
        self.assertEqual(followed.verify(KEY).reason, Reason.VALID)
        self.assertEqual(self.reloads, [])

    def test_content_not_revision_tells_a_change(self) -> None:
        self.write_document(KEY, revision=5)
        followed = self.follow()
        self.write_document(KEY, NEXT, revision=5)
        wait_for(lambda: followed.verify(NEXT).reason == Reason.VALID)
        self.assertEqual(self.reloads, [5])

    def test_a_change_stat_misses_is_caught_by_the_full_read(self) -> None:
        # As a rewrite in place within one tick of the file system's clock would be.
        self.write_document(KEY, revision=1)
        with mock.patch("keyrotor_verify.follow._signature", return_value=(0,) * 5):
            followed = self.follow(reread=0.05)
            self.write_document(KEY, revision=2)
            wait_for(lambda: followed.revision == 2)

    def test_a_rewrite_in_place_is_seen_by_stat(self) -> None:
        self.write_document(KEY, revision=1)
        followed = self.follow()
        target = self.root / "..data" / "verifier.json"
        status = os.stat(target)
        target.write_text(target.read_text().replace('"revision": 1', '"revision": 2'))
        os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))  # ctime moves
        wait_for(lambda: followed.revision == 2)

    def test_refresh_and_close(self) -> None:
        self.write_document(KEY, revision=1)
        followed = self.follow(interval=3600.0)
        self.write_document(KEY, revision=2)
        self.assertTrue(followed.refresh())
        self.assertFalse(followed.refresh())
        self.assertEqual(followed.revision, 2)
        followed.close()
        followed.close()
        self.assertTrue(followed.closed)
        self.write_document(KEY, revision=3)
        self.assertFalse(followed.refresh())
        self.assertEqual(followed.revision, 2)
        self.assertEqual(followed.verify(KEY).reason, Reason.VALID)

    def test_close_stops_the_thread(self) -> None:
        self.write_document(KEY, revision=1)
        before = threading.active_count()
        with self.follow():
            self.assertEqual(threading.active_count(), before + 1)
        self.assertEqual(threading.active_count(), before)

    def test_the_first_load_raises(self) -> None:
        with self.assertRaises(FileNotFoundError):
            follow_verifier(self.root / "verifier.json")
        self.write("[]")
        with self.assertRaises(VerifierDocumentError):
            follow_verifier(self.root / "verifier.json")

    def test_callback_errors_do_not_stop_the_poll(self) -> None:
        self.write_document(KEY, revision=1)
        errors: list[Exception] = []

        def on_reload(revision: int) -> None:
            raise RuntimeError(f"boom {revision}")

        followed = follow_verifier(
            self.root / "verifier.json",
            interval=FAST,
            on_reload=on_reload,
            on_error=errors.append,
        )
        self.addCleanup(followed.close)
        self.write_document(KEY, revision=2)
        wait_for(lambda: len(errors) == 1)
        self.write_document(KEY, revision=3)
        wait_for(lambda: followed.revision == 3)

    def test_default_errors_are_logged(self) -> None:
        self.write_document(KEY, revision=1)
        followed = follow_verifier(self.root / "verifier.json", interval=FAST)
        self.addCleanup(followed.close)
        with self.assertLogs("keyrotor_verify", "WARNING") as logs:
            self.write("{")
            wait_for(lambda: len(logs.records) > 0)
        self.assertIn("revision 1 stays in use", logs.output[0])


if __name__ == "__main__":
    unittest.main()
