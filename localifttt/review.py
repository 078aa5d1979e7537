"""A pre-submission review: what IFTTT's reviewers check, each with its reason and its fix.

The checks are the guide's "common reasons for services not passing the review on the first try":
the endpoint and authentication tests, an authorization page that mentions IFTTT and asks for consent,
a support address that is not a person's, complete plain copy, a white vector logo on a transparent
background, queries with a practical use, and (for launch) at least twelve Applets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from xml.etree.ElementTree import Element

import requests
from defusedxml import ElementTree as SafeET

from protocol.recipes import MIN_RECIPES, Recipe, queries_without_recipe, recipe_problems
from protocol.registry import Registry

from .client import Recorder
from .copytext import Identity, copy_items, copy_problems
from .oauth import Browser, OAuthConfig, OAuthError, new_state, page_text
from .runner import AuthOptions, run_checks
from .suite import CheckFailed, CheckResult, Suite, expect, warn

GROUP = "Review"

# --- support email ---------------------------------------------------------------------------------
FREE_MAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "rocketmail.com", "hotmail.com", "outlook.com",
        "live.com", "msn.com", "aol.com", "icloud.com", "me.com", "mac.com", "gmx.com", "gmx.de", "gmx.net",
        "web.de", "mail.com", "mail.ru", "yandex.com", "yandex.ru", "proton.me", "protonmail.com", "pm.me",
        "zoho.com", "qq.com", "163.com", "126.com", "hey.com", "fastmail.com", "tutanota.com", "tuta.io",
        "hushmail.com", "inbox.com", "laposte.net", "orange.fr", "free.fr", "libero.it", "seznam.cz",
    }
)  # fmt: skip
FREE_MAIL_PREFIXES = ("yahoo.", "hotmail.", "outlook.", "live.", "gmx.", "yandex.")
ROLE_WORDS = frozenset(
    {
        "support", "help", "helpdesk", "contact", "info", "hello", "team", "service", "services", "care",
        "customercare", "customerservice", "customers", "cs", "ifttt", "integrations", "integration", "developer",
        "developers", "dev", "api", "partners", "partner", "apps", "app", "feedback", "admin", "office", "sales",
        "smarthome", "home", "devices", "hi", "questions", "enquiries", "inquiries", "assist", "assistance",
    }
)  # fmt: skip
PLACEHOLDER_DOMAINS = ("example.com", "example.org", "example.net")
PLACEHOLDER_TLDS = (".example", ".invalid", ".test", ".localhost", ".local")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass
class Finding:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def support_email_finding(email: str) -> Finding:
    finding = Finding()
    if not _EMAIL.match(email or ""):
        finding.problems.append(f"“{email}” is not an email address")
        return finding
    local, domain = email.lower().rsplit("@", 1)
    if domain in FREE_MAIL or domain.startswith(FREE_MAIL_PREFIXES):
        finding.problems.append(f"{domain} is a free-mail domain, which reads as a personal address")
    tokens = [t for t in re.split(r"[^a-z]+", local.split("+")[0]) if t]
    if not any(t in ROLE_WORDS or t.endswith(("support", "help", "care")) for t in tokens):
        finding.problems.append(f"“{local}@” looks like a person's address, not a role such as support@ or help@")
    if domain in PLACEHOLDER_DOMAINS or domain.endswith(PLACEHOLDER_TLDS):
        finding.warnings.append(f"{domain} is a placeholder domain: set SERVICE_SUPPORT_EMAIL before you submit")
    return finding


# --- the logo --------------------------------------------------------------------------------------
WHITE = frozenset({"#fff", "#ffffff", "#ffff", "#ffffffff", "white", "rgb(255,255,255)", "rgb(100%,100%,100%)"})
INVISIBLE = frozenset({"none", "transparent"})
SHAPES = frozenset({"path", "rect", "circle", "ellipse", "polygon", "polyline", "line", "text", "tspan", "use"})
RASTER = frozenset({"image", "foreignObject"})
PAINT_SERVERS = frozenset({"linearGradient", "radialGradient", "pattern", "meshgradient"})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _style(element: Element) -> dict[str, str]:
    props = {k: v for k, v in element.attrib.items() if k in ("fill", "stroke", "opacity", "fill-opacity")}
    for declaration in element.attrib.get("style", "").split(";"):
        name, sep, value = declaration.partition(":")
        if sep:
            props[name.strip().lower()] = value.strip()
    return props


def _colour(value: str) -> str:
    return re.sub(r"\s+", "", value.lower()).replace("!important", "")


def _number(value: str | None, default: float = 0.0) -> float | None:
    if value is None:
        return default
    match = re.fullmatch(r"\s*(-?[\d.]+)\s*(px)?\s*", value)
    return float(match.group(1)) if match else None


def _viewbox(root: Element) -> tuple[float, float, float, float] | None:
    box = root.attrib.get("viewBox")
    if box:
        parts = [float(p) for p in re.split(r"[\s,]+", box.strip()) if p]
        if len(parts) == 4:
            return parts[0], parts[1], parts[2], parts[3]
    width, height = _number(root.attrib.get("width"), -1), _number(root.attrib.get("height"), -1)
    if width and height and width > 0 and height > 0:
        return 0.0, 0.0, width, height
    return None


def _covers(element: Element, box: tuple[float, float, float, float] | None) -> bool:
    """A rectangle or circle that fills the whole canvas: a background, not a logo."""
    tag = _local(element.tag)
    if tag == "rect":
        width, height = element.attrib.get("width", ""), element.attrib.get("height", "")
        if width.strip() == "100%" and height.strip() == "100%":
            return True
        if box is None:
            return False
        x, y = _number(element.attrib.get("x")), _number(element.attrib.get("y"))
        w, h = _number(width, -1), _number(height, -1)
        if None in (x, y, w, h):
            return False
        assert x is not None and y is not None and w is not None and h is not None
        return x <= box[0] and y <= box[1] and x + w >= box[0] + box[2] * 0.95 and y + h >= box[1] + box[3] * 0.95
    return False  # a circle the size of the canvas may be the logo itself


def logo_finding(data: bytes) -> Finding:
    """A white vector image on a transparent background: only white paint, no raster, no backdrop."""
    finding = Finding()
    try:
        root = SafeET.fromstring(data)
    except Exception as exc:  # defusedxml raises several kinds; any of them means "not a usable SVG"
        finding.problems.append(f"the file is not a well-formed SVG ({type(exc).__name__}: {exc})")
        return finding
    if _local(root.tag) != "svg":
        finding.problems.append(f"the file's root element is <{_local(root.tag)}>, not <svg>")
        return finding
    box = _viewbox(root)
    if box is None:
        finding.warnings.append("the SVG has no viewBox (nor width and height), so it may not scale")
    problems: list[str] = []
    shapes = 0

    def walk(element: Element, fill: str, stroke: str) -> None:
        nonlocal shapes
        tag = _local(element.tag)
        if tag in RASTER:
            problems.append(f"it embeds a raster or foreign object (<{tag}>): IFTTT wants a vector image")
            return
        if tag == "style":
            problems.append('it uses a <style> sheet: give each shape fill="#ffffff" instead')
            return
        if tag in PAINT_SERVERS:
            problems.append(f"it paints with a <{tag}>: IFTTT wants plain white")
            return
        href = element.attrib.get("href") or element.attrib.get("{http://www.w3.org/1999/xlink}href") or ""
        if href.startswith("data:image/") and "svg" not in href[:20]:
            problems.append("it embeds a raster image as a data: link")
        props = _style(element)
        fill = _colour(props.get("fill", fill))
        stroke = _colour(props.get("stroke", stroke))
        if tag in SHAPES:
            shapes += 1
            for what, paint in (("fill", fill), ("stroke", stroke)):
                if paint not in WHITE and paint not in INVISIBLE:
                    shown = "black (SVG's default, as no fill is set)" if paint == "#000000-default" else f"“{paint}”"
                    problems.append(f"a <{tag}> has the {what} {shown}: every shape must be white")
            if _covers(element, box) and (fill not in INVISIBLE):
                problems.append(f"a <{tag}> covers the whole canvas: that is a background; leave it transparent")
        for child in element:
            walk(child, fill, stroke)

    walk(root, "#000000-default", "none")
    if shapes == 0:
        problems.append("it draws nothing (no path, rect, circle, polygon or text)")
    finding.problems += list(dict.fromkeys(problems))  # each problem once
    return finding


# --- the consent page ------------------------------------------------------------------------------
CONSENT_WORDS = re.compile(
    r"\b(allow|access|permission|consent|authori[sz]e|grant|share|connect|let|use|permit|approve)\b", re.I
)


def consent_finding(html: str) -> Finding:
    finding = Finding()
    text = page_text(html, limit=100_000)
    if "ifttt" not in text.lower():
        finding.problems.append("the page never names IFTTT, so the user cannot tell who is asking")
    if not CONSENT_WORDS.search(text):
        finding.problems.append("the page asks for nothing: it needs a consent message (what IFTTT may do)")
    return finding


# --- the review ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewTarget:
    base_url: str
    service_key: str
    auth: AuthOptions | None
    identity: Identity
    registry: Registry
    recipes: tuple[Recipe, ...]
    logo: Path
    timeout: float = 10.0
    budget: float | None = 300.0


def _fail(reason: str, fix: str) -> NoReturn:
    raise CheckFailed(f"{reason}\nFix: {fix}")


def _report(finding: Finding, fix: str) -> None:
    if finding.problems:
        _fail("; ".join(finding.problems) + ".", fix)
    if finding.warnings:
        warn("; ".join(finding.warnings) + ".")


def run_review(target: ReviewTarget, *, on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """The endpoint and authentication tests, then the review's own checks; one list of results."""
    tests = run_checks(
        base_url=target.base_url,
        service_key=target.service_key,
        auth=target.auth,
        on_result=on_result,
        timeout=target.timeout,
        budget=target.budget,
    )
    recorder = Recorder(target.base_url, session=requests.Session())
    suite = Suite(recorder, on_result)
    for name, run in _review_checks(target, tests):
        with suite.check(GROUP, name):
            run()
    return [*tests, *suite.results]


