"""A thin synchronous Microsoft Graph client on ``requests``.

The only module that talks HTTP to Graph. It follows ``@odata.nextLink`` to the end,
retries throttling and transient failures (429/503/504) honouring ``Retry-After`` exactly,
retries a POST only when the caller says it is idempotent (events carry a ``transactionId``),
puts a timeout on every call, streams large content, and raises typed errors: a failed
page is a failure, never an empty or partial result.

Waiting is bounded per client (``max_wait`` seconds in all; one client serves one run of
an operation): when Graph asks for a longer pause than what is left, the client does not
sleep and does not ask again early, it raises ``GraphThrottled`` carrying ``retry_after``
so that the caller reschedules the whole operation instead of holding a worker.

Tokens come from ``token_provider`` (a callable returning a bearer token), so tests need no
MSAL; in the application ``client_from_app()`` wires it to ``lms.auth.entra``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
RETRY_STATUSES = frozenset({429, 503, 504})


class GraphError(Exception):
    """Graph answered with an error (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", request_id: str = "",
                 method: str = "", url: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after  # seconds Graph asked us to wait (Retry-After), if it said
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.method = method
        self.url = url

    @property
    def retryable(self) -> bool:
        """Worth trying again later (throttling, outage, network), unlike a refusal."""
        return self.status is None or self.status in RETRY_STATUSES or self.status >= 500

    def __str__(self) -> str:
        parts = [f"{self.method} {self.url}".strip()]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        parts.append(self.message)
        if self.request_id:
            parts.append(f"request-id {self.request_id}")
        return ": ".join(p for p in parts if p)


class GraphThrottled(GraphError):
    """Still throttled (429) or unavailable (503/504) after every attempt or the waiting budget."""


class GraphNotFound(GraphError):
    pass


class GraphAuthError(GraphError):
    """401/403: the token was refused or the application lacks a permission or policy."""


class GraphBadRequest(GraphError):
    pass


class GraphConflict(GraphError):
    pass


class GraphTransportError(GraphError):
    """No HTTP answer at all: connection refused, TLS failure, timeout."""


def _error_class(status: int) -> type[GraphError]:
    if status in (401, 403):
        return GraphAuthError
    if status == 404:
        return GraphNotFound
    if status == 409:
        return GraphConflict
    if status in RETRY_STATUSES:
        return GraphThrottled
    if 400 <= status < 500:
        return GraphBadRequest
    return GraphError


def odata_quote(value: str) -> str:
    """A string literal for an OData $filter or function parameter ('' escapes ')."""
    return "'" + value.replace("'", "''") + "'"


def user_path(user: str) -> str:
    """``/users/{id or UPN}`` with the id path-escaped."""
    return "/users/" + quote(user, safe="@.-_")


class GraphClient:
    """Synchronous Graph client. Thread-safe for counting; one ``requests.Session`` each."""

    def __init__(
        self,
        token_provider: Callable[[], str],
        *,
        base_url: str = DEFAULT_BASE_URL,
        verify: str | bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "Manabi/1.0",
    ):
        self.token_provider = token_provider
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_wait = max(0.0, max_wait)
        self.sleep = sleep
        self.http = requests.Session()
        self.http.trust_env = False  # no proxies or netrc from the environment
        self.http.verify = verify
        self.http.headers["User-Agent"] = user_agent
        self._lock = threading.Lock()
        self.calls = 0
        self.retries = 0
        self.waited_seconds = 0.0

    # ---------------------------------------------------------------- plumbing

    def url_for(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return self.base_url + "/" + path_or_url.lstrip("/")

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    @staticmethod
    def retry_after_of(response: requests.Response | None) -> float | None:
        """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), None without one."""
        if response is None:
            return None
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None

    def _retry_delay(self, response: requests.Response | None, attempt: int) -> float:
        delay = self.retry_after_of(response)
        if delay is not None:
            return delay  # exactly what Graph asked for: never earlier
        return min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))

    def _within_budget(self, delay: float) -> bool:
        with self._lock:
            return self.waited_seconds + delay <= self.max_wait

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: dict | None = None,
        headers: dict | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One logical call, with retries. Returns the successful response (2xx)."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        url = self.url_for(path)
        attempt = 0
        while True:
            attempt += 1
            request_headers = {"Authorization": f"Bearer {self.token_provider()}", "Accept": "application/json"}
            request_headers.update(headers or {})
            self._count()
            try:
                response = self.http.request(
                    method, url, params=params, json=json, headers=request_headers,
                    timeout=self.timeout, stream=stream,
                )
            except requests.RequestException as exc:
                # A connection error may or may not have reached Graph: only repeat safe calls.
                if idempotent and attempt < self.max_attempts:
                    delay = self._retry_delay(None, attempt)
                    if self._within_budget(delay):
                        self._wait(delay)
                        continue
                raise GraphTransportError(
                    f"{type(exc).__name__}: {exc}", method=method, url=url
                ) from exc
            if response.status_code < 400:
                return response
            # A 429 is refused before any work is done, so even a plain POST may be repeated;
            # 503/504 may have half-happened: only idempotent calls are repeated.
            retry = response.status_code == 429 or (response.status_code in RETRY_STATUSES and idempotent)
            if retry and attempt < self.max_attempts:
                delay = self._retry_delay(response, attempt)
                if self._within_budget(delay):
                    response.close()
                    log.info("graph %s %s: HTTP %s, retrying in %.2fs", method, url, response.status_code, delay)
                    self._wait(delay)
                    continue
                # Waiting that long here would hold a worker: give up this run; the caller
                # reschedules the operation no earlier than Graph asked (error.retry_after).
                log.info("graph %s %s: HTTP %s, asked to wait %.0fs (budget %.0fs, waited %.0fs): giving up this run",
                         method, url, response.status_code, delay, self.max_wait, self.waited_seconds)
            raise self._error_from(response, method, url)

    def _wait(self, delay: float) -> None:
        with self._lock:
            self.retries += 1
            self.waited_seconds += delay
        if delay > 0:
            self.sleep(delay)

    @staticmethod
    def _error_from(response: requests.Response, method: str, url: str) -> GraphError:
        code, message = "", response.reason or "error"
        try:
            body = response.json()
            err = body.get("error", {}) if isinstance(body, dict) else {}
            code = str(err.get("code", "") or "")
            message = str(err.get("message", "") or message)
            inner = err.get("innerError") or err.get("innererror") or {}
        except ValueError:
            inner = {}
        retry_after = GraphClient.retry_after_of(response)
        request_id = (
            response.headers.get("request-id")
            or response.headers.get("client-request-id")
            or (inner.get("request-id") if isinstance(inner, dict) else "")
            or ""
        )
        response.close()
        return _error_class(response.status_code)(
            message, status=response.status_code, code=code, request_id=request_id, method=method, url=url,
            retry_after=retry_after,
        )

    # ---------------------------------------------------------------- verbs

    def get(self, path: str, params: dict | None = None) -> dict:
        return self._json(self.request("GET", path, params=params))

    def post(self, path: str, json: dict | None = None, *, idempotent: bool = False,
             headers: dict | None = None) -> dict:
        return self._json(self.request("POST", path, json=json, idempotent=idempotent, headers=headers))

    def patch(self, path: str, json: dict) -> dict:
        # A PATCH sets values: repeating it gives the same result.
        return self._json(self.request("PATCH", path, json=json, idempotent=True))

    def delete(self, path: str) -> None:
        self.request("DELETE", path).close()

    def get_text(self, path: str, params: dict | None = None, accept: str = "text/plain") -> str:
        response = self.request("GET", path, params=params, headers={"Accept": accept})
        response.encoding = response.encoding or "utf-8"
        if response.encoding.lower() == "iso-8859-1":  # requests' default for text/* without charset
            response.encoding = "utf-8"
        return response.text

    @staticmethod
    def _json(response: requests.Response) -> dict:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise GraphError("response is not JSON", status=response.status_code,
                             url=response.url, method=response.request.method or "") from exc

    def iter_pages(self, path: str, params: dict | None = None) -> Iterator[list[dict]]:
        """Yield each page's ``value`` in turn; any failed page raises (never ends early)."""
        url: str | None = path
        first = True
        seen: set[str] = set()
        while url:
            body = self.get(url, params=params if first else None)
            first = False
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise GraphError("collection response without a value array", url=self.url_for(url), method="GET")
            yield body["value"]
            url = body.get("@odata.nextLink")
            if url:
                if url in seen:
                    raise GraphError("@odata.nextLink repeats itself", url=url, method="GET")
                seen.add(url)

    def get_all(self, path: str, params: dict | None = None) -> list[dict]:
        """Every item of a collection, following ``@odata.nextLink`` to the end."""
        items: list[dict] = []
        for page in self.iter_pages(path, params):
            items.extend(page)
        return items

    def stream(self, path: str, *, chunk_size: int = 1024 * 1024, params: dict | None = None,
               accept: str = "*/*") -> StreamedContent:
        """Open a download; iterate the result for chunks (never the whole body in memory)."""
        response = self.request("GET", path, params=params, headers={"Accept": accept}, stream=True)
        return StreamedContent(response, chunk_size)


