"""``Ticker``: one timer thread per owner, started on the first ``play()``, reused by
every later play/pause, and joined by ``stop()``."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("leafmap_tiles.map")


class Ticker:
    """Calls ``step()`` every ``interval()`` seconds while playing.

    ``play()``/``pause()`` only flip a flag: however often Play is pressed there is one
    thread.  ``stop()`` ends the thread (and waits for it) for good."""

    def __init__(self, step, interval, name: str = "leafmap_tiles-ticker"):
        self._step = step
        self._interval = interval
        self._name = name
        self._cond = threading.Condition()
        self._playing = False
        self._stopped = False
        self.thread: threading.Thread | None = None

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def stopped(self) -> bool:
        return self._stopped

    def play(self) -> None:
        with self._cond:
            if self._stopped:
                return
            self._playing = True
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self.thread.start()
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._playing = False
            self._cond.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopped = True
            self._playing = False
            self._cond.notify_all()
        t = self.thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._playing:
                    self._cond.wait()
                if self._stopped:
                    return
                deadline = time.monotonic() + max(float(self._interval()), 0.01)
                while not self._stopped and self._playing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._stopped:
                    return
                if not self._playing:
                    continue
            try:
                self._step()
            except Exception:  # a failing frame must not kill the timer
                log.exception("time slider step failed")
