"""A real OpenID Connect provider (npm oidc-provider over HTTPS) for the sign-in tests.

One node process per test run serves several provider instances on one port (see
tests/node/oidc/provider.mjs): the good one at /oidc and three misbehaving ones that reuse its
issuer. Tests drive the whole redirect dance: Manabi's routes through the Flask test client,
the provider's pages through ``requests`` (the "browser"), posting its login/consent forms.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from tests.conftest import require

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
PROVIDER_SCRIPT = NODE_DIR / "oidc" / "provider.mjs"
CLIENT_ID = "manabi-test-client"
CERT_CLIENT_ID = "manabi-test-certificate-client"
CLIENT_SECRET = "manabi-test-client-secret-0123456789abcdef"  # noqa: S105 (test provider only)
REDIRECT_URI = "http://localhost/auth/callback"
# The integration API (tests/api): its resource (the audience of its access tokens) and the
# client applications the provider knows. Tenants: A = 千代田区, B = 八王子市, P = 東京都.
API_RESOURCE = "api://manabi-test-api"
API_SECRET = "manabi-test-api-secret-0123456789abcdef"  # noqa: S105 (test provider only)
TENANT_A = "0a0a0a0a-1111-4111-8111-0000000000a1"
TENANT_B = "0b0b0b0b-2222-4222-8222-0000000000b2"
TENANT_P = "0c0c0c0c-3333-4333-8333-0000000000c3"
READ, WRITE = "Manabi.Api.Read", "Manabi.Api.RosterWrite"
# name: (application id, tenant, app roles)
API_CLIENTS = {
    "reader_a": ("a0000000-0000-4000-8000-00000000000a", TENANT_A, [READ]),
    "writer_a": ("a0000000-0000-4000-8000-00000000000b", TENANT_A, [READ, WRITE]),
    "norole_a": ("a0000000-0000-4000-8000-00000000000c", TENANT_A, []),
    "unknown_a": ("a0000000-0000-4000-8000-00000000000d", TENANT_A, [READ]),
    "revoked_a": ("a0000000-0000-4000-8000-00000000000e", TENANT_A, [READ]),
    "reader_b": ("b0000000-0000-4000-8000-00000000000a", TENANT_B, [READ]),
    "foreign_tenant": ("b0000000-0000-4000-8000-00000000000b", TENANT_B, [READ]),
    "platform": ("c0000000-0000-4000-8000-00000000000a", TENANT_P, [READ, WRITE]),
}
POST_LOGOUT_URI = "http://localhost/"
# The Teams tab's single sign-on: the Teams app's application ID URI (its tokens' audience) and
# the client standing for Teams, which asks the provider for a user's token for it.
TEAMS_RESOURCE = "api://localhost/manabi-test-client"
TEAMS_CLIENT = "teams-test-client"
TEAMS_SECRET = "teams-test-client-secret-0123456789abcdef"  # noqa: S105 (test provider only)


class OidcProvider:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.accounts_file = workdir / "accounts.json"
        self.accounts: dict[str, dict] = {}
        self.ca = str(workdir / "cert.pem")
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.log: list[str] = []

    @property
    def base(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base}/oidc"

    def authority(self, instance: str = "oidc") -> str:
        return f"{self.base}/{instance}" if instance == "oidc" else f"{self.base}/{instance}/oidc"

    def start(self) -> None:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(self.workdir / "key.pem"), "-out", self.ca,
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True, capture_output=True,
        )
        # The client certificate Manabi authenticates with in the certificate test (key + cert in one PEM).
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(self.workdir / "client.key"), "-out", str(self.workdir / "client.crt"),
                "-subj", "/CN=Manabi test client",
            ],
            check=True, capture_output=True,
        )
        self.client_pem = str(self.workdir / "client.pem")
        Path(self.client_pem).write_text(
            (self.workdir / "client.key").read_text() + (self.workdir / "client.crt").read_text()
        )
        # A fixed port for the browser test's own server (registered redirect URIs have ports).
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.browser_port = probe.getsockname()[1]
        browser_base = f"http://127.0.0.1:{self.browser_port}"
        config = {
            "certificateClient": {"clientId": CERT_CLIENT_ID, "certificate": str(self.workdir / "client.crt")},
            "cert": self.ca,
            "key": str(self.workdir / "key.pem"),
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            # (https too: the Teams tab's browser test serves Manabi over TLS, as Teams requires)
            "redirectUris": [REDIRECT_URI, f"{browser_base}/auth/callback",
                             f"https://127.0.0.1:{self.browser_port}/auth/callback"],
            "postLogoutRedirectUris": [POST_LOGOUT_URI, f"{browser_base}/"],
            "accountsFile": str(self.accounts_file),
            "apiResource": API_RESOURCE,
            "teamsResource": TEAMS_RESOURCE,
            "teamsClient": {"clientId": TEAMS_CLIENT, "clientSecret": TEAMS_SECRET},
            "apiClients": [{"clientId": app_id, "clientSecret": API_SECRET, "roles": roles, "tid": tid}
                           for app_id, tid, roles in API_CLIENTS.values()],
            "instances": [
                {"path": "/oidc"},
                {"path": "/other-key/oidc", "behaviour": "other-key"},
                {"path": "/other-aud/oidc", "behaviour": "other-aud"},
                {"path": "/past-clock/oidc", "behaviour": "past-clock"},
                {"path": "/past-clock-api/oidc", "behaviour": "past-clock-api"},
            ],
        }
        (self.workdir / "config.json").write_text(json.dumps(config))
        self.accounts_file.write_text("{}")
        # One CI run (both databases' passes, side by side on two cores) once saw the provider end or
        # stay silent with nothing said but Node's start-up warning. A second start, after the first
        # attempt's own account of itself (exit code, seconds waited, output) is kept, is cheap.
        failures: list[str] = []
        for _attempt in range(2):
            try:
                self._launch()
                return
            except RuntimeError as failure:
                failures.append(str(failure))
        raise RuntimeError("the OpenID Connect provider did not start:\n" + "\n---\n".join(failures))

    def _launch(self) -> None:
        self.log = []
        self.process = subprocess.Popen(
            ["node", str(PROVIDER_SCRIPT), str(self.workdir / "config.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(NODE_DIR),
        )
        ready = threading.Event()

        def read_output():
            for line in self.process.stdout:
                self.log.append(line.rstrip())
                match = re.match(r"READY (\d+)", line)
                if match:
                    self.port = int(match.group(1))
                    ready.set()

        reader = threading.Thread(target=read_output, daemon=True)
        reader.start()
        # Node with oidc-provider and two RSA keys takes about a second; a machine busy with other
        # work (a browser, a second test run) has been seen to need more than 30 s. Wait for the
        # READY line for up to two minutes, but give up at once if the provider exits.
        started = time.monotonic()
        deadline = started + 120
        while not ready.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                reader.join(5)  # the provider's last words (why it exited) are in the log
                how = f"exit code {code}" if code is not None else "still running, silent"
                raise RuntimeError(f"{how} after {time.monotonic() - started:.1f} s; its output:\n"
                                   + "\n".join(self.log))
        # Ready to answer discovery (the listener is up before the providers are built).
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.issuer}/.well-known/openid-configuration", verify=self.ca, timeout=2).raise_for_status()
                break
            except requests.RequestException as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"listening but not answering discovery: {error}") from error
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process:
            for stream in (self.process.stdin, self.process.stdout):
                if stream:
                    stream.close()

    def api_token(self, client: str, instance: str = "oidc", resource: str = API_RESOURCE) -> str:
        """An access token of the API client ``client`` (API_CLIENTS), client-credentials grant."""
        app_id = API_CLIENTS[client][0]
        response = requests.post(
            f"{self.authority(instance)}/token",
            data={"grant_type": "client_credentials", "client_id": app_id, "client_secret": API_SECRET,
                  "resource": resource, "scope": "api.read"},
            verify=self.ca, timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def user_token(self, login: str, *, instance: str = "oidc", resource: str = TEAMS_RESOURCE,
                   scope: str = "openid access_as_user") -> str:
        """A user's access token for ``resource``, as Teams gets one for a tab: the
        authorization-code grant (PKCE) of the Teams client, signed in as ``login``."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"client_id": TEAMS_CLIENT, "response_type": "code", "redirect_uri": REDIRECT_URI,
                           "scope": scope, "resource": resource, "state": secrets.token_urlsafe(8),
                           "code_challenge": challenge, "code_challenge_method": "S256"})
        callback = browse_to_callback(new_browser(self), f"{self.authority(instance)}/auth?{query}", login)
        code = parse_qs(urlsplit(callback).query)["code"][0]
        response = requests.post(
            f"{self.authority(instance)}/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                  "client_id": TEAMS_CLIENT, "client_secret": TEAMS_SECRET, "code_verifier": verifier,
                  "resource": resource},
            verify=self.ca, timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def set_account(self, login: str, **claims) -> None:
        """The claims the next sign-in of ``login`` carries (read by the provider at each sign-in)."""
        self.accounts[login] = claims
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.accounts, ensure_ascii=False))
        tmp.replace(self.accounts_file)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    have_node = shutil.which("node") is not None and (NODE_DIR / "node_modules" / "oidc-provider").is_dir()
    require(have_node and shutil.which("openssl") is not None, "node + npm oidc-provider (tests/node) and openssl")
    provider = OidcProvider(tmp_path_factory.mktemp("oidc"))
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


