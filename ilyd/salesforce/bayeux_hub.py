"""The process's Bayeux I/O loop: every org's held long poll waits here, on a socket.

Salesforce holds a /meta/connect up to 110 seconds and an org's stream spends nearly all
its life waiting on one. A thread per waiting poll would cost threads by the thousand at
a thousand orgs; here one selector thread waits on every held poll's socket and on a
timer heap (backoff waits, advised intervals, read deadlines), and a fixed pool of
worker threads runs each client's next step when its socket becomes readable or its
timer is due — the model of CometD's own Java client and of aiocometd.

A client is a `Stepper`: `step(readable)` does one short blocking piece of work (a
handshake, reading a reply and handing its events over, sending the next connect) and
returns what to wait for next (`Wait`), or None when it is done. The hub never runs two
steps of one client at a time. Any thread may `wake` a waiting client (a blocking
exchange that ended on a thread of its own) or `cancel` it (the client stops).

`hub()` is the process's hub, started at its first use; its threads are daemon threads,
which never hold up the process's exit (`BayeuxHub.close()` ends a hub's threads).
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import math
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

import structlog

__all__ = ["HUB_THREADS", "SETUPS", "WORKERS", "BayeuxHub", "Gate", "Handle", "Stepper",
           "Wait", "hub"]

log = structlog.get_logger(__name__)

# Steps are short (a reply read and stored, a connect sent): a handful of threads keeps
# up with every org of a process; bench/streaming_idle.py and bench/streaming_events.py
# measure it.
WORKERS = 4
HUB_THREADS = WORKERS + 1  # and the selector thread
# Sessions being set up at once (a connection opened, a handshake, the subscribes). At a
# process's start every org sets one up: a thousand connections opened together overflow
# a server's accept queue, and a dropped SYN is retried only after a second.
SETUPS = 64


class Wait(NamedTuple):
    """What a step waits for before the next one: `sock` readable (None: nothing to
    read), or `deadline` (time.monotonic()) passed, whichever comes first."""

    sock: socket.socket | None
    deadline: float


class Stepper(Protocol):
    """A client the hub runs one step at a time."""

    def step(self, readable: bool) -> Wait | None:
        """Run one step; `readable` says whether the socket waited for is readable (or
        the client was woken), False when its deadline passed. None: the client is done."""


_WAITING, _QUEUED, _RUNNING, _DONE = "waiting", "queued", "running", "done"


class Handle:
    """One client's place in the hub: its state and what it waits for (the hub's lock
    guards every field)."""

    __slots__ = ("_done", "_hub", "cancelled", "generation", "readable", "runner", "state",
                 "stepper", "wait", "woken")

    def __init__(self, hub: BayeuxHub, stepper: Stepper) -> None:
        self._hub = hub
        self.stepper = stepper
        self.state = _QUEUED
        self.wait: Wait | None = None
        self.generation = 0  # a wait's timer and registration count only for their own
        self.readable = False  # what the queued step is told
        self.woken = False  # woken while a step ran: the next wait ends at once
        self.cancelled = False
        self.runner = 0  # the thread running its step (threading.get_ident())
        self._done = threading.Condition(hub._lock)

    @property
    def active(self) -> bool:
        """True until the client is done or cancelled and no step of it runs."""
        with self._hub._lock:
            return self.state != _DONE

    def join(self) -> None:
        """Wait until the client is done (or cancelled) and no step of it runs."""
        with self._done:
            while self.state != _DONE:
                self._done.wait()

    def wake(self) -> None:
        """End the client's current wait as if its socket had become readable."""
        self._hub._wake(self)

    def cancel(self, timeout: float) -> bool:
        """Run no further step of the client; wait at most `timeout` seconds for a step
        that is running to end. Returns whether none runs any more."""
        return self._hub._cancel(self, timeout)


class Gate:
    """At most `slots` clients at once in a stretch of their steps; the others wait,
    woken in turn as a slot is handed to them. Thread-safe."""

    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self._free = slots
        self._waiting: collections.deque[Handle] = collections.deque()
        self._inside: set[Handle] = set()

    def enter(self, handle: Handle) -> bool:
        """Whether `handle` may go in now (it holds a slot until `leave`); when not, it
        is woken once a slot is its own."""
        with self._lock:
            if handle in self._inside:
                return True
            if self._free > 0 and not self._waiting:
                self._free -= 1
                self._inside.add(handle)
                return True
            if handle not in self._waiting:
                self._waiting.append(handle)
            return False

    def leave(self, handle: Handle) -> None:
        """`handle` is out (or no longer waits): its slot goes to the next in line."""
        with self._lock:
            if handle in self._waiting:
                self._waiting.remove(handle)
                return
            if handle not in self._inside:
                return
            self._inside.discard(handle)
            self._free += 1
            woken = []
            while self._free > 0 and self._waiting:
                nxt = self._waiting.popleft()
                self._free -= 1
                self._inside.add(nxt)
                woken.append(nxt)
        for nxt in woken:
            nxt.wake()


