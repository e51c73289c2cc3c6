"""Generation and judging jobs over the REST API (researchers and admins, like the jobs page):
list them with their progress, start one, follow one, cancel one."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import Conflict
from annotation.api.permissions import STAFF, project_for
from annotation.models import ModelEntry, Project
from models_backend import selectors, services
from models_backend.errors import BackendError
from models_backend.models import JOB_KINDS, GenerationJob, Job, JudgeJob
from routing import services as router_services

MAX_LISTED = 200
KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(JOB_KINDS))


class JobSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(JOB_KINDS))
    id = serializers.IntegerField(source="pk")
    status = serializers.ChoiceField(choices=Job.Status.choices)
    model = serializers.CharField(
        source="model.name", allow_null=True, default=None, help_text="generation: whose answers"
    )
    judge = serializers.CharField(allow_null=True, default=None, help_text="judge: which one")
    total = serializers.IntegerField()
    completed = serializers.IntegerField()
    percent = serializers.IntegerField()
    batch_size = serializers.IntegerField()
    failures = serializers.DictField(
        child=serializers.CharField(),
        default=dict,
        help_text="generation: prompts (external id) that got no answer, and why",
    )
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    workers_lost = serializers.IntegerField()
    worker_silent = serializers.BooleanField(
        help_text="running, but its worker has not been heard from for a while"
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(JOB_KINDS))
    model = serializers.CharField(
        required=False, help_text="generation: the competitor's name (a generation backend)"
    )
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=256)

    def validate(self, attrs: dict) -> dict:
        if attrs["kind"] == GenerationJob.kind and not attrs.get("model"):
            raise ValidationError({"model": ["a generation job needs the competitor's name"]})
        if attrs["kind"] == JudgeJob.kind and "model" in attrs:
            raise ValidationError(
                {"model": ["a judging job judges the arena's pairs: it takes no model"]}
            )
        return attrs


def _job_data(job: Job) -> dict:
    return JobSerializer(job).data


def _create(project: Project, data: dict) -> Job:
    batch = {"batch_size": data["batch_size"]} if "batch_size" in data else {}
    if data["kind"] == JudgeJob.kind:
        # What the page's "Judge routed comparisons" starts: the judge the router reads.
        job, error = router_services.router_judge_job_create(project=project, **batch)
        if job is None:
            raise ValidationError(error)
        return job
    model = ModelEntry.objects.filter(project=project, name=data["model"]).first()
    if model is None:
        raise ValidationError({"model": [f"this arena has no competitor named {data['model']!r}"]})
    try:
        return services.generation_job_create(model=model, **batch)
    except BackendError as exc:
        raise ValidationError({"model": [str(exc)]}) from exc


class JobList(APIView):
    """The arena's generation and judging jobs, newest first; POST starts one on a worker."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LISTED, "default": 20},
                description="how many of the newest jobs",
            )
        ],
        responses=JobSerializer(many=True),
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug, STAFF)
        raw = request.query_params.get("limit") or "20"
        # isascii: "²".isdigit() is true, and int("²") raises.
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LISTED:
            raise ValidationError({"limit": [f"must be a whole number from 1 to {MAX_LISTED}"]})
        jobs = selectors.jobs_for_project(project, limit=int(raw))
        return Response([_job_data(job) for job in jobs])

    @extend_schema(request=JobCreateSerializer, responses={202: JobSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug, STAFF)
        payload = JobCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        job = _create(project, payload.validated_data)
        job.refresh_from_db()  # in-process (no worker), it has already run
        return Response(_job_data(job), status=status.HTTP_202_ACCEPTED)


def _job(request: Request, slug: str, kind: str, pk: int) -> Job:
    project = project_for(request, slug, STAFF)
    job_class = JOB_KINDS.get(kind)
    if job_class is None:
        raise NotFound(f"No such kind of job: {kind!r} (one of {', '.join(JOB_KINDS)}).")
    return get_object_or_404(job_class, project=project, pk=pk)


class JobDetail(APIView):
    @extend_schema(responses=JobSerializer, parameters=[KIND])
    def get(self, request: Request, slug: str, kind: str, pk: int) -> Response:
        return Response(_job_data(_job(request, slug, kind, pk)))


class JobCancel(APIView):
    """Stop a job: a running one stops after the batch it is on (what it wrote stays), a
    queued one never starts. 409 when it had already ended."""

    @extend_schema(request=None, responses=JobSerializer, parameters=[KIND])
    def post(self, request: Request, slug: str, kind: str, pk: int) -> Response:
        job = _job(request, slug, kind, pk)
        if not services.job_cancel(job=job, by=request.user.get_username()):
            job.refresh_from_db()
            raise Conflict(f"This job had already ended ({job.status}).")
        job.refresh_from_db()
        return Response(_job_data(job))