def entra_settings(provider: OidcProvider, instance: str = "oidc", **extra) -> dict:
    settings = {
        "ENTRA_CLIENT_ID": CLIENT_ID,
        "ENTRA_CLIENT_SECRET": CLIENT_SECRET,
        "ENTRA_AUTHORITY": provider.authority(instance),
        "ENTRA_CA_BUNDLE": provider.ca,
        "LMS_DEMO_LOGIN": False,
    }
    settings.update(extra)
    return settings


# ---------------------------------------------------------------- the browser side of the dance

_FORM = re.compile(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", re.S | re.I)
_INPUT = re.compile(r"<input([^>]*)>", re.I)
_ATTR = re.compile(r"(\w+)=\"([^\"]*)\"")


def _form(html: str) -> tuple[str, dict]:
    match = _FORM.search(html)
    assert match, f"expected a form on the provider's page:\n{html[:2000]}"
    fields = {}
    for raw in _INPUT.findall(match.group(2)):
        attrs = dict(_ATTR.findall(raw))
        if "name" in attrs:
            fields[attrs["name"]] = unescape(attrs.get("value", ""))
    return unescape(match.group(1)), fields


def browse_to_callback(browser: requests.Session, url: str, login: str | None, *, abort: bool = False) -> str:
    """Follow the provider's pages from ``url`` (posting login and consent forms as ``login``)
    until it sends the browser back to Manabi; return that callback URL."""
    method, data = "GET", None
    for _ in range(20):
        response = browser.request(method, url, data=data, allow_redirects=False, timeout=10)
        if response.is_redirect:
            target = urljoin(url, response.headers["Location"])
            if target.startswith(REDIRECT_URI) or target.startswith(POST_LOGOUT_URI):
                return target
            url, method, data = target, "GET", None
            continue
        assert response.status_code == 200, (response.status_code, response.text[:2000])
        if abort and "/interaction/" in url:
            url, method, data = url.rstrip("/") + "/abort", "GET", None
            continue
        action, fields = _form(response.text)
        if fields.get("prompt") == "login":
            fields.update(login=login, password="any-password")
        url, method, data = urljoin(url, action), "POST", fields
    raise AssertionError("the provider never redirected back to Manabi")


def new_browser(provider: OidcProvider) -> requests.Session:
    browser = requests.Session()
    browser.trust_env = False
    browser.verify = provider.ca
    return browser


def start_sign_in(client, next_url: str | None = None) -> str:
    """GET /auth/login (→ the provider's authorization URL)."""
    query = {"next": next_url} if next_url is not None else {}
    response = client.get("/auth/login", query_string=query)
    assert response.status_code == 302, response.status_code
    location = response.headers["Location"]
    return location


def sign_in(client, provider: OidcProvider, login: str, *, next_url: str | None = None, browser=None):
    """The whole dance; returns Manabi's response to the callback."""
    auth_uri = start_sign_in(client, next_url)
    callback = browse_to_callback(browser or new_browser(provider), auth_uri, login)
    parts = urlsplit(callback)
    return client.get(f"{parts.path}?{parts.query}")


@contextmanager
def serve_on_browser_port(app, provider: OidcProvider, *, tls: bool = False):
    """Manabi on the port whose /auth/callback the provider knows (a real browser signs in);
    ``tls``: over HTTPS with the provider's test certificate (it names 127.0.0.1). Yields the
    base URL."""
    from tests.conftest import LiveServer

    context = (provider.ca, str(provider.workdir / "key.pem")) if tls else None
    server = LiveServer(app, port=provider.browser_port, ssl_context=context).start()
    try:
        yield server.url
    finally:
        server.stop()


def new_guid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def entra_account(oidc_provider):
    """``entra_account(tid, roles=[...], username=...)`` → the login name of a provider account."""

    def make(tenant_id: str, *, roles=(), username: str | None = None, name: str = "情報 花子", oid: str | None = None):
        login = f"user-{uuid.uuid4().hex[:12]}"
        oidc_provider.set_account(
            login,
            oid=oid or new_guid(),
            tid=tenant_id,
            roles=list(roles),
            preferred_username=username or f"{login}@city.example.lg.jp",
            name=name,
        )
        return login

    return make


@pytest.fixture
def audit_actions(db):
    def read(action: str | None = None):
        from sqlalchemy import select

        from lms.audit.models import AuditLog

        query = select(AuditLog).order_by(AuditLog.id)
        if action:
            query = query.where(AuditLog.action == action)
        db.session.rollback()
        return list(db.session.scalars(query))

    return read