def _review_checks(target: ReviewTarget, tests: list[CheckResult]) -> Iterator[tuple[str, Callable[[], None]]]:
    def endpoint_tests() -> None:
        failed = [r.title for r in tests if r.outcome == "failed" and not r.title.startswith("Authentication")]
        if failed:
            _fail(
                f"{len(failed)} endpoint test(s) fail, e.g. {failed[0]}.",
                "each failure above shows the request and the response; IFTTT runs these same tests at review.",
            )
        stopped = [r.title for r in tests if r.outcome == "not run"]
        expect(not stopped, f"{len(stopped)} check(s) did not run before the time budget ran out")

    def authentication_test() -> None:
        if target.auth is None:
            _fail("the authentication test was not run.", "give --user and --password of a user of the service.")
        failed = [r.title for r in tests if r.outcome == "failed" and r.title.startswith("Authentication")]
        if failed:
            _fail(f"{len(failed)} authentication check(s) fail, e.g. {failed[0]}.", "see each failure above.")

    def consent_page() -> None:
        auth = target.auth
        if auth is None:
            _fail("nobody signed in to read the authorization page.", "give --user and --password.")
        assert auth is not None
        config = OAuthConfig(
            base_url=target.base_url,
            client_id=auth.client_id,
            client_secret=auth.client_secret,
            redirect_uri=auth.redirect_uri,
            authorize_url=auth.authorize_url,
        )
        browser = Browser(config, timeout=target.timeout)
        try:
            browser.authorize(username=auth.username, password=auth.password, allow=False, state=new_state())
        except OAuthError as exc:
            _fail(f"the authorization page could not be read: {exc}.", "make the authentication test pass first.")
        expect(bool(browser.consent_pages), "no consent page was shown")
        _report(
            consent_finding(browser.consent_pages[-1]),
            "say on the authorization page that IFTTT asks for access, and what it may do, with Allow and Deny.",
        )

    def support_email() -> None:
        _report(
            support_email_finding(target.identity.support_email),
            "set SERVICE_SUPPORT_EMAIL to a role address on your own domain, e.g. support@yourcompany.com.",
        )

    def service_copy() -> None:
        problems = copy_problems(
            copy_items(registry=target.registry, identity=target.identity), identity=target.identity
        )
        if problems:
            shown = "\n".join(f"- {p}" for p in problems[:15])
            more = f"\n(and {len(problems) - 15} more)" if len(problems) > 15 else ""
            _fail(
                f"{len(problems)} problem(s) in the service copy:\n{shown}{more}",
                "edit the catalog declarations (triggers/, queries/, actions/ catalog.py) or SERVICE_NAME and "
                "SERVICE_DESCRIPTION; `manage.py ifttt_copy` shows all of it.",
            )

    def logo() -> None:
        path = target.logo
        if path.suffix.lower() != ".svg":
            _fail(f"the logo {path.name} is not an SVG file.", "set SERVICE_LOGO to an SVG file.")
        try:
            data = path.read_bytes()
        except OSError as exc:
            _fail(f"the logo cannot be read ({exc}).", "set SERVICE_LOGO to the path of your SVG logo.")
        _report(
            logo_finding(data),
            'export the logo as a vector SVG with every shape fill="#ffffff" and nothing behind it.',
        )

    def applets() -> None:
        reasons = recipe_problems(target.registry, target.recipes)
        if len(target.recipes) < MIN_RECIPES:
            reasons.append(
                f"{len(target.recipes)} Applet recipe(s); IFTTT wants at least {MIN_RECIPES} published at launch"
            )
        unused = queries_without_recipe(target.registry, target.recipes)
        if unused:
            reasons.append(
                f"no Applet uses the query {', '.join(unused)}: a query without a practical application fails review"
            )
        if reasons:
            _fail(
                "; ".join(reasons[:6]) + ".",
                "add or fix recipes in iftttsvc/recipes.py (every query used), and publish each as an Applet.",
            )

    yield "the endpoint tests pass", endpoint_tests
    yield "the authentication test passes", authentication_test
    yield "the authorization page mentions IFTTT and asks for consent", consent_page
    yield "the support email is a role address", support_email
    yield "the service copy is complete, plain and consistent", service_copy
    yield "the logo is a white vector image on a transparent background", logo
    yield f"at least {MIN_RECIPES} Applets, and every query is used", applets


def blocking(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.outcome == "failed"]
