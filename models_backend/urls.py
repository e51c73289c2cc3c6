from __future__ import annotations

from django.urls import path

from models_backend import views
from prefarena import converters  # noqa: F401 - registers the <id:> converter

app_name = "models_backend"

urlpatterns = [
    path("arena/<slug:slug>/jobs/", views.jobs, name="jobs"),
    path("arena/<slug:slug>/jobs/generate/", views.jobs_generate, name="jobs-generate"),
    path("arena/<slug:slug>/jobs/judge/", views.jobs_judge, name="jobs-judge"),
    path(
        "arena/<slug:slug>/jobs/<str:kind>/<id:pk>/cancel/", views.jobs_cancel, name="jobs-cancel"
    ),
]
