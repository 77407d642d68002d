"""A small, real Microsoft Graph v1.0 server for tests and the benchmark (127.0.0.1, own thread).

Implements what Manabi uses, with the JSON shapes of Microsoft's v1.0 reference pages:
calendar events with Teams meetings (create with transactionId, update, cancel), online
meetings by JoinWebUrl, attendance reports and records (paged with an absolute
``@odata.nextLink``), recordings (streamed MP4 of any size, generated on the fly) and
transcripts (WebVTT), getAllRecordings/getAllTranscripts, sendMail, and subscriptions
(with the validationToken handshake against the notification URL).

Faults are injected per request: ``server.fail("attendanceRecords", status=429,
times=2, retry_after="1")``, or for a stretch of time on the server's clock
(``until=``; the clock is injectable, so an outage of minutes takes no minutes). A request
can be held at a chosen page (``server.hold(...)``), or a recording download after a chosen
number of bytes (``after_bytes=``), until the test releases it, so that a process can be
killed while it is exactly there. Every request and every JSON response is logged with the
Graph type it carries, so a contract test can check them against Microsoft's schema.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TENANT_ID = "2432b57b-0abd-43db-aa7b-16eadd115d34"


@dataclass
class Fault:
    pattern: str
    status: int
    times: int | None = 1  # None: always
    retry_after: str | None = None
    method: str | None = None
    query: dict = field(default_factory=dict)
    hits: int = 0
    until: float | None = None  # on the server's clock: active while clock() < until


@dataclass
class Hold:
    """A request held open until ``release()``: ``reached`` is set once one arrives.

    With ``after_bytes`` a recording download is answered (status, headers and that many
    bytes of its content) and then held in the middle of its content stream."""

    pattern: str
    query: dict
    after_bytes: int | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    hits: int = 0

    def release(self) -> None:
        self.released.set()


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict
    body: object
    graph_type: str  # type of the request body ("" when none)
    headers: dict
    at: float = 0.0  # the server's clock when it arrived
    status: int = 0  # what the server answered (0: still being answered)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")  # Graph writes 7 fraction digits


def _error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    rid = str(uuid.uuid4())
    body = {"error": {"code": code, "message": message,
                      "innerError": {"date": _iso(datetime.now(UTC)), "request-id": rid, "client-request-id": rid}}}
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["request-id"] = rid
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def _b64(text: str) -> str:
    """Graph-like opaque id: base64 with its "=" padding (and "+"), never "/" (a path separator)."""
    return base64.b64encode(text.encode()).decode().replace("/", "_")


def mp4_chunks(size: int, chunk: int = 1024 * 1024):
    """``size`` bytes starting like an MP4 (ftyp box), produced without holding them all."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    block = (head + bytes(range(256)) * (chunk // 256 + 1))[:chunk]
    sent = 0
    while sent < size:
        n = min(chunk, size - sent)
        yield block[:n] if sent == 0 or n < chunk else block
        sent += n


def mp4_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for part in mp4_chunks(size):
        digest.update(part)
    return digest.hexdigest()


