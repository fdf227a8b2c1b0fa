"""Turns: at most `n` holders at once, the others served in the order they came."""

from __future__ import annotations

import threading
from collections import deque


class Turns:
    """A semaphore that is fair. `threading.Semaphore` lets a thread that just arrived take
    a place freed while older ones wait (they must first wake up): under load some answers
    wait behind many later ones, and the slowest hundredth waits several times the rest.
    Here a freed place goes straight to the longest waiting."""

    def __init__(self, n: int):
        self._lock = threading.Lock()
        self._free = n
        self._waiting: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the holder that hands its place over

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._free += 1
