"""The worker's stdout and stderr, read on the trusted side and capped in memory.

The worker writes its output into a pipe, not a file: the 64 MiB file-size limit it runs under
(``confine.py``) then never applies to its prints, and a submission that prints 85 MB at import
is graded like any other. A thread of the trusted process drains the pipe (so the worker never
blocks on it) and keeps the first and the last :data:`KEEP` bytes; what lies between is counted
and dropped. :meth:`CappedOutput.text` gives a readable head and tail.
"""
from __future__ import annotations

import threading

KEEP = 64 << 10  # bytes kept at each end
CHUNK = 1 << 16


class CappedOutput:
    """Drains ``stream`` (a binary pipe) in a daemon thread, keeping its head and its tail."""

    def __init__(self, stream, keep: int = KEEP):
        self.keep, self.head, self.tail, self.dropped = keep, bytearray(), bytearray(), 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True, name="worker-output")
        self._thread.start()

    def _drain(self, stream):
        try:
            while True:
                chunk = stream.read1(CHUNK) if hasattr(stream, "read1") else stream.read(CHUNK)
                if not chunk:
                    break
                self._keep(chunk)
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def _keep(self, chunk: bytes):
        with self._lock:
            room = self.keep - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > self.keep:
                self.dropped += len(self.tail) - self.keep
                del self.tail[:len(self.tail) - self.keep]

    def wait(self, timeout: float = 2.0) -> None:
        """Give the thread up to ``timeout`` seconds to read what is left (after the worker ended)."""
        self._thread.join(timeout)

    def text(self) -> str:
        """Everything kept: the head, a line saying how much was left out, the tail."""
        with self._lock:
            head, tail, dropped = bytes(self.head), bytes(self.tail), self.dropped
        middle = f"\n[... {dropped} bytes of output left out ...]\n" if dropped else ""
        return (head.decode("utf-8", errors="replace") + middle + tail.decode("utf-8", errors="replace"))

    def last(self, n: int) -> str:
        """The last ``n`` characters of the output (for an error message)."""
        self.wait(0.5)
        return self.text()[-n:]
