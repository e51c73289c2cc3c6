from __future__ import annotations

from django.urls import path

from prefarena import converters  # noqa: F401 - registers the <id:> converter
from routing import views

app_name = "routing"

urlpatterns = [
    path("arena/<slug:slug>/router/", views.router_page, name="router"),
    path("arena/<slug:slug>/router/policy/", views.router_policy, name="router-policy"),
    path("arena/<slug:slug>/router/run/", views.router_run, name="router-run"),
    path(
        "arena/<slug:slug>/router/decisions/<id:comparison_pk>/",
        views.router_decision,
        name="router-decision",
    ),
]
