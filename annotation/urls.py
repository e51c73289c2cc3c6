from __future__ import annotations

from django.urls import path

from annotation import views, views_exports, views_review
from prefarena import converters  # noqa: F401 - registers the <id:> converter

app_name = "annotation"

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("arena/<slug:slug>/", views.arena, name="arena"),
    path("arena/<slug:slug>/vote/", views.arena_vote, name="arena-vote"),
    path("arena/<slug:slug>/guidelines/", views.guidelines, name="guidelines"),
    path("arena/<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path(
        "arena/<slug:slug>/leaderboard/refresh/",
        views.leaderboard_refresh,
        name="leaderboard-refresh",
    ),
    path("arena/<slug:slug>/exports/", views_exports.exports, name="exports"),
    path(
        "arena/<slug:slug>/exports/<id:pk>/cancel/",
        views_exports.export_cancel,
        name="export-cancel",
    ),
    path(
        "arena/<slug:slug>/exports/<id:pk>/<str:what>/",
        views_exports.export_file,
        name="export-file",
    ),
    path("arena/<slug:slug>/review/", views_review.review_queue, name="review"),
    path("arena/<slug:slug>/review/run/", views_review.review_run, name="review-run"),
    # By id, not by name: imported names are free text, and one like "x/../alice" in a link
    # is resolved by the browser to alice's page.
    path(
        "arena/<slug:slug>/review/<id:annotator_id>/decide/",
        views_review.review_decide,
        name="review-decide",
    ),
    path(
        "arena/<slug:slug>/review/<id:annotator_id>/",
        views_review.review_annotator,
        name="review-annotator",
    ),
]
