"""Shared helpers for the benchmark scripts in ``bench/``.

The API is small on purpose; everything else a bench needs is plain Python.

Databases and the app
    ``fresh_database(prefix="lms_bench")``  context manager: CREATE a private PostgreSQL
        database (admin URL from ``BENCH_PG_ADMIN_URL``, default
        ``postgresql+psycopg://root@127.0.0.1:5432/postgres``), yield its SQLAlchemy URL,
        DROP it afterwards (even on error / Ctrl-C).
    ``bench_app(database_url)``  context manager: a Flask app for that database with an app
        context pushed; on first use creates the schema (``pg_trgm`` + ``db.create_all()``)
        and loads the 63 municipalities. Use it to generate data (bulk inserts with
        ``db.session.execute(insert(Model), rows)``).
    ``Gunicorn(database_url, workers=2, env=None, app="wsgi:app")``  context manager: starts
        ``gunicorn wsgi:app`` (sync workers, as in production) on a free loopback port with
        production's settings where the bench allows them: the JSON request log on (written
        to a file under /tmp, as a log collector would read it), rate limits ON and Redis
        (``BENCH_REDIS_URL``, default db 14, emptied before and after) for the rate-limit
        counters and the job queue; ``LMS_ENV=development`` only because the benches sign
        their learners in with the demo sign-in (``LMS_DEMO_LOGIN=1``), which production
        refuses. Waits for ``/healthz``; ``.base_url`` is ``http://127.0.0.1:PORT``; stops it
        on exit. ``app="bench.bare_app:app"`` runs the bare one-file Flask app instead.
    ``wrk_per_s(base_url, path="/hello", seconds=5, connections=64) -> float``  requests per
        second of ``path`` measured with ``wrk`` (a C client: its own cost is small).

HTTP (a small asyncio client: one TCP connection per request, as gunicorn's sync workers
close the connection after every response anyway)
    ``Agent()``  a browser-like cookie jar (``agent.cookies`` dict). Give every simulated
        user its own Agent; requests made with it send and update its cookies.
    ``Req(method, path, form=None, agent=None, headers=None)``  one request to make.
    ``request(base_url, method, path, *, agent=None, form=None, headers=None) -> Response``
        one synchronous request (``Response.status``, ``.headers`` (lower-case keys, last
        value wins; ``.set_cookies`` keeps all), ``.body`` bytes, ``.text``, ``.elapsed_ms``).
    ``csrf_token(html) -> str``  the value of the first ``name="csrf_token"`` input.
    ``sign_in_demo(base_url, agent, user_id)``  signs ``agent`` in through the demo sign-in
        (GET /auth/demo for the CSRF token, POST it); raises RuntimeError if refused.
    ``run_load(base_url, requests, concurrency=64, ok=(200,), keep_responses=False)
        -> LoadResult``  fires the requests through ``concurrency`` concurrent connections
        (each request uses its own ``agent`` when it has one) and measures them.
        ``LoadResult``: ``count``, ``ok``, ``errors``, ``statuses`` (Counter),
        ``elapsed_s``, ``per_s``, ``latencies_ms``, ``p50_ms``, ``p99_ms``,
        ``error_samples`` (up to 5 strings), ``responses`` (in request order, when kept).
    ``measure_hello(base_url, n=4000, concurrency=64) -> LoadResult``  GET /hello ``n``
        times (a view that touches neither the database nor the session).

CPU accounting (meaningful even when other work shares the machine)
    ``Gunicorn.pids()``  the master and worker process ids.
    ``postgres_pids(database_name)``  the PostgreSQL backends serving that database.
    ``cpu_seconds(pids) -> float``  user + system CPU time used so far by those processes
        (Linux /proc); take it before and after a run and divide by the request count.

Numbers and output
    ``percentile(values, pct) -> float``  linear interpolation between closest ranks.
    ``emit(result: dict)``  prints one JSON object on one line (the bench's output).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://root@127.0.0.1:5432/postgres")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
USER_AGENT = "manabi-bench"  # every request of the benches: one browser's, as a real user's


def _flush_redis(url: str | None) -> None:
    """Empty the bench's own Redis database (rate-limit counters, queued jobs of a past run)."""
    if not url:
        return
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# ---------------------------------------------------------------- databases and the app


