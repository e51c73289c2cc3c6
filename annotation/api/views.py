"""API endpoints. Each view checks the caller's role in the project named by the URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors, services
from annotation.api import serializers as s
from annotation.api.errors import Conflict
from annotation.api.permissions import ADMIN, STAFF, VOTER, is_staff, project_for
from annotation.api.renderers import BinaryRenderer, JSONLinesRenderer
from annotation.exports import writers
from annotation.exports.card import ExportStats
from annotation.exports.options import FORMATS, ExportRequestInvalid
from annotation.exports.options import SOURCES as EXPORT_SOURCES
from annotation.exports.service import (
    ExportFileMissing,
    export_job_cancel,
    export_job_create,
    export_job_file,
    export_options,
    export_records,
)
from annotation.exports.source import count_comparisons
from annotation.flags import parse_flag, parse_id
from annotation.models import (
    Annotator,
    Candidate,
    Comparison,
    ExportJob,
    ModelEntry,
    Project,
    Prompt,
    Vote,
)
from annotation.moments import parse_moment
from models_backend.models import Judgment


def _moment(request: Request, name: str) -> datetime | None:
    try:
        return parse_moment(request.query_params.get(name), name)
    except ValueError as exc:
        raise ParseError(str(exc)) from exc


def _flag(request: Request, name: str) -> bool:
    try:
        return parse_flag(request.query_params.get(name), name)
    except ValueError as exc:
        raise ParseError(str(exc)) from exc


def _window(request: Request) -> tuple[datetime | None, datetime | None]:
    """?since= and ?until=; since must come first, as the exports and the page have it."""
    since, until = _moment(request, "since"), _moment(request, "until")
    if since and until and since >= until:
        raise ParseError("since must be before until")
    return since, until


def _in_window(request: Request, queryset: QuerySet) -> QuerySet:
    return selectors.labels_dated(queryset, *_window(request))


def _choice(request: Request, name: str, allowed: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value and value not in allowed:
        raise ParseError(f"{name} must be one of {', '.join(allowed)}, not {value[:40]!r}")
    return value or None


DATE_PARAMS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="created at or after (ISO)"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="created before (ISO)"),
]
CATEGORY = OpenApiParameter("category", str, description="prompt category")


# --- the API root ----------------------------------------------------------------------------

# A valid slug that stands for {slug}: reverse() only builds URLs its converter accepts.
_SLUG_STANDIN = "SLUG"


class ApiRoot(APIView):
    """Where things are: absolute URLs of the main endpoints, the schema and the docs.

    Open to anyone, as the schema is: it names URLs, never data.
    """

    permission_classes = [AllowAny]

    @extend_schema(responses=s.ApiRootSerializer)
    def get(self, request: Request) -> Response:
        def absolute(name: str, **kwargs: str) -> str:
            return request.build_absolute_uri(reverse(f"api:{name}", kwargs=kwargs))

        endpoints = {
            name.replace("-", "_"): absolute(name, slug=_SLUG_STANDIN).replace(
                f"/projects/{_SLUG_STANDIN}/", "/projects/{slug}/"
            )
            for name in s.PROJECT_ENDPOINTS
        }
        root = {
            "projects": absolute("projects"),
            **endpoints,
            "schema": absolute("schema"),
            "docs": absolute("docs"),
        }
        return Response(s.ApiRootSerializer(root).data)


# --- projects ------------------------------------------------------------------------------


class ProjectList(generics.ListAPIView):
    """Arenas you can see: the active ones, and those you are staff of."""

    serializer_class = s.ProjectSerializer

    def get_queryset(self) -> QuerySet[Project]:
        user = self.request.user
        staff_of = Project.objects.filter(
            memberships__user=user, memberships__role__in=selectors.STAFF_ROLES
        )
        if user.is_superuser:
            return Project.objects.order_by("slug")
        return (Project.objects.filter(is_active=True) | staff_of).distinct().order_by("slug")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        user = self.request.user
        roles = (
            dict(user.memberships.values_list("project_id", "role"))
            if user.is_authenticated
            else {}
        )
        if user.is_superuser:
            roles = {pk: "admin" for pk in Project.objects.values_list("pk", flat=True)}
        context["roles"] = roles
        return context


class ProjectDetail(APIView):
    @extend_schema(responses=s.ProjectSerializer)
    def get(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug)
        role = selectors.project_role(request.user, project) or "annotator"
        return Response(s.ProjectSerializer(project, context={"roles": {project.pk: role}}).data)


# --- catalogue: models, prompts, candidates -------------------------------------------------


class _ProjectListCreate(generics.ListCreateAPIView):
    """Staff read, admins write; POST takes one object or a list of them (bulk)."""

    model: type = ModelEntry

    def project(self) -> Project:
        need = ADMIN if self.request.method == "POST" else STAFF
        if not hasattr(self, "_project"):
            self._project = project_for(self.request, self.kwargs["slug"], need)
        return self._project

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "project": self.project()}

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.project()
        many = isinstance(request.data, list)
        if many and not request.data:
            raise ValidationError("send at least one object")
        if many and len(request.data) > 1000:
            raise ValidationError("at most 1000 objects per request")
        serializer = self.get_serializer(data=request.data, many=many)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                saved = serializer.save(**self.save_kwargs(project))
                self.after_save(project, saved if many else [saved])
        except IntegrityError as exc:
            raise ValidationError(
                "conflicts with existing data (a duplicate id, name or candidate?)"
            ) from exc
        return Response(serializer.data, status=status.HTTP_201_CREATED)

    def save_kwargs(self, project: Project) -> dict[str, Any]:
        return {"project": project}

    def after_save(self, project: Project, saved: list[Any]) -> None:
        """Further writes of the same request, in its transaction."""


def _bulk_post_schema(serializer: type[serializers.Serializer], name: str) -> Any:
    """The schema of a POST that takes (and answers with) one object or a list of them."""
    one_or_many = PolymorphicProxySerializer(
        component_name=f"{name}OneOrMany",
        serializers=[serializer, serializer(many=True)],
        resource_type_field_name=None,
        many=False,
    )
    # JSON only: a list cannot come as a form.
    return extend_schema(request={"application/json": one_or_many}, responses={201: one_or_many})


@extend_schema_view(post=_bulk_post_schema(s.ModelEntrySerializer, "ModelEntry"))
class ModelList(_ProjectListCreate):
    """Competitors of the arena (researchers and admins: this names the models)."""

    serializer_class = s.ModelEntrySerializer
    model = ModelEntry

    def get_queryset(self) -> QuerySet[ModelEntry]:
        return ModelEntry.objects.filter(project=self.project()).order_by("name")


@extend_schema_view(
    get=extend_schema(parameters=[CATEGORY]),
    post=_bulk_post_schema(s.PromptSerializer, "Prompt"),
)
class PromptList(_ProjectListCreate):
    serializer_class = s.PromptSerializer
    model = Prompt

    def get_queryset(self) -> QuerySet[Prompt]:
        prompts = Prompt.objects.filter(project=self.project()).order_by("id")
        category = self.request.query_params.get("category")
        return prompts.filter(category=category) if category else prompts


@extend_schema_view(
    get=extend_schema(parameters=[OpenApiParameter("prompt", int), OpenApiParameter("model", str)]),
    post=_bulk_post_schema(s.CandidateSerializer, "Candidate"),
)
class CandidateList(_ProjectListCreate):
    serializer_class = s.CandidateSerializer
    model = Candidate

    def get_queryset(self) -> QuerySet[Candidate]:
        candidates = Candidate.objects.filter(prompt__project=self.project()).select_related(
            "model"
        )
        params = self.request.query_params
        if params.get("prompt"):
            prompt_id = parse_id(params["prompt"])
            if prompt_id is None:
                raise ParseError("prompt must be a prompt id")
            candidates = candidates.filter(prompt_id=prompt_id)
        if params.get("model"):
            candidates = candidates.filter(model__name=params["model"])
        return candidates.exclude(settings_hash=Candidate.GOLD_DECOY).order_by("id")

    def save_kwargs(self, project: Project) -> dict[str, Any]:
        return {}

    def after_save(self, project: Project, saved: list[Any]) -> None:
        # New candidates are paired in the same transaction: all of it lands, or none.
        prompt_ids = {candidate.prompt_id for candidate in saved}
        services.comparisons_create_for_prompts(
            project=project, prompts=Prompt.objects.filter(pk__in=prompt_ids)
        )


# --- comparisons and voting -----------------------------------------------------------------


@extend_schema(
    parameters=[
        CATEGORY,
        OpenApiParameter("route", str, enum=Comparison.Route.values),
        OpenApiParameter("model", str, description="either side is this model"),
    ]
)
class ComparisonList(generics.ListAPIView):
    """Comparisons with their models and vote counts (researchers and admins)."""

    serializer_class = s.ComparisonSerializer

    def get_queryset(self) -> QuerySet[Comparison]:
        project = project_for(self.request, self.kwargs["slug"], STAFF)
        comparisons = (
            Comparison.objects.for_project(project)
            .rated()
            .select_related("prompt", "candidate_a__model", "candidate_b__model")
            .order_by("id")
        )
        params = self.request.query_params
        if params.get("category"):
            comparisons = comparisons.filter(prompt__category=params["category"])
        route = _choice(self.request, "route", Comparison.Route.values)
        if route:
            comparisons = comparisons.filter(route=route)
        if params.get("model"):
            model = params["model"]
            comparisons = comparisons.filter(
                Q(candidate_a__model__name=model) | Q(candidate_b__model__name=model)
            )
        return comparisons


def _annotator(request: Request, project: Project) -> Annotator:
    annotator = services.annotator_get_or_create(
        user=request.user, session=request.session, project=project
    )
    if annotator is None:  # pragma: no cover - the API always has a user
        raise NotFound("Log in to vote.")
    return annotator


class NextPair(APIView):
    """The next pair for you to vote on (the same one until you vote or it expires), blind."""

    @extend_schema(
        request=None,
        responses={
            200: s.ServedPairSerializer,
            204: OpenApiResponse(description="Nothing left for you to vote on."),
            403: OpenApiResponse(description="This account may no longer vote."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug, VOTER)
        try:
            assignment = services.assignment_next(
                project=project, annotator=_annotator(request, project)
            )
        except services.AnnotatorBanned as banned:  # the body every vote refusal has
            return Response({"detail": str(banned), "status": banned.status}, status=banned.status)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.ServedPairSerializer(assignment).data)


@extend_schema_view(
    get=extend_schema(
        parameters=[
            *DATE_PARAMS,
            CATEGORY,
            OpenApiParameter("source", str, enum=Vote.Source.values),
            OpenApiParameter(
                "state", str, enum=Annotator.State.values, description="annotator state"
            ),
            OpenApiParameter("comparison", int),
        ]
    )
)
class VoteListCreate(generics.ListCreateAPIView):
    """POST: vote on a pair you were served. GET: researchers and admins see every vote
    (excluded ones included, marked); others see only their own."""

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return s.VoteCreateSerializer if self.request.method == "POST" else s.VoteSerializer

    def get_queryset(self) -> QuerySet[Vote]:
        project = project_for(self.request, self.kwargs["slug"], VOTER)
        votes = Vote.objects.filter(comparison__project=project).select_related(
            "annotator",
            "comparison__project",
            "comparison__candidate_a__model",
            "comparison__candidate_b__model",
        )
        if not is_staff(self.request, project):
            votes = votes.filter(annotator__user=self.request.user)
        params = self.request.query_params
        source = _choice(self.request, "source", Vote.Source.values)
        if source:
            votes = votes.filter(source=source)
        state = _choice(self.request, "state", Annotator.State.values)
        if state:
            votes = votes.filter(annotator__state=state)
        if params.get("category"):
            votes = votes.filter(comparison__prompt__category=params["category"])
        if params.get("comparison"):
            comparison_id = parse_id(params["comparison"])
            if comparison_id is None:
                raise ParseError("comparison must be a comparison id")
            votes = votes.filter(comparison_id=comparison_id)
        return _in_window(self.request, votes).order_by("id")

    @extend_schema(request=s.VoteCreateSerializer, responses={201: s.VoteSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug, VOTER)
        payload = s.VoteCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            vote = services.vote_submit(
                annotator=_annotator(request, project),
                token=payload.validated_data["assignment"],
                choice=payload.validated_data["choice"],
                fingerprint=services.ClientFingerprint.from_request(request),
                source=Vote.Source.API,
                project=project,
            )
        except services.VoteRejected as rejected:
            response = Response(
                {"detail": rejected.message, "status": rejected.status}, status=rejected.status
            )
            if isinstance(rejected, services.RateLimited):
                response["Retry-After"] = str(rejected.retry_after)
            return response
        return Response(s.VoteSerializer(vote).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[*DATE_PARAMS, CATEGORY, OpenApiParameter("judge", str)])
class JudgmentList(generics.ListAPIView):
    serializer_class = s.JudgmentSerializer

    def get_queryset(self) -> QuerySet[Judgment]:
        project = project_for(self.request, self.kwargs["slug"], STAFF)
        judgments = Judgment.objects.filter(comparison__project=project)
        params = self.request.query_params
        if params.get("judge"):
            judgments = judgments.filter(judge=params["judge"])
        if params.get("category"):
            judgments = judgments.filter(comparison__prompt__category=params["category"])
        return _in_window(self.request, judgments).order_by("id")


class Leaderboard(APIView):
    @extend_schema(
        parameters=[
            *DATE_PARAMS,
            CATEGORY,
            OpenApiParameter("source", str, enum=list(selectors.SOURCES)),
            OpenApiParameter("include_flagged", bool),
        ],
        responses=s.LeaderboardSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug, STAFF)
        source = _choice(request, "source", list(selectors.SOURCES)) or "human"
        since, until = _window(request)
        filters = selectors.LeaderboardFilters(
            source=source,
            include_flagged=_flag(request, "include_flagged"),
            since=since,
            until=until,
            category=request.query_params.get("category", ""),
        )
        board = services.leaderboard_board(project=project, filters=filters)
        return Response(
            {
                "computed_at": board.computed_at,
                "vote_count": board.vote_count,
                "source": source,
                "rows": board.rows,
            }
        )


# --- exports -------------------------------------------------------------------------------


class ExportJobListCreate(generics.ListCreateAPIView):
    """Export jobs of the arena (researchers and admins). POST runs one on a worker."""

    serializer_class = s.ExportJobSerializer

    def get_queryset(self) -> QuerySet[ExportJob]:
        project = project_for(self.request, self.kwargs["slug"], STAFF)
        return ExportJob.objects.filter(project=project).select_related("project")

    @extend_schema(request=s.ExportRequestSerializer, responses={202: s.ExportJobSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug, STAFF)
        payload = s.ExportRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        file_type = data.pop("file_type")
        try:
            options = export_options(project, data)
        except ExportRequestInvalid as exc:
            raise ValidationError(str(exc)) from exc
        job = export_job_create(
            project=project, options=options, file_type=file_type, requested_by=request.user
        )
        return Response(
            s.ExportJobSerializer(job, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )


class ExportJobDetail(generics.RetrieveAPIView):
    serializer_class = s.ExportJobSerializer

    def get_object(self) -> ExportJob:
        project = project_for(self.request, self.kwargs["slug"], STAFF)
        job = ExportJob.objects.filter(project=project, pk=self.kwargs["pk"]).first()
        if job is None:
            raise NotFound("No such export.")
        return job


class ExportJobCancel(APIView):
    """Stop a queued or running export (its files are removed). 409 once it has ended."""

    @extend_schema(request=None, responses=s.ExportJobSerializer)
    def post(self, request: Request, slug: str, pk: int) -> Response:
        project = project_for(request, slug, STAFF)
        job = ExportJob.objects.filter(project=project, pk=pk).first()
        if job is None:
            raise NotFound("No such export.")
        if not export_job_cancel(job=job, by=request.user.get_username()):
            job.refresh_from_db()
            raise Conflict(f"This export had already ended ({job.status}).")
        job.refresh_from_db()
        return Response(s.ExportJobSerializer(job, context={"request": request}).data)


class _ExportFile(APIView):
    attribute = "download_path"
    renderer_classes = [JSONRenderer, BinaryRenderer]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, pk: int) -> FileResponse:
        project = project_for(request, slug, STAFF)
        job = ExportJob.objects.filter(project=project, pk=pk).first()
        if job is None:
            raise NotFound("No such export.")
        try:
            path = export_job_file(job, getattr(job, self.attribute))
        except ExportFileMissing as exc:
            raise NotFound(str(exc)) from exc
        # As the schema documents it (the page's download says the file's own type).
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=path.name,
            content_type="application/octet-stream",
        )


class ExportDownload(_ExportFile):
    attribute = "download_path"


class ExportCard(_ExportFile):
    attribute = "card_path"


class ExportStream(APIView):
    """A small export streamed as JSON Lines right away, in constant memory."""

    renderer_classes = [JSONRenderer, JSONLinesRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(FORMATS)),
            OpenApiParameter("source", str, enum=list(EXPORT_SOURCES)),
            *DATE_PARAMS,
            OpenApiParameter("categories", str, description="comma-separated"),
            OpenApiParameter("models", str, description="comma-separated"),
            OpenApiParameter("min_agreement", float),
            OpenApiParameter("include_flagged", bool),
            OpenApiParameter("single_turn", bool),
        ],
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR},
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        project = project_for(request, slug, STAFF)
        try:
            options = export_options(project, request.query_params)
        except ExportRequestInvalid as exc:
            raise ParseError(str(exc)) from exc
        size = count_comparisons(project, options)
        if size > settings.EXPORT_STREAM_MAX_COMPARISONS:
            raise ValidationError(
                f"{size} comparisons is too large to stream (limit "
                f"{settings.EXPORT_STREAM_MAX_COMPARISONS}); POST to exports/ to run it as a job"
            )
        lines = writers.jsonl_lines(export_records(project, options, ExportStats()))
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = (
            f'attachment; filename="{project.slug}-{options.format}.jsonl"'
        )
        return response
