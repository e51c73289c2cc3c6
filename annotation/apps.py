from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _resend_queued(**kwargs: Any) -> list[Any]:
    """`prefarena.celery.queued_jobs_lost`: the broker lost its messages."""
    from annotation.exports.service import export_jobs_resend_queued  # noqa: PLC0415 - imported when needed, not at start

    return export_jobs_resend_queued(**kwargs)


class AnnotationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "annotation"

    def ready(self) -> None:
        from prefarena.celery import queued_jobs_lost  # noqa: PLC0415 - the app loads first

        queued_jobs_lost.connect(_resend_queued, dispatch_uid="annotation-resend-queued")
