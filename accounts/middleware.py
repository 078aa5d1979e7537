"""Security headers for the pages people use (sign-in, IFTTT's consent page, the account page)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from oauth2_provider.models import get_application_model

# The pages this middleware protects. The admin and the JSON APIs keep their own policies.
PAGE_PREFIXES = ("/accounts/", "/account/", "/oauth/authorize/")

BASE_POLICY = (
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "frame-ancestors 'none'",
)


def _redirect_origins(client_id: str) -> list[str]:
    """Origins of the client's registered redirect URIs.

    Chromium applies `form-action` to the redirect that follows a form post, and Allow or Deny on
    the consent page ends in a redirect to the client (IFTTT), so its origin must be listed.
    """
    application = get_application_model().objects.filter(client_id=client_id).only("redirect_uris").first()
    if application is None:
        return []
    origins = []
    for uri in application.redirect_uris.split():
        parts = urlsplit(uri)
        if parts.scheme in ("https", "http") and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


class ContentSecurityPolicyMiddleware:
    """Nothing loads from outside the service, nothing runs as script, and nobody can frame the pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(PAGE_PREFIXES) or "Content-Security-Policy" in response:
            return response
        form_action = ["'self'"]
        if request.path.startswith("/oauth/authorize/"):
            client_id = request.GET.get("client_id") or request.POST.get("client_id") or ""
            form_action += _redirect_origins(client_id) if client_id else []
        response["Content-Security-Policy"] = "; ".join([*BASE_POLICY, "form-action " + " ".join(form_action)])
        return response