class BayeuxHub:
    """One selector thread and `workers` threads that run the clients' steps; `setups`
    is the gate of the sessions being set up."""

    def __init__(self, workers: int = WORKERS, setups: int = SETUPS) -> None:
        self.setups = Gate(setups)
        self._lock = threading.Lock()
        # The thread that ends a step arms the poll of the socket its client waits on
        # itself (epoll is safe to change while another thread waits in it), one-shot, so
        # the selector thread is woken only by a reply, a due timer or a close.
        self._epoll = select.epoll()
        self._watched: dict[int, tuple[Handle, int, socket.socket]] = {}  # by descriptor
        self._in_epoll: set[int] = set()  # descriptors registered (armed or spent)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._epoll.register(self._wake_r.fileno(), select.EPOLLIN)
        self._signalled = False  # a wake-up byte is on its way to the selector
        # Until when the selector thread sleeps in its poll (-inf: it is not sleeping,
        # and looks at the timers before it does): an earlier timer must wake it.
        self._sleeps_until = -math.inf
        self._timers: list[tuple[float, int, Handle, int]] = []
        self._timers_compacted = 0  # the heap's size after its last compaction
        self._sequence = itertools.count()
        self._ready: collections.deque[Handle | Callable[[], object] | None] = (
            collections.deque())
        self._work = threading.Condition(self._lock)
        self._closed = False
        self._threads = [threading.Thread(target=self._select_loop, name="bayeux-hub",
                                          daemon=True)]
        self._threads += [threading.Thread(target=self._work_loop, name=f"bayeux-worker-{n}",
                                           daemon=True) for n in range(1, workers + 1)]
        for thread in self._threads:
            thread.start()

    # -- the clients' side --------------------------------------------------------------

    def start(self, stepper: Stepper) -> Handle:
        """Run `stepper`'s first step soon (told readable=False)."""
        handle = Handle(self, stepper)
        with self._lock:
            self._queue(handle, readable=False)
        return handle

    def submit(self, call: Callable[[], object]) -> None:
        """Run `call` once on a worker thread (a short task, such as a disconnect)."""
        with self._lock:
            self._ready.append(call)
            self._work.notify()

    def close(self) -> None:
        """End the hub's threads (waiting clients are dropped, running steps finish)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._ready.extend([None] * (len(self._threads) - 1))
            self._work.notify_all()
            self._notify_selector()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(10)
        self._epoll.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- under the lock -----------------------------------------------------------------

    def _queue(self, handle: Handle, *, readable: bool) -> None:
        handle.state = _QUEUED
        handle.readable = readable
        handle.generation += 1
        self._ready.append(handle)
        self._work.notify()

    def _wake(self, handle: Handle) -> None:
        with self._lock:
            if handle.state == _WAITING:
                self._drop_wait(handle)
                self._queue(handle, readable=True)
            elif handle.state == _RUNNING:
                handle.woken = True
            # queued: its step runs anyway; done: nothing to wake

    def _cancel(self, handle: Handle, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            handle.cancelled = True
            if handle.state == _WAITING:
                self._drop_wait(handle)
            if handle.state == _RUNNING and handle.runner == threading.get_ident():
                return False  # called by the step itself (from a callback): it ends after
            while handle.state == _RUNNING:  # it ends as DONE: see _run_step
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                handle._done.wait(left)
            handle.state = _DONE  # a queued step is skipped by its worker
            handle._done.notify_all()
            return True

    def _drop_wait(self, handle: Handle) -> None:
        wait, handle.wait = handle.wait, None
        handle.generation += 1  # its timer entry is now stale
        if wait is not None and wait.sock is not None:
            self._unwatch(wait.sock)

    def _watch(self, handle: Handle, generation: int, sock: socket.socket) -> None:
        """Arm the poll of `sock` for `handle`'s wait; if it is closed, the client is
        queued as readable (its step finds out why)."""
        try:
            fd = sock.fileno()
            if fd < 0:
                raise ValueError("socket closed")
            self._watched[fd] = (handle, generation, sock)
            mask = select.EPOLLIN | select.EPOLLONESHOT
            if fd in self._in_epoll:
                try:
                    self._epoll.modify(fd, mask)
                except FileNotFoundError:  # closed since, and the number taken again
                    self._epoll.register(fd, mask)
            else:
                try:
                    self._epoll.register(fd, mask)
                except FileExistsError:
                    self._epoll.modify(fd, mask)
                self._in_epoll.add(fd)
        except (ValueError, OSError):
            self._unwatch(sock)
            handle.wait = None
            self._queue(handle, readable=True)

    def _unwatch(self, sock: socket.socket) -> None:
        """Forget the wait on `sock` (an armed poll that fires later is ignored)."""
        fd = sock.fileno()
        entry = self._watched.get(fd) if fd >= 0 else None
        if entry is None or entry[2] is not sock:
            # Closed since it was watched: find it by itself, not by its number.
            fd = next((n for n, e in self._watched.items() if e[2] is sock), -1)
        self._watched.pop(fd, None)

    def _notify_selector(self) -> None:
        if self._signalled:
            return
        self._signalled = True
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"\0")

    def _push_timer(self, deadline: float, handle: Handle) -> None:
        timers = self._timers
        heapq.heappush(timers, (deadline, next(self._sequence), handle, handle.generation))
        # Every wait leaves its read deadline in the heap until it is due (two minutes):
        # under a stream of events, drop the stale ones before they pile up.
        if len(timers) > max(1024, 2 * self._timers_compacted):
            timers[:] = [t for t in timers if t[2].state == _WAITING and t[2].generation == t[3]]
            heapq.heapify(timers)
            self._timers_compacted = len(timers)

    # -- the workers --------------------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            with self._lock:
                while not self._ready:
                    self._work.wait()
                item = self._ready.popleft()
                if item is None:
                    return
                if isinstance(item, Handle):
                    if item.state != _QUEUED or item.cancelled:
                        continue
                    item.state = _RUNNING
                    item.runner = threading.get_ident()
                    item.woken = False
                    readable = item.readable
            if isinstance(item, Handle):
                self._run_step(item, readable)
            else:
                try:
                    item()
                except Exception:
                    log.exception("bayeux_hub_task_failed")

    def _run_step(self, handle: Handle, readable: bool) -> None:
        wait: Wait | None = None
        try:
            wait = handle.stepper.step(readable)
        except Exception:
            # A client's step handles its own failures; one escaping is a bug, and the
            # client stays stopped rather than running with a state nobody knows.
            log.exception("bayeux_hub_step_failed")
        with self._lock:
            if handle.cancelled or wait is None or self._closed:
                handle.state = _DONE
                handle._done.notify_all()
            elif handle.woken or _has_pending(wait.sock):
                self._queue(handle, readable=True)
            elif wait.sock is None and wait.deadline <= time.monotonic():
                self._queue(handle, readable=False)
            else:
                handle.state = _WAITING
                handle.wait = wait
                handle.generation += 1
                if math.isfinite(wait.deadline):
                    self._push_timer(wait.deadline, handle)
                    if wait.deadline < self._sleeps_until:
                        self._notify_selector()
                if wait.sock is not None:
                    self._watch(handle, handle.generation, wait.sock)

    # -- the selector thread ------------------------------------------------------------

    def _select_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            try:
                self._select_once()
            except Exception:
                # Every org's stream waits on this thread: it must not end on a bug. The
                # pause keeps a failure that repeats from spinning.
                log.exception("bayeux_hub_loop_failed")
                time.sleep(1.0)

    def _select_once(self) -> None:
        with self._lock:
            self._signalled = False
            timeout = (max(0.0, self._timers[0][0] - time.monotonic()) if self._timers
                       else None)
            self._sleeps_until = (math.inf if timeout is None
                                  else time.monotonic() + timeout)
        try:
            events = self._epoll.poll(-1 if timeout is None else timeout)
        finally:
            with self._lock:
                self._sleeps_until = -math.inf
        wake_fd = self._wake_r.fileno()
        for fd, _mask in events:
            if fd == wake_fd:
                self._drain()
                continue
            with self._lock:
                entry = self._watched.pop(fd, None)
                if entry is None:
                    continue  # a wait given up meanwhile
                handle, generation, _sock = entry
                if handle.state == _WAITING and handle.generation == generation:
                    handle.wait = None
                    self._queue(handle, readable=True)
        self._fire_timers()

    def _fire_timers(self) -> None:
        now = time.monotonic()
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                _deadline, _seq, handle, generation = heapq.heappop(self._timers)
                if handle.state != _WAITING or handle.generation != generation:
                    continue
                wait, handle.wait = handle.wait, None
                if wait is not None and wait.sock is not None:
                    self._unwatch(wait.sock)
                self._queue(handle, readable=False)

    def _drain(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:  # nothing more to read
            pass


def _has_pending(sock: socket.socket | None) -> bool:
    """Decrypted bytes waiting in a TLS socket: readable, though select would not say so
    (they are out of the kernel's buffer already)."""
    try:
        return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
    except (OSError, ValueError):  # closed: its step finds out
        return False


_hub: BayeuxHub | None = None
_hub_lock = threading.Lock()


def _forget_hub() -> None:
    # A forked child has none of the parent's threads: its first client starts its own.
    global _hub, _hub_lock
    _hub, _hub_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_hub)


def hub(workers: int = WORKERS) -> BayeuxHub:
    """The process's hub, started at the first call (with `workers` worker threads)."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = BayeuxHub(workers)
        return _hub
