"""The project's URLs plus one view that fails, for the 500 page test."""

from django.urls import path

from gridcoin.urls import handler404
from gridcoin.urls import urlpatterns as project_urlpatterns


def broken_view(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("broken/", broken_view), *project_urlpatterns]

__all__ = ["handler404", "urlpatterns"]