class GraphServer:
    def __init__(self, *, latency: float = 0.0, page_size: int = 100, token: str = "test-token",
                 clock=time.time):
        self.clock = clock
        self.holds: list[Hold] = []
        self.latency = latency
        self.page_size = page_size
        self.token = token
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self.responses: list[tuple[str, str, object]] = []  # (path, graph type, body)
        self.events: dict[str, dict] = {}  # event id -> event
        self.event_owner: dict[str, str] = {}
        self.transactions: dict[str, str] = {}  # transactionId -> event id
        self.meetings: dict[str, dict] = {}  # meeting id -> onlineMeeting
        self.reports: dict[str, list[dict]] = {}  # meeting id -> reports
        self.records: dict[str, list[dict]] = {}  # report id -> records
        self.recordings: dict[str, list[dict]] = {}  # meeting id -> callRecording
        self.recording_sizes: dict[str, int] = {}
        self.transcripts: dict[str, list[dict]] = {}
        self.transcript_text: dict[str, str] = {}
        self.sent_mail: list[dict] = []
        self.subscriptions: dict[str, dict] = {}
        # Teams apps: the tenant's catalogue (externalId -> teamsApp, with the manifest's
        # activity types), installations per user, users whose tenant policy blocks installing,
        # and the activity notices received.
        self.catalogue: dict[str, dict] = {}
        self.activity_types: dict[str, dict[str, set[str]]] = {}  # externalId -> type -> parameters
        self.installed: dict[str, list[dict]] = {}
        self.install_blocked: set[str] = set()
        self.activity_notices: list[dict] = []
        # Viva Learning: learning providers registered by the tenant's admin (registrationId ->
        # learningProvider), their learningContents (by externalId) and course activities (by id).
        self.viva_providers: dict[str, dict] = {}
        self.viva_contents: dict[str, dict[str, dict]] = {}
        self.viva_activities: dict[str, dict[str, dict]] = {}
        self.content_bytes_sent = 0
        self._ids = itertools.count(1)
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.port = self.server.server_port
        self.base_url = f"http://127.0.0.1:{self.port}/v1.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> GraphServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        for hold in self.holds:
            hold.release()
        self.server.shutdown()
        self.thread.join(5)

    @property
    def call_count(self) -> int:
        return len(self.requests)

    def calls(self, method: str | None = None, contains: str = "") -> list[LoggedRequest]:
        return [r for r in self.requests if (method is None or r.method == method) and contains in r.path]

    # ---------------------------------------------------------------- fixtures for tests

    def fail(self, pattern: str, status: int, times: int | None = 1, retry_after: str | None = None,
             method: str | None = None, until: float | None = None, **query) -> Fault:
        fault = Fault(pattern, status, times, retry_after, method, query, until=until)
        with self.lock:
            self.faults.append(fault)
        return fault

    def hold(self, pattern: str, *, after_bytes: int | None = None, **query) -> Hold:
        """Hold the first matching request open until ``release()``: before any answer, or
        (``after_bytes``, recording content) after that many bytes of the content."""
        hold = Hold(pattern, query, after_bytes)
        with self.lock:
            self.holds.append(hold)
        return hold

    def meeting_for_event(self, event_id: str) -> dict:
        join = self.events[event_id]["onlineMeeting"]["joinUrl"]
        return next(m for m in self.meetings.values() if m["joinWebUrl"] == join)

    def add_attendance_report(self, meeting_id: str, start: datetime, end: datetime, records: list[dict]) -> dict:
        report_id = str(uuid.uuid4())
        report = {
            "id": report_id,
            "totalParticipantCount": len(records),
            "meetingStartDateTime": _iso(start),
            "meetingEndDateTime": _iso(end),
        }
        self.reports.setdefault(meeting_id, []).append(report)
        self.records[report_id] = records
        return report

    @staticmethod
    def attendance_record(*, object_id: str | None, tenant_id: str | None, name: str, email: str | None,
                          intervals: list[tuple[datetime, datetime]], role: str = "Attendee") -> dict:
        total = int(sum((b - a).total_seconds() for a, b in intervals))
        identity = {"@odata.type": "#microsoft.graph.communicationsUserIdentity", "id": object_id,
                    "displayName": name, "tenantId": tenant_id}
        return {
            "id": object_id or str(uuid.uuid4()),
            "emailAddress": email,
            "totalAttendanceInSeconds": total,
            "role": role,
            "identity": identity,
            "attendanceIntervals": [
                {"joinDateTime": _iso(a), "leaveDateTime": _iso(b), "durationInSeconds": int((b - a).total_seconds())}
                for a, b in intervals
            ],
        }

    def add_recording(self, meeting_id: str, organizer_id: str, size: int, created: datetime) -> dict:
        rec_id = _b64(f"recording-{next(self._ids)}-{uuid.uuid4()}")
        correlation = str(uuid.uuid4())
        rec = {
            "id": rec_id,
            "meetingId": meeting_id,
            "callId": str(uuid.uuid4()),
            "contentCorrelationId": correlation,
            "createdDateTime": _iso(created),
            "endDateTime": _iso(created + timedelta(minutes=90)),
            "recordingContentUrl": f"{self.base_url}/users/{organizer_id}/onlineMeetings/{meeting_id}/recordings/{rec_id}/content",
            "meetingOrganizer": {"user": {"@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": organizer_id,
                                          "displayName": None, "userIdentityType": "aadUser"},
                                 "application": None, "device": None},
        }
        self.recordings.setdefault(meeting_id, []).append(rec)
        self.recording_sizes[rec_id] = size
        return rec

    def add_transcript(self, meeting_id: str, organizer_id: str, recording: dict, vtt: str) -> dict:
        tr_id = _b64(f"transcript-{next(self._ids)}-{uuid.uuid4()}")
        tr = {
            "id": tr_id,
            "meetingId": meeting_id,
            "callId": recording["callId"],
            "contentCorrelationId": recording["contentCorrelationId"],
            "createdDateTime": recording["createdDateTime"],
            "endDateTime": recording["endDateTime"],
            "transcriptContentUrl": f"{self.base_url}/users/{organizer_id}/onlineMeetings/{meeting_id}/transcripts/{tr_id}/content",
            "meetingOrganizer": recording["meetingOrganizer"],
        }
        self.transcripts.setdefault(meeting_id, []).append(tr)
        self.transcript_text[tr_id] = vtt
        return tr

    # ---------------------------------------------------------------- WSGI

    def wsgi(self, environ, start_response):
        request = Request(environ)
        response = self.handle(request)
        logged = getattr(request, "logged", None)
        if logged is not None:
            logged.status = response.status_code
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        if self.latency:
            time.sleep(self.latency)
        raw_path = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        raw_path = raw_path.split("?", 1)[0]
        path = unquote(raw_path)
        if path.startswith("/v1.0"):
            path = path[len("/v1.0"):]
        body = None
        if request.data:
            try:
                body = json.loads(request.data)
            except ValueError:
                return _error(400, "BadRequest", "Unable to read JSON request payload.")
        query = dict(request.args)
        with self.lock:
            self.requests.append(LoggedRequest(request.method, path, query, body, "", dict(request.headers),
                                               at=self.clock()))
            entry = self.requests[-1]
        request.logged = entry
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        hold = self._hold_for(path, query)
        if hold is not None and hold.after_bytes is None:
            hold.reached.set()
            hold.released.wait(120)
        request.hold = hold
        fault = self._fault_for(request.method, path, query)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            codes = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout", 500: "InternalServerError",
                     403: "Forbidden", 404: "NotFound"}
            return _error(fault.status, codes.get(fault.status, "generalException"), "Injected fault.", headers)
        try:
            return self.route(request, path, query, body, entry)
        except KeyError as exc:
            return _error(404, "NotFound", f"The requested resource does not exist ({exc}).")

    def _hold_for(self, path: str, query: dict) -> Hold | None:
        with self.lock:
            for hold in self.holds:
                if hold.hits or hold.pattern not in path or any(query.get(k) != v for k, v in hold.query.items()):
                    continue
                hold.hits += 1
                return hold
        return None

    def _fault_for(self, method: str, path: str, query: dict) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.pattern not in path or (fault.method and fault.method != method):
                    continue
                if fault.until is not None and self.clock() >= fault.until:
                    continue
                if any(query.get(k) != v for k, v in fault.query.items()):
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                return fault
        return None

    def _json(self, path: str, graph_type: str, body: dict, status: int = 200) -> Response:
        with self.lock:
            self.responses.append((path, graph_type, body))
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        response.headers["request-id"] = str(uuid.uuid4())
        return response

    def _page(self, path: str, graph_type: str, items: list[dict], query: dict, context: str) -> Response:
        start = int(query.get("$skiptoken", "0") or 0)
        size = int(query.get("$top", self.page_size))
        page = items[start:start + size]
        body = {"@odata.context": f"{self.base_url}/$metadata#{context}", "value": page}
        if start + size < len(items):
            body["@odata.nextLink"] = f"{self.base_url}{path}?$skiptoken={start + size}"
        return self._json(path, f"Collection({graph_type})", body)

    # ---------------------------------------------------------------- routes

    def route(self, request: Request, path: str, query: dict, body, entry: LoggedRequest) -> Response:
        method = request.method
        answer = self._teams_app_route(method, path, query, body, entry)
        if answer is not None:
            return answer
        m = re.fullmatch(r"/users/([^/]+)/events", path)
        if m and method == "POST":
            entry.graph_type = "event"
            return self._create_event(m.group(1), body, path)
        m = re.fullmatch(r"/users/([^/]+)/events/([^/]+)", path)
        if m and method == "PATCH":
            entry.graph_type = "event"
            event = self.events[m.group(2)]
            event.update({k: v for k, v in body.items() if k != "transactionId"})
            event["lastModifiedDateTime"] = _iso(datetime.now(UTC))
            return self._json(path, "event", event)
        if m and method == "GET":
            return self._json(path, "event", self.events[m.group(2)])
        m = re.fullmatch(r"/users/([^/]+)/events/([^/]+)/cancel", path)
        if m and method == "POST":
            entry.graph_type = "action:cancel"
            event = self.events[m.group(2)]
            event["isCancelled"] = True
            return Response(status=202)
        m = re.fullmatch(r"/users/([^/]+)/onlineMeetings", path)
        if m and method == "GET":
            flt = query.get("$filter", "")
            fm = re.fullmatch(r"JoinWebUrl eq '(.*)'", flt)
            if not fm:
                return _error(400, "BadRequest", "Filter on JoinWebUrl is required.")
            url = fm.group(1).replace("''", "'")
            found = [mt for mt in self.meetings.values() if mt["joinWebUrl"] == url]
            return self._page(path, "onlineMeeting", found, query, "users('x')/onlineMeetings")
        m = re.fullmatch(r"/users/([^/]+)/onlineMeetings/(getAllRecordings|getAllTranscripts)\((.*)\)", path)
        if m and method == "GET":
            return self._get_all_artifacts(path, m.group(2), m.group(3), query)
        m = re.fullmatch(r"/users/([^/]+)/onlineMeetings/([^/]+)/attendanceReports", path)
        if m and method == "GET":
            if m.group(2) not in self.meetings:
                raise KeyError(m.group(2))
            return self._page(path, "meetingAttendanceReport", self.reports.get(m.group(2), []), query,
                              "users('x')/onlineMeetings('x')/attendanceReports")
        m = re.fullmatch(r"/users/([^/]+)/onlineMeetings/([^/]+)/attendanceReports/([^/]+)/attendanceRecords", path)
        if m and method == "GET":
            return self._page(path, "attendanceRecord", self.records[m.group(3)], query,
                              "users('x')/onlineMeetings('x')/attendanceReports('x')/attendanceRecords")
        m = re.fullmatch(r"/users/([^/]+)/onlineMeetings/([^/]+)/(recordings|transcripts)", path)
        if m and method == "GET":
            kind = m.group(3)
            items = (self.recordings if kind == "recordings" else self.transcripts).get(m.group(2), [])
            return self._page(path, "callRecording" if kind == "recordings" else "callTranscript", items, query,
                              f"users('x')/onlineMeetings('x')/{kind}")
        m = re.fullmatch(r"/users/([^/]+)/onlineMeetings/([^/]+)/recordings/([^/]+)/content", path)
        if m and method == "GET":
            size = self.recording_sizes[m.group(3)]
            return self._stream_mp4(size, getattr(request, "hold", None))
        m = re.fullmatch(r"/users/([^/]+)/onlineMeetings/([^/]+)/transcripts/([^/]+)/content", path)
        if m and method == "GET":
            text = self.transcript_text[m.group(3)]
            if query.get("$format", "text/vtt") != "text/vtt":
                return _error(400, "BadRequest", "Only text/vtt is supported here.")
            return Response(text.encode("utf-8"), mimetype="text/vtt")
        m = re.fullmatch(r"/users/([^/]+)/sendMail", path)
        if m and method == "POST":
            entry.graph_type = "action:sendMail"
            if not isinstance(body, dict) or "message" not in body:
                return _error(400, "ErrorInvalidRequest", "message is required.")
            self.sent_mail.append({"from": m.group(1), **body})
            return Response(status=202)
        if path == "/subscriptions" and method == "POST":
            entry.graph_type = "subscription"
            return self._create_subscription(body, path)
        m = re.fullmatch(r"/subscriptions/([^/]+)", path)
        if m and method == "PATCH":
            entry.graph_type = "subscription"
            sub = self.subscriptions[m.group(1)]
            sub.update(body)
            return self._json(path, "subscription", sub)
        if (answer := self._viva_route(request, path, query, body, entry)) is not None:
            return answer
        return _error(404, "UnknownError", f"No route for {method} {path}")

    # ---------------------------------------------------------------- Teams apps and activity notices

    def publish_app(self, manifest: dict) -> dict:
        """A tenant admin uploads the app package: the catalogue holds the app (its manifest id
        as ``externalId``) and the activity types it declares."""
        external_id = manifest["id"]
        app = {"id": str(uuid.uuid4()), "externalId": external_id, "displayName": manifest["name"]["short"],
               "distributionMethod": "organization"}
        self.catalogue[external_id] = app
        self.activity_types[external_id] = {
            a["type"]: set(re.findall(r"{(\w+)}", a["templateText"]))
            for a in manifest.get("activities", {}).get("activityTypes", [])
        }
        return app

    def _installations(self, user: str) -> list[dict]:
        return self.installed.setdefault(user, [])

    def _teams_app_route(self, method: str, path: str, query: dict, body, entry: LoggedRequest) -> Response | None:
        if path == "/appCatalogs/teamsApps" and method == "GET":
            flt = query.get("$filter", "")
            fm = re.fullmatch(r"externalId eq '(.*)'", flt)
            apps = [a for a in self.catalogue.values() if fm is None or a["externalId"] == fm.group(1).replace("''", "'")]
            return self._page(path, "teamsApp", apps, query, "appCatalogs/teamsApps")
        m = re.fullmatch(r"/users/([^/]+)/teamwork/installedApps", path)
        if m and method == "GET":
            items = self._installations(m.group(1))
            fm = re.fullmatch(r"teamsApp/externalId eq '(.*)'", query.get("$filter", ""))
            if fm:
                items = [i for i in items if i["teamsApp"]["externalId"] == fm.group(1).replace("''", "'")]
            if query.get("$expand") != "teamsApp":
                items = [{k: v for k, v in i.items() if k != "teamsApp"} for i in items]
            return self._page(path, "userScopeTeamsAppInstallation", items, query, "users('x')/teamwork/installedApps")
        if m and method == "POST":
            entry.graph_type = "userScopeTeamsAppInstallation"
            bind = (body or {}).get("teamsApp@odata.bind", "") if isinstance(body, dict) else ""
            app_id = bind.rsplit("/", 1)[-1]
            app = next((a for a in self.catalogue.values() if a["id"] == app_id), None)
            if app is None or not bind.startswith(f"{self.base_url}/appCatalogs/teamsApps/"):
                return _error(404, "NotFound", "The Teams app does not exist in the app catalog.")
            if m.group(1) in self.install_blocked:
                return _error(403, "Forbidden", "App installation is blocked by the tenant's app permission policy.")
            installs = self._installations(m.group(1))
            if any(i["teamsApp"]["id"] == app_id for i in installs):
                return _error(409, "Conflict", "The app is already installed.")
            installs.append({"id": str(uuid.uuid4()), "teamsApp": dict(app)})
            return Response(status=201)
        m = re.fullmatch(r"/users/([^/]+)/teamwork/sendActivityNotification", path)
        if m and method == "POST":
            entry.graph_type = "action:sendActivityNotification"
            return self._activity_notice(m.group(1), body)
        return None

    def _activity_notice(self, user: str, body) -> Response:
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "A JSON body is required.")
        installs = self._installations(user)
        if not installs:
            return _error(403, "Forbidden", "The app is not installed for the recipient.")
        external_ids = [i["teamsApp"]["externalId"] for i in installs]
        if body.get("teamsAppId"):
            external_ids = [i["teamsApp"]["externalId"] for i in installs if i["teamsApp"]["id"] == body["teamsAppId"]]
            if not external_ids:
                return _error(400, "BadRequest", "teamsAppId does not name an app installed for the recipient.")
        declared = self.activity_types.get(external_ids[0], {})
        activity_type = body.get("activityType")
        if activity_type not in declared:
            return _error(400, "BadRequest", f"Activity type {activity_type!r} is not declared in the app manifest.")
        names = {p.get("name") for p in body.get("templateParameters") or []}
        if names != declared[activity_type]:
            return _error(400, "BadRequest", f"templateParameters {sorted(names)} do not match the template's "
                                             f"{sorted(declared[activity_type])}.")
        topic = body.get("topic") or {}
        if topic.get("source") not in ("text", "entityUrl") or not topic.get("value"):
            return _error(400, "BadRequest", "topic.source and topic.value are required.")
        if topic["source"] == "text" and not str(topic.get("webUrl", "")).startswith("https://teams.microsoft.com/l/"):
            return _error(400, "BadRequest", "topic.webUrl must be a Teams deep link when the source is text.")
        preview = (body.get("previewText") or {}).get("content", "")
        if not preview or len(preview) > 150:
            return _error(400, "BadRequest", "previewText.content is required (at most 150 characters shown).")
        chain = body.get("chainId")
        with self.lock:
            if chain is not None:  # the same chainId replaces the earlier notice in the feed
                self.activity_notices = [n for n in self.activity_notices
                                         if not (n["user"] == user and n["body"].get("chainId") == chain)]
            self.activity_notices.append({"user": user, "body": body})
        return Response(status=204)

    def _create_event(self, user: str, body: dict, path: str) -> Response:
        tx = body.get("transactionId")
        if tx and tx in self.transactions:  # Graph: a repeated POST returns the same event
            return self._json(path, "event", self.events[self.transactions[tx]], status=201)
        for key in ("subject", "start", "end"):
            if key not in body:
                return _error(400, "ErrorInvalidRequest", f"{key} is required.")
        event_id = "AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OABGAAAAAAAiQ8W967B7TKBjgx9rVEURBwAiIsqMbYjsT5e-T7KzowPTAAAAAAENAAAiIsqMbYjsT5e-T7KzowPTAAA" + str(next(self._ids))
        meeting_id = _b64(f"1*{uuid.uuid4()}*0**19:meeting_{event_id[-6:]}@thread.v2")
        thread = f"19%3ameeting_{uuid.uuid4().hex}%40thread.v2"
        join_url = f"https://teams.microsoft.com/l/meetup-join/{thread}/0?context=%7b%22Tid%22%3a%22{TENANT_ID}%22%7d"
        now = _iso(datetime.now(UTC))
        event = {
            "@odata.etag": f'W/"{uuid.uuid4().hex}"',
            "id": event_id,
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "iCalUId": "040000008200E00074C5B7101A82E00800000000" + uuid.uuid4().hex,
            "subject": body["subject"],
            "body": body.get("body", {"contentType": "html", "content": ""}),
            "start": body["start"],
            "end": body["end"],
            "location": body.get("location", {"displayName": ""}),
            "attendees": [{**a, "status": {"response": "none", "time": "0001-01-01T00:00:00Z"}}
                          for a in body.get("attendees", [])],
            "organizer": {"emailAddress": {"name": user.split("@")[0], "address": user}},
            "isOnlineMeeting": bool(body.get("isOnlineMeeting")),
            "onlineMeetingProvider": body.get("onlineMeetingProvider", "unknown"),
            "onlineMeeting": {"joinUrl": join_url} if body.get("isOnlineMeeting") else None,
            "allowNewTimeProposals": body.get("allowNewTimeProposals", True),
            "isCancelled": False,
            "transactionId": tx,
            "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
        }
        self.events[event_id] = event
        self.event_owner[event_id] = user
        if tx:
            self.transactions[tx] = event_id
        if body.get("isOnlineMeeting"):
            self.meetings[meeting_id] = {
                "id": meeting_id,
                "creationDateTime": now,
                "startDateTime": _iso(datetime.now(UTC)),
                "endDateTime": _iso(datetime.now(UTC) + timedelta(hours=1)),
                "joinWebUrl": join_url,
                "subject": body["subject"],
                "isEntryExitAnnounced": False,
                "allowedPresenters": "everyone",
                "participants": {"organizer": {"upn": user, "role": "presenter",
                                               "identity": {"user": {"id": str(uuid.uuid4()), "displayName": None}}},
                                 "attendees": []},
            }
        return self._json(path, "event", event, status=201)

    def _get_all_artifacts(self, path: str, kind: str, args: str, query: dict) -> Response:
        params = dict(re.findall(r"(\w+)=('(?:[^']|'')*'|[^,]+)", args))
        if "meetingOrganizerUserId" not in params:
            return _error(400, "BadRequest", "meetingOrganizerUserId is required.")
        start = params.get("startDateTime")
        end = params.get("endDateTime")
        source = self.recordings if kind == "getAllRecordings" else self.transcripts
        items = [i for items in source.values() for i in items
                 if (not start or i["createdDateTime"] >= start) and (not end or i["createdDateTime"] <= end)]
        return self._page(path, "callRecording" if kind == "getAllRecordings" else "callTranscript", items, query,
                          f"Collection(microsoft.graph.{'callRecording' if kind == 'getAllRecordings' else 'callTranscript'})")

    def _stream_mp4(self, size: int, hold: Hold | None = None) -> Response:
        def generate():
            sent = 0
            for part in mp4_chunks(size):
                if hold is not None and hold.after_bytes is not None and not hold.released.is_set() \
                        and sent + len(part) > hold.after_bytes:
                    head = part[: max(hold.after_bytes - sent, 0)]
                    if head:  # exactly after_bytes reach the client, then the stream stops
                        self.content_bytes_sent += len(head)
                        sent += len(head)
                        yield head
                    hold.reached.set()
                    hold.released.wait(120)
                    part = part[len(head):]
                self.content_bytes_sent += len(part)
                sent += len(part)
                yield part

        response = Response(generate(), mimetype="video/mp4", direct_passthrough=True)
        response.headers["Content-Length"] = str(size)
        return response

    def _create_subscription(self, body: dict, path: str) -> Response:
        for key in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if key not in (body or {}):
                return _error(400, "InvalidRequest", f"{key} is required.")
        token = "Validation: Testing client application reachability for subscription Request-Id: " + str(uuid.uuid4())
        started = time.monotonic()
        try:
            answer = requests.post(body["notificationUrl"], params={"validationToken": token}, timeout=10)
        except requests.RequestException as exc:
            return _error(400, "InvalidRequest", f"Subscription validation request failed: {exc}")
        elapsed = time.monotonic() - started
        if answer.status_code != 200 or answer.text != token or not answer.headers.get("Content-Type", "").startswith("text/plain") or elapsed > 10:
            return _error(400, "InvalidRequest", "Subscription validation request failed. Response must exactly match validationToken query parameter.")
        sub_id = str(uuid.uuid4())
        sub = {
            "id": sub_id,
            "resource": body["resource"],
            "applicationId": str(uuid.uuid4()),
            "changeType": body["changeType"],
            "clientState": body.get("clientState"),
            "notificationUrl": body["notificationUrl"],
            "expirationDateTime": body["expirationDateTime"],
            "creatorId": str(uuid.uuid4()),
            "latestSupportedTlsVersion": body.get("latestSupportedTlsVersion", "v1_2"),
            "notificationUrlAppId": None,
            "lifecycleNotificationUrl": None,
            "includeResourceData": False,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
        }
        self.subscriptions[sub_id] = sub
        return self._json(path, "subscription", sub, status=201)

    # ---------------------------------------------------------------- Viva Learning

    def register_learning_provider(self, display_name: str = "Manabi", *, activity_sync: bool = True) -> str:
        """What a tenant admin does with a delegated token (POST /employeeExperience/learningProviders):
        the provider's id is the registrationId Manabi is given."""
        registration_id = str(uuid.uuid4())
        logo = "https://manabi.example.lg.jp/static/img/favicon.svg"
        self.viva_providers[registration_id] = {
            "id": registration_id, "displayName": display_name, "isCourseActivitySyncEnabled": activity_sync,
            "loginWebUrl": "https://manabi.example.lg.jp/auth/login", "longLogoWebUrlForDarkTheme": logo,
            "longLogoWebUrlForLightTheme": logo, "squareLogoWebUrlForDarkTheme": logo,
            "squareLogoWebUrlForLightTheme": logo}
        self.viva_contents[registration_id] = {}
        self.viva_activities[registration_id] = {}
        return registration_id

    def viva_activity(self, registration_id: str, external_id: str) -> dict | None:
        return next((a for a in self.viva_activities[registration_id].values()
                     if a.get("externalcourseActivityId") == external_id), None)

    _VIVA = r"/employeeExperience/learningProviders/([^/(]+)"
    _ACTIVITY_TYPES = {"#microsoft.graph.learningAssignment": "learningAssignment",
                       "#microsoft.graph.learningSelfInitiatedCourse": "learningSelfInitiatedCourse"}

    def _viva_route(self, request, path: str, query: dict, body, entry: LoggedRequest) -> Response | None:
        method = request.method
        m = re.fullmatch(r"/employeeExperience/learningCourseActivities/([^/]+)", path)
        if m and method == "GET":
            found = next((a for acts in self.viva_activities.values() for a in acts.values() if a["id"] == m.group(1)), None)
            if found is None:
                return _error(404, "NotFound", f"The requested assignment {m.group(1)} doesn't exist.")
            return self._json(path, "learningCourseActivity", found)
        m = re.match(self._VIVA + r"(/.*)?$", path)
        if not m:
            return None
        registration_id, rest = m.group(1), m.group(2) or ""
        if registration_id not in self.viva_providers:
            return _error(400, "BadRequest", "There was an issue with your request. Make sure the registrationId you "
                                             "entered is valid or registered for your tenant")
        contents = self.viva_contents[registration_id]
        activities = self.viva_activities[registration_id]
        if rest == "/learningContents" and method == "GET":
            return self._page(path, "learningContent", list(contents.values()), query,
                              f"learningProviders('{registration_id}')/learningContents")
        cm = re.fullmatch(r"/learningContents\(externalId='((?:[^']|'')*)'\)", rest)
        if cm and method == "PATCH":
            entry.graph_type = "learningContent"
            return self._upsert_content(path, registration_id, cm.group(1).replace("''", "'"), body)
        if cm and method == "GET":
            item = contents.get(cm.group(1).replace("''", "'"))
            return self._json(path, "learningContent", item) if item else _error(404, "NotFound", "Learning content not found.")
        cm = re.fullmatch(r"/learningContents/([^/]+)", rest)
        if cm and method == "DELETE":
            external = next((k for k, v in contents.items() if v["id"] == cm.group(1)), None)
            if external is None:
                return _error(404, "NotFound", "Learning content not found.")
            del contents[external]
            return Response(status=204)
        if rest == "/learningCourseActivities" and method == "POST":
            return self._create_activity(path, registration_id, body, entry)
        am = re.fullmatch(r"/learningCourseActivities\(externalCourseActivityId=('?)(.*)\1\)", rest, re.IGNORECASE)
        if am and method == "GET":
            found = self.viva_activity(registration_id, am.group(2).replace("''", "'"))
            if found is None:
                return _error(404, "NotFound", f"The requested assignment {am.group(2)} doesn't exist.")
            return self._json(path, "learningCourseActivity", found)
        am = re.fullmatch(r"/learningCourseActivities/([^/]+)", rest)
        if am and method in ("PATCH", "DELETE"):
            activity = activities.get(am.group(1))
            if activity is None:
                return _error(404, "NotFound", f"The requested assignment {am.group(1)} doesn't exist.")
            if method == "DELETE":
                del activities[am.group(1)]
                return Response(status=204)
            entry.graph_type = self._ACTIVITY_TYPES.get((body or {}).get("@odata.type", ""), "learningCourseActivity")
            if not isinstance(body, dict) or body.get("@odata.type") != activity["@odata.type"]:
                return _error(400, "BadRequest", "Input Field @odata.type is invalid")
            if body.get("status") not in ("notStarted", "inProgress", "completed"):
                return _error(400, "BadRequest", "Input Field status is required")
            activity.update({k: v for k, v in body.items() if k not in ("id", "learnerUserId", "externalcourseActivityId")})
            return Response(status=204)
        return _error(404, "UnknownError", f"No route for {method} {path}")

    def _upsert_content(self, path: str, registration_id: str, external_id: str, body) -> Response:
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "A JSON body is required.")
        contents = self.viva_contents[registration_id]
        existing = contents.get(external_id)
        for key in ("title", "contentWebUrl", "languageTag"):
            if not (body.get(key) or (existing or {}).get(key)):
                return _error(400, "BadRequest", f"Input Field {key} is required")
        if "duration" in body and not re.fullmatch(r"P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?", body["duration"] or "P"):
            return _error(400, "BadRequest", "Input Field duration is invalid")
        now = _iso(datetime.now(UTC))
        item = existing or {"id": str(uuid.uuid4()), "externalId": external_id, "createdDateTime": now,
                            "isActive": True, "isPremium": False, "isSearchable": True, "additionalTags": [],
                            "contributors": [], "skillTags": [], "numberOfPages": None, "level": None}
        item.update({k: v for k, v in body.items() if k not in ("id", "externalId")})
        item["lastModifiedDateTime"] = now
        contents[external_id] = item
        return self._json(path, "learningContent", {
            "@odata.context": f"{self.base_url}/$metadata#learningProviders('{registration_id}')/learningContents/$entity",
            **item}, status=202)

    def _create_activity(self, path: str, registration_id: str, body, entry: LoggedRequest) -> Response:
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "A JSON body is required.")
        graph_type = self._ACTIVITY_TYPES.get(body.get("@odata.type", ""))
        entry.graph_type = graph_type or "learningCourseActivity"
        if graph_type is None:
            return _error(400, "BadRequest", "Input Field @odata.type is invalid")
        if not self.viva_providers[registration_id]["isCourseActivitySyncEnabled"]:
            return _error(400, "BadRequest", "This provider isn't enabled for the given tenant.")
        required = ["learnerUserId", "learningContentId", "status"] + (["assignmentType"] if graph_type == "learningAssignment" else [])
        for key in required:
            if not body.get(key):
                return _error(400, "BadRequest", f"Input Field {key} is required")
        if body["status"] not in ("notStarted", "inProgress", "completed") or \
                (graph_type == "learningSelfInitiatedCourse" and body["status"] == "notStarted"):
            return _error(400, "BadRequest", "Input Field status is invalid")
        if not any(c["id"] == body["learningContentId"] for c in self.viva_contents[registration_id].values()):
            return _error(403, "Forbidden", "The provider is not valid to create course activity for the given learning content")
        external = body.get("externalcourseActivityId")
        if external and self.viva_activity(registration_id, external) is not None:
            return _error(409, "Conflict", f"A course activity with externalcourseActivityId {external} already exists.")
        learner = body["learnerUserId"]
        activity = {"id": f"{learner}:{uuid.uuid4()}", "learningProviderId": registration_id, "completedDateTime": None,
                    "completionPercentage": None, **body}
        self.viva_activities[registration_id][activity["id"]] = activity
        return self._json(path, "learningCourseActivity", {
            "@odata.context": f"{self.base_url}/$metadata#learningProviders('{registration_id}')/learningCourseActivities"
                              f"('{activity['id']}')$entity", **activity}, status=201)
