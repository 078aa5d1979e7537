"""IFTTT's side of OAuth2: a browser that signs in and answers the consent page, and the token calls.

The browser keeps a cookie jar, follows redirects on the service's own host, reads the HTML forms on
each page (any login form with a password box, any consent form with an allow and a deny button) and
stops at the redirect to IFTTT, as IFTTT's authentication test does. It depends on no template detail.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from .client import TIMEOUT_SECONDS, Budget, Exchange, Recorder

MAX_STEPS = 12
_ALLOW = re.compile(r"\b(allow|authori[sz]e|accept|approve|grant|connect|yes|continue)\b", re.IGNORECASE)
_DENY = re.compile(r"\b(deny|cancel|decline|reject|refuse|no|don't|do not)\b", re.IGNORECASE)
_USERNAME_NAMES = ("username", "login", "email", "user", "identifier")


class OAuthError(Exception):
    """The flow could not go on; the message says where and why."""


@dataclass
class Control:
    tag: str
    type: str
    name: str
    value: str
    text: str = ""
    checked: bool = False


@dataclass
class Form:
    action: str
    method: str
    controls: list[Control] = field(default_factory=list)

    @property
    def has_password(self) -> bool:
        return any(c.type == "password" for c in self.controls)

    @property
    def buttons(self) -> list[Control]:
        return [c for c in self.controls if c.type in ("submit", "image") or (c.tag == "button" and c.type == "")]

    def values(self, pressed: Control | None = None) -> dict[str, str]:
        """What a browser sends: named fields, checked boxes, and only the button that was pressed."""
        values: dict[str, str] = {}
        for control in self.controls:
            if not control.name or any(control is b for b in self.buttons):
                continue
            if control.type in ("checkbox", "radio") and not control.checked:
                continue
            values[control.name] = control.value
        if pressed is not None and pressed.name:
            values[pressed.name] = pressed.value
        return values


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: Control | None = None
        self._select: Control | None = None
        self._textarea: Control | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=(a.get("method") or "get").lower()))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "input":
            input_type = (a.get("type") or "text").lower()
            value = a.get("value", "on" if input_type in ("checkbox", "radio") else "")
            form.controls.append(
                Control("input", input_type, a.get("name", ""), value, a.get("value", ""), "checked" in a)
            )
        elif tag == "button":
            self._button = Control("button", (a.get("type") or "submit").lower(), a.get("name", ""), a.get("value", ""))
            form.controls.append(self._button)
        elif tag == "select":
            self._select = Control("select", "select", a.get("name", ""), "")
            form.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            if not self._select.value or "selected" in a:
                self._select.value = a.get("value", "")
        elif tag == "textarea":
            self._textarea = Control("textarea", "textarea", a.get("name", ""), "")
            form.controls.append(self._textarea)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.text += data
        if self._textarea is not None:
            self._textarea.value += data


def forms_in(html: str) -> list[Form]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def _label(control: Control) -> str:
    return " ".join(part for part in (control.name, control.value, control.text.strip()) if part)


def consent_button(form: Form, *, allow: bool) -> Control | None:
    """The button that means allow, or deny. A deny button may only be "the other one" (DOT's Cancel)."""
    buttons = form.buttons
    allow_button = next((b for b in buttons if _ALLOW.search(_label(b)) and not _DENY.search(_label(b))), None)
    if allow:
        return allow_button
    deny_button = next((b for b in buttons if _DENY.search(_label(b))), None)
    if deny_button is None and allow_button is not None:
        deny_button = next((b for b in buttons if b is not allow_button), None)
    return deny_button


@dataclass
class Grant:
    """Where the flow ended: IFTTT's redirect, with its query parameters."""

    location: str
    params: dict[str, str]


@dataclass
class OAuthConfig:
    base_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    authorize_url: str = "/oauth/authorize/"
    token_url: str = "/oauth/token/"  # noqa: S105 - a path, not a secret
    revoke_url: str = "/oauth/revoke_token/"
    scope: str = "ifttt"

    def absolute(self, url: str) -> str:
        return urljoin(self.base_url.rstrip("/") + "/", url)


class Browser:
    """Signs a user in and answers the consent page, as a person with a browser would."""

    def __init__(
        self,
        config: OAuthConfig,
        *,
        listeners: list[list[Exchange]] | None = None,
        timeout: float = TIMEOUT_SECONDS,
        budget: Budget | None = None,
    ) -> None:
        self.config = config
        self.http = Recorder(
            config.base_url, session=requests.Session(), listeners=listeners, timeout=timeout, budget=budget
        )
        self.host = urlsplit(config.absolute(config.authorize_url)).netloc
        # The HTML of each consent page answered, for the review's reading of what it tells the user.
        self.consent_pages: list[str] = []

    def authorize(self, *, username: str, password: str, allow: bool, state: str) -> Grant:
        query = urlencode(
            {
                "client_id": self.config.client_id,
                "response_type": "code",
                "scope": self.config.scope,
                "state": state,
                "redirect_uri": self.config.redirect_uri,
            }
        )
        url = f"{self.config.absolute(self.config.authorize_url)}?{query}"
        answer = self.http.send("GET", url, headers={"Accept": "text/html"})
        signed_in = False
        for _ in range(MAX_STEPS):
            if answer.status is None:
                raise OAuthError(f"the service did not answer {answer.url}: {answer.error}")
            location = _location(answer)
            if answer.status in (301, 302, 303, 307, 308) and location:
                target = urljoin(answer.url, location)
                if target.startswith(self.config.redirect_uri):
                    return Grant(target, {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()})
                if urlsplit(target).netloc != self.host:
                    raise OAuthError(f"the service redirected to {target}, which is neither itself nor IFTTT")
                answer = self.http.send("GET", target, headers={"Accept": "text/html", "Referer": answer.url})
                continue
            if answer.status != 200:
                raise OAuthError(f"{answer.url} answered {answer.status}: {page_text(answer.response_body)}")
            forms = forms_in(answer.response_body)
            login = next((f for f in forms if f.has_password), None)
            if login is not None:
                if signed_in:
                    raise OAuthError("the sign-in form came back after signing in: is the user name or password wrong?")
                answer = self._submit(answer, login, None, self._credentials(login, username, password))
                signed_in = True
                continue
            for form in forms:
                button = consent_button(form, allow=allow)
                if button is not None:
                    self.consent_pages.append(answer.response_body)
                    answer = self._submit(answer, form, button, {})
                    break
            else:
                which = "allow" if allow else "deny"
                raise OAuthError(f"{answer.url} shows no sign-in form and no consent form with a {which} button")
        raise OAuthError(f"no redirect to {self.config.redirect_uri} after {MAX_STEPS} pages")

    def _credentials(self, form: Form, username: str, password: str) -> dict[str, str]:
        texts = [c for c in form.controls if c.type in ("text", "email") and c.name]
        named = next((c for c in texts if c.name.lower() in _USERNAME_NAMES), texts[0] if texts else None)
        if named is None:
            raise OAuthError("the sign-in form has a password box but no user name box")
        secret = next(c for c in form.controls if c.type == "password")
        return {named.name: username, secret.name: password}

    def _submit(self, page: Exchange, form: Form, pressed: Control | None, filled: dict[str, str]) -> Exchange:
        target = urljoin(page.url, form.action or page.url)
        values = {**form.values(pressed), **filled}
        headers = {"Accept": "text/html", "Referer": page.url, "Origin": _origin(page.url)}
        if form.method == "post":
            return self.http.send("POST", target, headers=headers, form=values)
        return self.http.send("GET", f"{target.split('?')[0]}?{urlencode(values)}", headers=headers)


def page_text(html: str, limit: int = 300) -> str:
    """The words of a page, for an error message: what a person would read there."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
    return text[:limit] + ("…" if len(text) > limit else "") if text else "(an empty page)"


def _location(answer: Exchange) -> str:
    return next((v for k, v in answer.response_headers.items() if k.lower() == "location"), "")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def new_state() -> str:
    return secrets.token_hex(8)


def token_request(http: Recorder, config: OAuthConfig, **form: str) -> Exchange:
    """A form-encoded call to the token URL with IFTTT's client credentials in the body, as IFTTT sends them."""
    body = {**form, "client_id": config.client_id, "client_secret": config.client_secret}
    return http.send("POST", config.absolute(config.token_url), headers={"Accept": "application/json"}, form=body)


def token_for(
    *, base_url: str, username: str, password: str, client_id: str, client_secret: str, redirect_uri: str
) -> str:
    """An access token for a user, got the way IFTTT gets one (sign in, allow, exchange the code)."""
    config = OAuthConfig(base_url, client_id, client_secret, redirect_uri)
    browser = Browser(config)
    state = new_state()
    grant = browser.authorize(username=username, password=password, allow=True, state=state)
    code = grant.params.get("code")
    if not code:
        raise OAuthError(f"IFTTT's redirect carries no code: {grant.location}")
    answer = token_request(
        browser.http, config, grant_type="authorization_code", code=code, redirect_uri=config.redirect_uri
    )
    try:
        token = answer.json().get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise OAuthError(f"the token URL answered {answer.status} without an access token: {answer.response_body}")
    return token
