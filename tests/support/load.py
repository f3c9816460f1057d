"""A client that queries a model without pause, recording every answer (for hot-swap tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Answer:
    sent: float
    status: int
    value: float | None
    error: str = ""


@dataclass
class ContinuousClient:
    """Threads that POST `:predict` back to back until stopped.

    Attributes:
      url: the server's base URL.
      model: the model name.
      x: the input value (the answer tells which version served it).
      threads: concurrent connections.
    """

    url: str
    model: str
    x: float = 2.0
    threads: int = 4
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(
                        f"{self.url}/v1/models/{self.model}:predict",
                        json={"instances": [self.x]},
                    )
                    value = (
                        response.json()["predictions"][0] if response.status_code == 200 else None
                    )
                    answer = Answer(
                        sent,
                        response.status_code,
                        value,
                        "" if value is not None else response.text,
                    )
                except Exception as err:  # noqa: BLE001 - every failure is a finding to report
                    answer = Answer(sent, 0, None, repr(err))
                with self._lock:
                    self.answers.append(answer)

    def __enter__(self) -> ContinuousClient:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    @property
    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.value is None]

    def first_answer(self, value: float, after: float = 0.0) -> Answer | None:
        """The earliest request sent after `after` that was answered with `value`."""
        with self._lock:
            matching = [a for a in self.answers if a.value == value and a.sent >= after]
        return min(matching, key=lambda a: a.sent) if matching else None

    def count(self) -> int:
        with self._lock:
            return len(self.answers)
