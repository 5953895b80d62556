"""Render scheduling for the tile servers: no wasted work, no starved layers.

A :class:`Scheduler` owns a few worker threads and a queue of render jobs, each tagged
with the source it reads.  Compared with a plain ``ThreadPoolExecutor``:

- **abandoned work is dropped**: :func:`Scheduler.run` watches the ASGI connection; when
  the client goes away (Leaflet aborts the tiles that left the view or the zoom level)
  a queued job is removed before it is rendered (counted in ``stats()["abandoned"]``),
  so what stays queued is what the current view still waits for, served in order.
- **deadline**: a render not finished ``deadline`` seconds after it started answers
  :class:`RenderDeadlineError` (the routes turn it into a 503 JSON answer).  A render
  inside GDAL cannot be interrupted; it finishes on its thread and its result is
  discarded.  Time spent queued does not count: a tile the browser still waits for is
  rendered, not refused because other tiles came first.
- **fairness**: one source never holds every worker.  A source may use at most
  ``workers`` threads, and the first job of a source that has nothing running gets a
  thread at once (up to ``workers + 2`` threads in all), so a layer that appears while
  another renders slow tiles is drawn without waiting for them; among sources, the one
  with the fewest running jobs goes first.

Threads are started on first use and stopped by :meth:`close` (called on the app's
shutdown); they are daemon threads of the server process, which exits with its parent.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import defaultdict, deque

from leafmap_tiles.errors import ClientGoneError, RenderDeadlineError, TileServerError

__all__ = ["ClientGoneError", "RenderDeadlineError", "Scheduler"]


def _consume(future) -> None:
    """Retrieve a result nobody awaits any more (no 'exception never retrieved' log)."""
    if not future.cancelled():
        future.exception()


class _Job:
    __slots__ = ("fn", "args", "key", "future", "started", "loop", "seq", "queued", "state", "urgent", "background")

    def __init__(self, fn, args, key, loop, seq, urgent, background=False):
        self.fn, self.args, self.key = fn, args, key
        self.loop = loop  # None: nobody awaits the job (background work)
        self.future = loop.create_future() if loop is not None else None
        self.started = asyncio.Event() if loop is not None else None
        self.seq = seq
        self.queued = time.monotonic()
        self.state = "queued"  # -> running -> done; or cancelled; running -> discard
        self.urgent = urgent
        self.background = background

    def mark_started(self) -> None:
        if self.loop is None:
            return
        try:
            self.loop.call_soon_threadsafe(self.started.set)
        except RuntimeError:
            pass

    def resolve(self, result=None, exc: BaseException | None = None) -> None:
        if self.loop is None:
            return
        def set_it():
            if self.future.done():
                return
            if exc is not None:
                self.future.set_exception(exc)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(set_it)
        except RuntimeError:  # the event loop is closed: nobody waits any more
            pass


class Scheduler:
    """Worker threads taking render jobs newest first, fairly across sources.

    Args:
        workers: threads one source may use at once (one more thread serves other
            sources while they are busy).
        deadline: seconds of rendering after which a job answers
            :class:`RenderDeadlineError`; None for no deadline.
        name: thread name prefix.
    """

    def __init__(self, workers: int, deadline: float | None = None, name: str = "tile") -> None:
        self.workers = max(1, int(workers))
        self.deadline = deadline
        self.name = name
        self._cond = threading.Condition()
        self._pending: dict[object, deque] = defaultdict(deque)
        self._running: dict[object, int] = defaultdict(int)
        self._threads: list[threading.Thread] = []
        self._seq = itertools.count()
        self._closed = False
        self._idle = 0
        self._background: frozenset = frozenset()
        self._stats = {"rendered": 0, "abandoned": 0, "late": 0, "failed": 0}

    # ----------------------------------------------------------------- kernel side
    def set_background(self, keys) -> None:
        """Sources whose jobs go after every other source's (e.g. the hidden frames a
        time slider preloads, so that the frame shown renders first)."""
        with self._cond:
            self._background = frozenset(keys)

    def stats(self) -> dict:
        """Counters: ``rendered`` (jobs run), ``abandoned`` (dropped: client gone
        before its render started), ``late`` (answered 503: render past the deadline),
        ``failed`` (the job raised), and ``queued``/``running`` now."""
        with self._cond:
            out = dict(self._stats)
            out["queued"] = sum(len(q) for q in self._pending.values())
            out["running"] = sum(self._running.values())
            return out

    def submit_background(self, key, fn, *args) -> None:
        """Run ``fn(*args)`` when no other job waits (after every source's tiles, the
        background sources' included), nobody awaiting it; its exceptions are counted
        as ``failed`` and dropped (e.g. a decimated level built ahead of need).
        Callable from any thread; ignored once the scheduler is closed."""
        job = _Job(fn, args, key, None, next(self._seq), False, background=True)
        try:
            self._submit(job)
        except RuntimeError:  # closed
            pass

    async def run(self, key, fn, *args, request=None, deadline: float | None | bool = True, urgent: bool = False):
        """Run ``fn(*args)`` on a worker and return its result.

        ``key`` names the source the job reads (fairness).  With ``request`` (a
        Starlette request) the job is dropped if the client disconnects first
        (raises :class:`ClientGoneError`).  ``deadline=True`` uses the scheduler's
        deadline, a number overrides it, None/False disables it; past it raises
        :class:`RenderDeadlineError` (counted from the start of the render).
        ``urgent`` jobs (kernel calls: registration, point values) go before every
        tile."""
        if deadline is True:
            deadline = self.deadline
        elif deadline is False:
            deadline = None
        loop = asyncio.get_running_loop()
        job = _Job(fn, args, key, loop, next(self._seq), urgent)
        self._submit(job)
        watcher = asyncio.ensure_future(self._watch(request, job)) if request is not None else None
        try:
            if deadline is None:
                return await job.future
            started = asyncio.ensure_future(job.started.wait())
            try:
                await asyncio.wait({job.future, started}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                started.cancel()
            # asyncio.wait, not wait_for: a job that raised a TimeoutError of its own (e.g.
            # SourceTimeoutError, a remote host that did not answer) is not a missed deadline
            done, _ = await asyncio.wait({job.future}, timeout=deadline)
            if done:
                return job.future.result()
            job.future.add_done_callback(_consume)
            self._cancel(job, "late")
            raise RenderDeadlineError(
                f"the tile was not rendered within {deadline:g} s (server busy or source slow); "
                "the map asks for it again once the view has loaded"
            )
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch(self, request, job: _Job) -> None:
        """Wait for the ASGI ``http.disconnect`` of ``request``'s connection."""
        try:
            while not job.future.done():
                message = await request.receive()
                if message.get("type") == "http.disconnect":
                    if self._cancel(job, "abandoned"):
                        job.future.add_done_callback(_consume)
                        job.resolve(exc=ClientGoneError("client disconnected"))
                    return
        except asyncio.CancelledError:
            pass
        except Exception:
            pass

    def _submit(self, job: _Job) -> None:
        with self._cond:
            if self._closed:
                raise TileServerError("scheduler is closed")
            self._pending[job.key].append(job)
            first = self._running.get(job.key, 0) == 0 and job.key not in self._background and not job.background
            cap = self.workers + (2 if first else 1)
            if self._idle == 0 and len(self._threads) < cap:
                t = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify()

    def _cancel(self, job: _Job, why: str) -> bool:
        """Drop a queued job (True), or mark a running one to be discarded (False)."""
        with self._cond:
            if job.state == "queued":
                try:
                    self._pending[job.key].remove(job)
                except ValueError:
                    pass
                job.state = "cancelled"
                self._stats[why] += 1
                return True
            if job.state == "running":
                job.state = "discard"
                if why == "late":
                    self._stats["late"] += 1
            return False

    # ----------------------------------------------------------------- workers
    def _pick(self):
        """The next job: urgent first; else among sources below their share of
        threads, foreground sources before background ones, then the one with the
        fewest running jobs, its oldest job."""
        best = None
        best_rank = None
        busy = sum(self._running.values())
        for key, q in self._pending.items():
            if not q:
                continue
            job = q[0]
            running = self._running.get(key, 0)
            if running >= self.workers and not job.urgent:
                continue
            if running and busy >= self.workers + 1 and not job.urgent:
                continue  # the last thread is kept for sources with nothing running
            if job.background and busy >= self.workers:
                continue  # background work never takes a thread tiles may need
            rank = (not job.urgent, job.background, key in self._background, running, job.seq)
            if best_rank is None or rank < best_rank:
                best, best_rank = key, rank
        if best is None:
            return None
        q = self._pending[best]
        job = q.popleft()
        if not q:
            del self._pending[best]
        return job

    def _work(self) -> None:
        while True:
            with self._cond:
                job = None
                while job is None:
                    if self._closed:
                        return
                    job = self._pick()
                    if job is None:
                        self._idle += 1
                        self._cond.wait()
                        self._idle -= 1
                job.state = "running"
                job.mark_started()
                self._running[job.key] += 1
            try:
                result, exc = job.fn(*job.args), None
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting route
                result, exc = None, e
            with self._cond:
                self._running[job.key] -= 1
                if self._running[job.key] <= 0:
                    del self._running[job.key]
                self._stats["rendered"] += 1
                if exc is not None:
                    self._stats["failed"] += 1
                job.state = "done"
                if self._pending:  # a job held back by its source's share may go now
                    self._cond.notify()
            job.resolve(result, exc)

    def close(self) -> None:
        """Stop the worker threads once their current job ends; queued jobs fail."""
        with self._cond:
            self._closed = True
            pending = [j for q in self._pending.values() for j in q]
            self._pending.clear()
            self._cond.notify_all()
        for job in pending:
            job.resolve(exc=RuntimeError("server shutting down"))
