"""The export page: pick a format and filters, watch the job, download the dataset."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation import selectors
from annotation.exports.options import ExportRequestInvalid
from annotation.exports.service import (
    ExportFileMissing,
    export_content_type,
    export_job_cancel,
    export_job_create,
    export_job_file,
    export_options,
)
from annotation.forms import ExportForm
from annotation.models import ExportJob, ModelEntry, Project


def _form(project: Project, data: object = None) -> ExportForm:
    return ExportForm(
        data,
        categories=selectors.project_categories(project),
        models=list(ModelEntry.objects.filter(project=project).values_list("name", flat=True)),
    )


def _context(project: Project, form: ExportForm | None, error: str = "") -> dict[str, object]:
    jobs = list(ExportJob.objects.filter(project=project)[:20])
    return {
        "project": project,
        "form": form,
        "jobs": jobs,
        "running": any(job.status in ("queued", "running") for job in jobs),
        "error": error,
    }


@require_http_methods(["GET", "POST"])
def exports(request: HttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug, staff=True)
    template = "annotation/exports.html"
    if request.method == "GET":
        if getattr(request, "htmx", False):
            # The jobs poll (every second while one runs) renders no form: skip its queries.
            return render(request, template + "#jobs", _context(project, None))
        return render(request, template, _context(project, _form(project)))
    form = _form(project, request.POST)
    if not form.is_valid():
        return render(request, template, _context(project, form), status=400)
    data = dict(form.cleaned_data)
    file_type = data.pop("file_type")
    try:
        options = export_options(project, data)
    except ExportRequestInvalid as exc:
        return render(request, template, _context(project, form, str(exc)), status=400)
    export_job_create(
        project=project, options=options, file_type=file_type, requested_by=request.user
    )
    return HttpResponseRedirect(reverse("annotation:exports", args=[project.slug]))


@require_POST
def export_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Stop a queued or running export (its files are removed); one that ended is left."""
    project = selectors.get_project_for_user(request.user, slug, staff=True)
    job = get_object_or_404(ExportJob, project=project, pk=pk)
    export_job_cancel(job=job, by=request.user.get_username())
    if getattr(request, "htmx", False):
        return render(request, "annotation/exports.html#jobs", _context(project, None))
    return HttpResponseRedirect(reverse("annotation:exports", args=[project.slug]))


@require_GET
def export_file(request: HttpRequest, slug: str, pk: int, what: str) -> FileResponse:
    if what not in ("download", "card"):
        raise Http404("An export has a download and a card.")
    project = selectors.get_project_for_user(request.user, slug, staff=True)
    job = get_object_or_404(ExportJob, project=project, pk=pk, status=ExportJob.Status.DONE)
    relative = job.download_path if what == "download" else job.card_path
    try:
        path = export_job_file(job, relative)
    except ExportFileMissing as exc:
        raise Http404(str(exc)) from exc
    # The card opens in the browser as text; the data downloads as what it is.
    content_type = export_content_type(path) if what == "download" else "text/plain; charset=utf-8"
    return FileResponse(
        path.open("rb"),
        as_attachment=what == "download",
        filename=path.name,
        content_type=content_type,
    )
