"""Staff pages for generation and judging jobs, with live progress (htmx polling)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.flags import parse_id
from annotation.models import ModelEntry, Project
from annotation.selectors import get_project_for_user
from models_backend import selectors, services
from models_backend.errors import BackendError
from models_backend.models import JOB_KINDS
from routing import services as router_services


def _context(project: Project, error: str = "") -> dict[str, object]:
    jobs = selectors.jobs_for_project(project)
    return {
        "project": project,
        "jobs": jobs,
        "running": any(not job.is_finished for job in jobs),
        "models": ModelEntry.objects.filter(project=project).exclude(
            backend=ModelEntry.Backend.IMPORTED
        ),
        "error": error,
        # No worker: a job runs inside the click that starts it (the demo's set-up).
        "in_process": settings.CELERY_TASK_ALWAYS_EAGER,
    }


@require_GET
def jobs(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request.user, slug, staff=True)
    template = "models_backend/jobs.html"
    if getattr(request, "htmx", False):
        template += "#jobs"
    return render(request, template, _context(project))


@require_POST
def jobs_generate(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request.user, slug, staff=True)
    chosen = parse_id(request.POST.get("model"))
    model = ModelEntry.objects.filter(project=project, pk=chosen).first() if chosen else None
    error = ""
    if model is None:
        error = "Choose a model with a generation backend."
    else:
        try:
            services.generation_job_create(model=model)
        except BackendError as exc:
            error = str(exc)
    return _after_mutation(request, project, error)


@require_POST
def jobs_judge(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request.user, slug, staff=True)
    _, error = router_services.router_judge_job_create(project=project)
    return _after_mutation(request, project, error)


@require_POST
def jobs_cancel(request: HttpRequest, slug: str, kind: str, pk: int) -> HttpResponse:
    project = get_project_for_user(request.user, slug, staff=True)
    job_class = JOB_KINDS.get(kind)
    if job_class is None:
        raise Http404("No such kind of job.")
    job = get_object_or_404(job_class, project=project, pk=pk)
    services.job_cancel(job=job, by=request.user.get_username())
    return _after_mutation(request, project, "")


def _after_mutation(request: HttpRequest, project: Project, error: str) -> HttpResponse:
    htmx = getattr(request, "htmx", False)
    if not htmx and not error:
        return HttpResponseRedirect(reverse("models_backend:jobs", args=[project.slug]))
    status = 400 if error else 200
    template = "models_backend/jobs.html" + ("#jobs" if htmx else "")
    return render(request, template, _context(project, error), status=status)
