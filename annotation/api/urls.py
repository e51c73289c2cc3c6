from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation.api import errors, schema, views
from models_backend import api as jobs_api
from prefarena import converters  # noqa: F401 - registers the <id:> converter
from routing import api as routing_api

app_name = "api"

project = "projects/<slug:slug>/"

urlpatterns = [
    path("", views.ApiRoot.as_view(), name="root"),
    path(
        "schema/",
        SpectacularAPIView.as_view(content_negotiation_class=schema.SchemaFormatNegotiation),
        name="schema",
    ),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("projects/", views.ProjectList.as_view(), name="projects"),
    path(project, views.ProjectDetail.as_view(), name="project"),
    path(f"{project}models/", views.ModelList.as_view(), name="models"),
    path(f"{project}prompts/", views.PromptList.as_view(), name="prompts"),
    path(f"{project}candidates/", views.CandidateList.as_view(), name="candidates"),
    path(f"{project}comparisons/", views.ComparisonList.as_view(), name="comparisons"),
    path(f"{project}comparisons/next/", views.NextPair.as_view(), name="next-pair"),
    path(f"{project}votes/", views.VoteListCreate.as_view(), name="votes"),
    path(f"{project}judgments/", views.JudgmentList.as_view(), name="judgments"),
    path(f"{project}leaderboard/", views.Leaderboard.as_view(), name="leaderboard"),
    path(f"{project}export/", views.ExportStream.as_view(), name="export-stream"),
    path(f"{project}exports/", views.ExportJobListCreate.as_view(), name="exports"),
    path(f"{project}exports/<id:pk>/", views.ExportJobDetail.as_view(), name="export"),
    path(
        f"{project}exports/<id:pk>/download/",
        views.ExportDownload.as_view(),
        name="export-download",
    ),
    path(f"{project}exports/<id:pk>/card/", views.ExportCard.as_view(), name="export-card"),
    path(
        f"{project}exports/<id:pk>/cancel/", views.ExportJobCancel.as_view(), name="export-cancel"
    ),
    # Generation and judging jobs (models_backend.api).
    path(f"{project}jobs/", jobs_api.JobList.as_view(), name="jobs"),
    path(f"{project}jobs/<str:kind>/<id:pk>/", jobs_api.JobDetail.as_view(), name="job"),
    path(
        f"{project}jobs/<str:kind>/<id:pk>/cancel/",
        jobs_api.JobCancel.as_view(),
        name="job-cancel",
    ),
    # The router's own views (routing.api).
    path(f"{project}router/", routing_api.RouterOverview.as_view(), name="router"),
    path(
        f"{project}router/decisions/",
        routing_api.RouteDecisionList.as_view(),
        name="router-decisions",
    ),
    re_path(r"^[\s\S]*$", errors.api_not_found),  # any path, newlines included
]
