"""Swagger UI at /api/docs/ under the site's Content-Security-Policy, with no exemption.

drf-spectacular's plain view inlines its start-up script and a few styles, which a policy
without 'unsafe-inline' blocks. The split view serves that script as a file of its own
(``/api/docs/?script``), the template below moves the styles into a static file, and Swagger UI
itself comes from drf-spectacular-sidecar's static files rather than a CDN, so every script
and style is 'self'.
"""

from drf_spectacular.views import SpectacularSwaggerSplitView


class SwaggerView(SpectacularSwaggerSplitView):
    template_name = "frontend/api_docs.html"
