from __future__ import annotations

from django.apps import AppConfig


class ModelsBackendConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "models_backend"

    def ready(self) -> None:
        from prefarena.celery import queued_jobs_lost, resend_receiver  # noqa: PLC0415

        # A queued job whose task the broker lost is sent again.
        queued_jobs_lost.connect(
            resend_receiver("models_backend.services.jobs_resend_queued"),
            weak=False,
            dispatch_uid="models_backend-resend-queued",
        )
