from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("annotation.api.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("models_backend.urls")),
    path("", include("routing.urls")),
    path("", include("annotation.urls")),
]


def handler500(request, *args, **kwargs):
    """JSON for API clients, the plain server error page for browsers."""
    from django.views.defaults import server_error  # noqa: PLC0415

    from annotation.api.errors import api_server_error  # noqa: PLC0415

    if request.path.startswith("/api/"):
        return api_server_error(request)
    return server_error(request)


def handler400(request, exception=None, *args, **kwargs):
    """JSON for API clients (a body Django refused to read, say), the plain page for browsers."""
    from django.views.defaults import bad_request  # noqa: PLC0415

    from annotation.api.errors import api_bad_request  # noqa: PLC0415

    if request.path.startswith("/api/"):
        return api_bad_request(request)
    return bad_request(request, exception)
