"""A running job's sign of life: a thread in the worker stamps the job while its task runs.

The stamp is what tells a job whose worker died (killed whole, out of memory, its host gone)
from one that is busy with a long batch: a model's `generate` call holds no Python loop
that could stamp between tokens, but it releases the GIL, so a thread can.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, connection

from models_backend import services
from models_backend.models import Job

logger = logging.getLogger(__name__)


class Heartbeat:
    """`with Heartbeat(JobClass, pk):` stamps the job every JOB_HEARTBEAT_SECONDS until the
    block ends. The thread uses its own database connection and closes it when it stops."""

    def __init__(self, job_class: type[Job], pk: int, interval: float | None = None) -> None:
        self.job_class, self.pk = job_class, pk
        self.interval = interval if interval is not None else settings.JOB_HEARTBEAT_SECONDS
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{job_class.__name__}-{pk}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    services.job_heartbeat(job_class=self.job_class, pk=self.pk)
                except DatabaseError as exc:  # the next beat tries again; silence is the signal
                    logger.warning("heartbeat of %s %s: %s", self.job_class.__name__, self.pk, exc)
        finally:
            connection.close()