@contextmanager
def fresh_database(prefix: str = "lms_bench"):
    """Create a private PostgreSQL database, yield its URL, drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(PG_ADMIN_URL)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def bench_app(database_url: str):
    """A Flask app bound to ``database_url`` with its context pushed; the schema and the
    municipalities are created when missing."""
    from sqlalchemy import inspect, text

    from lms import create_app
    from lms.extensions import db
    from lms.municipalities.services import load_municipalities

    app = create_app({"LMS_ENV": "development", "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_ENABLED": False})
    with app.app_context():
        if not inspect(db.engine).has_table("municipality"):
            if db.engine.dialect.name == "postgresql":
                with db.engine.begin() as conn:
                    conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            db.create_all()
            load_municipalities()
            db.session.commit()
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """``with Gunicorn(url) as server: server.base_url`` — the app under gunicorn."""

    def __init__(self, database_url: str, workers: int = 2, env: dict | None = None, app: str = "wsgi:app"):
        self.database_url = database_url
        self.workers = workers
        self.app = app
        self.log_path = Path(f"/tmp/lms_bench_gunicorn_{os.getpid()}_{uuid.uuid4().hex[:6]}.log")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LMS_ENV": "development",
            "LMS_DEMO_LOGIN": "1",
            "RATELIMIT_ENABLED": "1",
            # As in production: one JSON line per request.
            "LMS_LOG_FORMAT": "json",
            "LMS_LOG_REQUESTS": "1",
            # As in production: rate-limit counters (shared by the workers) and the job
            # queue in Redis. A database of its own, emptied before and after the run.
            "REDIS_URL": BENCH_REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        _flush_redis(self.env.get("REDIS_URL"))
        gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
        cmd = [
            str(gunicorn) if gunicorn.exists() else "gunicorn",
            "--workers", str(self.workers),
            "--worker-class", "sync",
            "--bind", f"127.0.0.1:{self.port}",
            "--backlog", "2048",
            "--log-level", "warning",
            self.app,
        ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            try:
                if request(self.base_url, "GET", "/healthz").status == 200:
                    self._settle(deadline)
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("gunicorn did not answer /healthz within 60 s")

    def _settle(self, deadline: float) -> None:
        """Wait until every worker has started: the first one answering /healthz does not mean
        the others have (each compiles the templates first, gunicorn.conf.py's post_worker_init),
        and their start must not be counted in what a bench measures. Started = all workers
        there and the server idle (under 20 ms of CPU in 300 ms)."""
        while time.monotonic() < deadline:
            pids = self.pids()
            before = cpu_seconds(pids)
            time.sleep(0.3)
            if len(pids) > self.workers and cpu_seconds(pids) - before < 0.02:
                return

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            workers = [int(p) for p in children.read_text().split()]
        except OSError:
            workers = []
        return [self.proc.pid, *workers]

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.log_path.unlink(missing_ok=True)
        _flush_redis(self.env.get("REDIS_URL"))


# ---------------------------------------------------------------- HTTP


class Agent:
    """A cookie jar standing for one browser."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def absorb(self, set_cookies: list[str]) -> None:
        for raw in set_cookies:
            pair = raw.split(";", 1)[0]
            name, _, value = pair.partition("=")
            name = name.strip()
            expired = "max-age=0" in raw.lower().replace(" ", "") or "expires=thu, 01 jan 1970" in raw.lower()
            if expired or value == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value.strip()


@dataclass
class Req:
    method: str
    path: str
    form: dict | None = None
    agent: Agent | None = None
    headers: dict | None = None
    source: str | None = None  # the client's address (a loopback one of its own), if not 127.0.0.1
    body: bytes | None = None  # a raw body (with its Content-Type in ``headers``) instead of a form


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    set_cookies: list[str]
    body: bytes
    elapsed_ms: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def _fetch(host: str, port: int, req: Req) -> Response:
    body = req.body or b""
    lines = [f"{req.method} {req.path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close", f"User-Agent: {USER_AGENT}"]
    if req.form is not None and req.body is None:
        body = urlencode(req.form).encode()
        lines.append("Content-Type: application/x-www-form-urlencoded")
    if req.method not in ("GET", "HEAD") or body:
        lines.append(f"Content-Length: {len(body)}")
    if req.agent is not None and req.agent.cookies:
        lines.append(f"Cookie: {req.agent.cookie_header()}")
    for k, v in (req.headers or {}).items():
        lines.append(f"{k}: {v}")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port, local_addr=(req.source, 0) if req.source else None)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionError(f"bad response: {exc.partial[:80]!r}") from exc
        head_lines = head[:-4].decode("latin-1").split("\r\n")
        if not head_lines[0].startswith("HTTP/"):
            raise ConnectionError(f"bad response: {head[:80]!r}")
        status = int(head_lines[0].split()[1])
        headers: dict[str, str] = {}
        set_cookies: list[str] = []
        for line in head_lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            if name == "set-cookie":
                set_cookies.append(value)
            headers[name] = value
        # Like a browser or a reverse proxy, the client is done (and closes) once the
        # response is complete, without waiting for the server to close first.
        if req.method == "HEAD" or status in (204, 304) or status < 200:
            payload = b""
        elif "content-length" in headers and "transfer-encoding" not in headers:
            payload = await reader.readexactly(int(headers["content-length"]))
        else:
            payload = await reader.read(-1)
    finally:
        writer.close()
    elapsed = (time.perf_counter() - started) * 1000
    if headers.get("transfer-encoding", "").lower() == "chunked":
        payload = _dechunk(payload)
    if req.agent is not None and set_cookies:
        req.agent.absorb(set_cookies)
    return Response(status, headers, set_cookies, payload, elapsed)


