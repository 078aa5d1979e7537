"""IFTTT's authentication test: consent (deny and allow), code exchange, refresh, and revocation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import requests

from .client import Exchange, Recorder
from .endpoints import API
from .oauth import Browser, Grant, OAuthConfig, OAuthError, new_state, token_request
from .suite import CheckFailed, Suite, errors_of, expect, expect_status, json_body, need, skip

GROUP = ("Authentication",)
WRONG_SECRET = "localifttt-wrong-secret"  # noqa: S105 - deliberately wrong


class AuthChecks:
    def __init__(self, suite: Suite, config: OAuthConfig, *, username: str, password: str) -> None:
        self.suite = suite
        self.config = config
        self.username = username
        self.password = password
        # One browser for both consents: signed in once, as a person who first says no, then yes.
        listeners = suite.recorder.listeners
        shared = suite.recorder
        self.browser = Browser(config, listeners=listeners, timeout=shared.timeout, budget=shared.budget)
        # The token calls are IFTTT's servers talking, so they carry no browser cookies.
        self.api = Recorder(
            config.base_url,
            session=requests.Session(),
            listeners=listeners,
            timeout=shared.timeout,
            budget=shared.budget,
        )

    def run(self) -> None:
        with self._check("denying consent redirects to IFTTT with error=access_denied"):
            state = new_state()
            grant = self._authorize(allow=False, state=state)
            expect("code" not in grant.params, f"a denied consent must not carry a code: {grant.location}")
            expect(
                grant.params.get("error") == "access_denied",
                f"expected error=access_denied in the redirect, got {grant.location}",
            )

        code: str | None = None
        with self._check("allowing consent redirects to IFTTT with a code and the state"):
            state = new_state()
            grant = self._authorize(allow=True, state=state)
            code = grant.params.get("code")
            expect(bool(code), f"the redirect to IFTTT carries no code: {grant.location}")
            expect(grant.params.get("state") == state, f"the redirect must return state={state}: {grant.location}")

        tokens: dict[str, Any] | None = None
        with self._check("exchanges the code for a bearer token"):
            answer = self._token(grant_type="authorization_code", code=need(code, "no code"))
            tokens = self._tokens(answer)
        with self._check("the access token works on user/info"):
            expect_status(self._user_info(need(tokens, "no token")["access_token"]), 200)
        with self._check("a wrong client secret is refused"):
            answer = token_request(
                self.api,
                replace(self.config, client_secret=WRONG_SECRET),
                grant_type="refresh_token",
                refresh_token=(tokens or {}).get("refresh_token") or "none",
            )
            expect_status(answer, 400, 401)

        refresh = (tokens or {}).get("refresh_token")
        latest = (tokens or {}).get("access_token")
        refreshed: dict[str, Any] | None = None
        with self._check("refreshes the access token"):
            need(tokens, "no token")
            if not refresh:
                skip("the service issues no refresh token (its access tokens must then never expire)")
            refreshed = self._tokens(self._token(grant_type="refresh_token", refresh_token=str(refresh)))
            expect_status(self._user_info(refreshed["access_token"]), 200)
            latest = refreshed["access_token"]
        with self._check("Ensure older refresh token does not expire immediately"):
            need(refreshed, "the first refresh failed")
            # IFTTT may lose a refresh answer and retry with the refresh token it already used.
            again = self._tokens(self._token(grant_type="refresh_token", refresh_token=str(refresh)))
            expect_status(self._user_info(again["access_token"]), 200)
            latest = again["access_token"]
        with self._check("revokes the access token (RFC 7009)"):
            answer = self.api.send(
                "POST",
                self.config.absolute(self.config.revoke_url),
                form={
                    "token": need(latest, "no token"),
                    "token_type_hint": "access_token",
                    "client_id": self.config.client_id,
                    "client_secret": self.config.client_secret,
                },
            )
            expect_status(answer, 200)
        with self._check("a revoked token gets 401 from user/info"):
            errors_of(self._user_info(need(latest, "no token")), 401)
        # Last: presenting a used code again may revoke what it issued (RFC 6749 §4.1.2).
        with self._check("a used code cannot be exchanged again"):
            answer = self._token(grant_type="authorization_code", code=need(code, "no code"))
            expect_status(answer, 400, 401)

    # --- helpers ----------------------------------------------------------------------------------
    def _check(self, name: str) -> Any:
        return self.suite.check(*GROUP, name)

    def _authorize(self, *, allow: bool, state: str) -> Grant:
        try:
            return self.browser.authorize(username=self.username, password=self.password, allow=allow, state=state)
        except OAuthError as exc:
            raise CheckFailed(str(exc)) from None

    def _token(self, **form: str) -> Exchange:
        if form.get("grant_type") == "authorization_code":
            form["redirect_uri"] = self.config.redirect_uri
        return token_request(self.api, self.config, **form)

    def _tokens(self, answer: Exchange) -> dict[str, Any]:
        expect_status(answer, 200)
        body = json_body(answer)
        expect(isinstance(body, dict), "the token answer must be a JSON object")
        expect(str(body.get("token_type", "")).lower() == "bearer", f'"token_type" must be "Bearer", got {body}')
        expect(isinstance(body.get("access_token"), str) and body["access_token"] != "", 'no "access_token"')
        refresh = body.get("refresh_token")
        expect(refresh is None or (isinstance(refresh, str) and refresh != ""), '"refresh_token" must be text')
        return body

    def _user_info(self, token: str) -> Exchange:
        url = self.config.absolute(f"{API}/user/info")
        return self.api.send("GET", url, headers={"Authorization": f"Bearer {token}"})
