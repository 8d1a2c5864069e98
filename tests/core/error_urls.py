"""The project's URLs plus one view that fails, to see the 500 page the way a crash shows it."""

from django.urls import path

from aicmo.urls import handler404  # noqa: F401  (handler404 re-exported)
from aicmo.urls import urlpatterns as project_urlpatterns


def crash(request):
    raise RuntimeError("boom")


urlpatterns = [path("crash-for-test/", crash), *project_urlpatterns]
