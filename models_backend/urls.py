from __future__ import annotations

from django.urls import path

from models_backend import views

app_name = "models_backend"

urlpatterns = [
    path("arena/<slug:slug>/jobs/", views.jobs, name="jobs"),
    path("arena/<slug:slug>/jobs/generate/", views.jobs_generate, name="jobs-generate"),
    path("arena/<slug:slug>/jobs/judge/", views.jobs_judge, name="jobs-judge"),
]
