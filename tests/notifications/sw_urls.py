"""The project's URLs plus a minimal service worker at /sw.js that loads the push handlers
(frontend/static/frontend/sw-push.js), for the browser test; the app's own worker loads the
same file."""

from django.http import HttpResponse
from django.templatetags.static import static
from django.urls import path

from gridcoin.urls import urlpatterns as project_urlpatterns


def test_worker(request):
    body = f'importScripts("{static("frontend/sw-push.js")}");\n'
    return HttpResponse(body, content_type="text/javascript", headers={"Service-Worker-Allowed": "/",
                                                                        "Cache-Control": "no-cache"})


urlpatterns = [path("sw.js", test_worker), *project_urlpatterns]