fetch = _fetch  # one request inside the caller's event loop (for benches that chain requests)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def request(base_url: str, method: str, path: str, *, agent: Agent | None = None, form: dict | None = None,
            headers: dict | None = None) -> Response:
    host, port = _host_port(base_url)
    return asyncio.run(_fetch(host, port, Req(method, path, form, agent, headers)))


_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(html: str) -> str:
    match = _CSRF_RE.search(html)
    if not match:
        raise ValueError("no csrf_token input in the page")
    return match.group(1) or match.group(2)


def sign_in_demo(base_url: str, agent: Agent, user_id: int) -> None:
    page = request(base_url, "GET", "/auth/demo", agent=agent)
    if page.status != 200:
        raise RuntimeError(f"GET /auth/demo answered {page.status}")
    answer = request(base_url, "POST", "/auth/demo", agent=agent,
                     form={"csrf_token": csrf_token(page.text), "user_id": str(user_id), "next": ""})
    if answer.status not in (302, 303):
        raise RuntimeError(f"demo sign-in of user {user_id} answered {answer.status}")


@dataclass
class LoadResult:
    count: int = 0
    ok: int = 0
    errors: int = 0
    statuses: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    responses: list[Response | None] | None = None

    @property
    def per_s(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


def run_load(base_url: str, requests: Sequence[Req] | Iterable[Req], concurrency: int = 64,
             ok: tuple[int, ...] = (200,), keep_responses: bool = False) -> LoadResult:
    """Make every request through ``concurrency`` concurrent connections; measure them."""
    items = list(requests)
    host, port = _host_port(base_url)
    result = LoadResult(count=len(items))
    if keep_responses:
        result.responses = [None] * len(items)

    async def main() -> None:
        queue = iter(enumerate(items))

        async def worker() -> None:
            for index, req in queue:
                try:
                    response = await _fetch(host, port, req)
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                    result.errors += 1
                    result.statuses["exception"] += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(f"{req.method} {req.path}: {exc!r}")
                    continue
                result.latencies_ms.append(response.elapsed_ms)
                result.statuses[response.status] += 1
                if response.status in ok:
                    result.ok += 1
                else:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(f"{req.method} {req.path}: HTTP {response.status}")
                if keep_responses:
                    result.responses[index] = response

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.elapsed_s = time.perf_counter() - started

    asyncio.run(main())
    return result


def measure_hello(base_url: str, n: int = 4000, concurrency: int = 64) -> LoadResult:
    return run_load(base_url, [Req("GET", "/hello") for _ in range(n)], concurrency=concurrency)


def wrk_per_s(base_url: str, path: str = "/hello", seconds: int = 5, connections: int = 64) -> float:
    """Requests per second of ``path`` measured with wrk (2 threads)."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", base_url + path],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s*([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk printed no rate: {out[-300:]}")
    return float(match.group(1))


# ---------------------------------------------------------------- CPU accounting


def cpu_seconds(pids: Iterable[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process has gone
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def postgres_pids(database_name: str) -> list[int]:
    """Backends whose title names ``database_name`` (``postgres: 15/main: user db host(port) …``)."""
    pids = []
    needle = f" {database_name} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"postgres:") and needle in title:
            pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------- numbers and output


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def emit(result: dict) -> None:
    print(json.dumps(result, ensure_ascii=False, sort_keys=False), flush=True)


# As deploy/manabi-worker.service runs the worker (tests/ops/test_deploy_files.py keeps them equal).
WORKER_NICE = 10


class Worker:
    """``with Worker(env): ...`` — the background worker (huey, one thread, no periodic tasks),
    at the CPU priority production gives it (deploy/manabi-worker.service: ``Nice=10``)."""

    def __init__(self, env: dict):
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Worker:
        flask = ROOT / ".venv" / "bin" / "flask"
        self.proc = subprocess.Popen(
            [str(flask) if flask.exists() else "flask", "--app", "wsgi", "lms", "worker", "--workers", "1",
             "--no-periodic"], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
            preexec_fn=lambda: os.nice(WORKER_NICE))
        time.sleep(1.0)
        if self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.proc.returncode}")
        return self

    def drained(self, timeout: float = 600) -> float:
        """Seconds until the job queue (in Redis) is empty and the last job done."""
        from huey import RedisHuey

        queue = RedisHuey("manabi", url=self.env["REDIS_URL"])
        started = time.monotonic()
        while queue.pending_count() and time.monotonic() - started < timeout:
            time.sleep(0.05)
        time.sleep(0.2)  # (the job taken last)
        return time.monotonic() - started

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
