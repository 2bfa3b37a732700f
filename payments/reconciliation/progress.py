"""Progress of a running reconciliation, reported two ways: on the run row (what the report page
polls, and all there is in the embedded default, where the task runs in-process without a
result backend) and through celery-progress to the task's state in the result backend when a
worker runs it, for anything that follows the task by id."""

from __future__ import annotations

from typing import Any

from celery_progress.backend import BaseProgressRecorder, ProgressRecorder

from .services import reconciliation_run_progress


class RunProgressRecorder(BaseProgressRecorder):
    def __init__(self, *, run_id: int, task: Any = None):
        self.run_id = run_id
        backend = getattr(getattr(task, "backend", None), "__class__", type(None)).__name__
        eager = bool(getattr(getattr(task, "request", None), "is_eager", True))
        self.celery = ProgressRecorder(task) if task is not None and not eager and backend != "DisabledBackend" else None

    def set_progress(self, current: int, total: int, description: str = "") -> None:
        super().set_progress(current, total, description)
        reconciliation_run_progress(run_id=self.run_id, current=current, total=total, label=description)
        if self.celery is not None:
            self.celery.set_progress(current, total, description)

    def __call__(self, current: int, total: int, description: str = "") -> None:
        self.set_progress(current, total, description)