class StreamedContent:
    """A streamed response body: ``size`` (Content-Length or None), ``content_type``, chunks."""

    def __init__(self, response: requests.Response, chunk_size: int):
        self.response = response
        self.chunk_size = chunk_size
        length = response.headers.get("Content-Length")
        self.size = int(length) if length and length.isascii() and length.isdigit() and len(length) < 19 else None
        self.content_type = (response.headers.get("Content-Type") or "application/octet-stream").split(";")[0]
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.response.iter_content(chunk_size=self.chunk_size):
                if chunk:
                    self.bytes_read += len(chunk)
                    yield chunk
        except requests.RequestException as exc:
            raise GraphTransportError(f"download interrupted: {exc}", url=self.response.url, method="GET") from exc
        finally:
            self.response.close()
        if self.size is not None and self.bytes_read != self.size:
            raise GraphTransportError(
                f"download incomplete: {self.bytes_read} of {self.size} bytes", url=self.response.url, method="GET"
            )

    def close(self) -> None:
        self.response.close()


# ---------------------------------------------------------------- application wiring


def graph_configured(app=None) -> bool:
    """Graph work is attempted only when the app can get a token (or a test server is set)."""
    from flask import current_app

    config = (app or current_app).config
    if (app or current_app).extensions.get("graph_token_provider") is not None:
        return True
    has_credentials = bool(config.get("ENTRA_CLIENT_ID")) and bool(
        config.get("ENTRA_CLIENT_SECRET") or config.get("ENTRA_CLIENT_CERT_PATH")
    )
    overridden = (config.get("GRAPH_BASE_URL") or DEFAULT_BASE_URL).rstrip("/") != DEFAULT_BASE_URL
    return has_credentials or overridden


def _app_token() -> str:
    from lms.auth.entra import acquire_app_token  # the only module that imports msal

    return acquire_app_token(scopes=("https://graph.microsoft.com/.default",))


def client_from_app(app=None) -> GraphClient:
    """A client configured from the application (token from lms.auth.entra, or a test provider)."""
    from flask import current_app

    app = app or current_app
    config = app.config
    provider = app.extensions.get("graph_token_provider") or _app_token
    return GraphClient(
        provider,
        base_url=config.get("GRAPH_BASE_URL") or DEFAULT_BASE_URL,
        verify=config.get("GRAPH_CA_BUNDLE") or True,
        connect_timeout=float(config.get("GRAPH_CONNECT_TIMEOUT", 5)),
        read_timeout=float(config.get("GRAPH_READ_TIMEOUT", 60)),
        max_attempts=int(config.get("GRAPH_MAX_ATTEMPTS", 5)),
        backoff_cap=float(config.get("GRAPH_BACKOFF_CAP", 30)),
        max_wait=float(config.get("GRAPH_MAX_WAIT", 60)),
        sleep=app.extensions.get("graph_sleep") or time.sleep,
    )
