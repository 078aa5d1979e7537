"""One run of the checks against one service: the endpoint tests, then (optionally) the authentication test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .authentication import AuthChecks
from .client import TIMEOUT_SECONDS, Budget, Recorder
from .endpoints import EndpointChecks, Target
from .oauth import OAuthConfig
from .suite import CheckResult, Suite


@dataclass(frozen=True)
class AuthOptions:
    username: str
    password: str
    client_id: str
    client_secret: str
    redirect_uri: str
    authorize_url: str = "/oauth/authorize/"
    token_url: str = "/oauth/token/"  # noqa: S105 - a path, not a secret
    revoke_url: str = "/oauth/revoke_token/"


def run_checks(
    *,
    base_url: str,
    service_key: str,
    auth: AuthOptions | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    timeout: float = TIMEOUT_SECONDS,
    budget: float | None = None,
) -> list[CheckResult]:
    """Every check, each request waiting at most `timeout` s, the whole run at most `budget` s (checks
    that would start later are reported as not run)."""
    recorder = Recorder(base_url, timeout=timeout, budget=Budget(budget))
    suite = Suite(recorder, on_result)
    EndpointChecks(suite, recorder, Target(base_url=base_url, service_key=service_key)).run()
    if auth is not None:
        config = OAuthConfig(
            base_url=base_url,
            client_id=auth.client_id,
            client_secret=auth.client_secret,
            redirect_uri=auth.redirect_uri,
            authorize_url=auth.authorize_url,
            token_url=auth.token_url,
            revoke_url=auth.revoke_url,
        )
        AuthChecks(suite, config, username=auth.username, password=auth.password).run()
    return suite.results
