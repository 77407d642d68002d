"""Benchmark: archive streaming through the production set-up against nginx serving the file directly.

Starts, against a fresh PostgreSQL database (dropped at the end):
  * gunicorn (sync workers, as in production) with signed media links on (LMS_MEDIA_LINKS=1,
    a random LMS_MEDIA_LINK_SECRET),
  * nginx (Debian's) with two servers: APP is the production site of docs/nginx.conf — the
    app behind a proxy, plus the signed-link location that validates each range request's link
    (signature, expiry, viewer cookie) and serves the file; DIRECT serves the same file from a
    plain location (no check at all).
Creates a 1 GiB archive file (random bytes, MP4 header) and 50 learners of an eligible
municipality, each signed in with their own session (one per viewer, like 50 browsers), reads
the file once so it sits in the page cache, then runs wrk (Debian's) with a Lua script doing
identical 2 MiB ranges at random offsets from 50 connections: APP, DIRECT, alternating three
times. Each APP run starts with the 50 viewers asking the app for their playback link (the
access check; GET /archives/<id>/files/<id>/link, concurrently) and that time counts in the
run: app_mb_s = bytes / (link phase + wrk time). wrk then sends each viewer's ranges with that
viewer's link and cookie (round-robin over the 50). While each APP run streams, the catalogue
page (GET /courses, five variants) is requested through the same nginx at a paced rate
(--probe-rate, default 10 requests/s, open loop; 0 = four clients back to back) by a
signed-in user, and its latency is recorded (from the end of the link phase to the end of
the run).

Prints one JSON object: app_mb_s, nginx_mb_s (medians, MiB/s), ratio, catalogue_p99_ms, and
details. Targets: ratio >= 0.8, catalogue_p99_ms <= 300.

    .venv/bin/python bench/stream.py [--size-mb 1024] [--seconds 10] [--connections 50] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Agent,
    Gunicorn,
    Req,
    _fetch,
    bench_app,
    cpu_seconds,
    emit,
    free_port,
    fresh_database,
    percentile,
    request,
    run_load,
    sign_in_demo,
)

RANGE = 2 * 1024 * 1024
ACCEL_PREFIX = "/_archive_files"

WRK_LUA = r"""
local size = tonumber(os.getenv("BENCH_SIZE"))
local chunk = tonumber(os.getenv("BENCH_RANGE"))
-- BENCH_VIEWERS: a file of "path<TAB>cookie" lines, one per viewer (one line without a
-- cookie for DIRECT); requests go round-robin over them.
local viewers = {}
for line in io.lines(os.getenv("BENCH_VIEWERS")) do
  local path, cookie = line:match("^([^	]*)	?(.*)$")
  viewers[#viewers + 1] = {path, cookie}
end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
local turn = 0
function init(args)
  math.randomseed(os.time() * 1000 + seed)
  turn = seed
end
request = function()
  local blocks = math.floor((size - chunk) / 4096)
  local offset = math.random(0, blocks) * 4096
  turn = turn % #viewers + 1
  local viewer = viewers[turn]
  local headers = {["Range"] = "bytes=" .. offset .. "-" .. (offset + chunk - 1)}
  if viewer[2] ~= "" then headers["Cookie"] = viewer[2] end
  return wrk.format("GET", viewer[1], headers)
end
local bad = 0
response = function(status, headers, body)
  if status ~= 206 then bad = bad + 1 end
end
function done(summary, latency, requests)
  io.write(string.format('WRKJSON {"bytes": %d, "duration_us": %d, "requests": %d, "errors": %d, ' ..
    '"status_errors": %d, "p99_ms": %.2f}\n', summary.bytes, summary.duration, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(99) / 1000))
end
"""

NGINX_CONF = """
worker_processes 2;
user root;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    upstream app {{ server 127.0.0.1:{app_port}; }}
    server {{
        listen 127.0.0.1:{front_port};
{media_location}
        location {accel}/ {{
            internal;
            alias {objects}/;
        }}
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_pass http://app;
        }}
    }}
    server {{
        listen 127.0.0.1:{direct_port};
        location /direct/ {{
            alias {objects}/;
        }}
    }}
}}
"""


def media_location(objects: Path, secret: str) -> str:
    """The signed-link location of docs/nginx.conf, with this run's storage and secret."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "nginx.conf").read_text()
    start = text.index('    location ~ "^/archives/media/')
    end = text.index("\n    }\n", start) + len("\n    }\n")
    block = (text[start:end].replace("/srv/manabi/archives/objects/", f"{objects}/")
             .replace("CHANGE-ME-LMS_MEDIA_LINK_SECRET", secret))
    return block


def generate(database_url: str, storage_dir: Path, size: int, viewers: int) -> dict:
    """A published archive with one 1 GiB video file, ``viewers`` learners, 200 courses."""
    from sqlalchemy import insert, select

    from lms.archives.models import READY, VIDEO, Archive, ArchiveFile
    from lms.auth.models import User
    from lms.common.timeutil import utcnow
    from lms.courses.models import PUBLISHED, Course, TrainingSession
    from lms.courses.search import normalise_for_search
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import StaffMember

    key = f"archives/1/{uuid.uuid4().hex}"
    path = storage_dir / "objects" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    block = os.urandom(8 * 1024 * 1024)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            data = block[: min(len(block), size - written)]
            if written == 0:
                data = b"\x00\x00\x00\x20ftypisom" + data[12:]
            fh.write(data)
            digest.update(data)
            written += len(data)
    os.chmod(path, 0o644)

    with bench_app(database_url):
        now = utcnow().replace(microsecond=0)
        chiyoda = db.session.scalar(select(Municipality).where(Municipality.code == "131016"))
        learners = []
        for n in range(1, viewers + 1):
            learner = User(tenant_id="bench-tenant", object_id=f"bench-viewer-{n}", display_name=f"ベンチ 視聴者{n}",
                           email=f"bench.viewer{n}@example.lg.jp", municipality_id=chiyoda.id, is_demo=True)
            db.session.add(learner)
            db.session.flush()
            db.session.add(StaffMember(municipality_id=chiyoda.id, user_id=learner.id,
                                       employee_number=f"S{n:07d}", full_name=f"ベンチ 視聴者{n}",
                                       sign_in_name=learner.email, email=learner.email))
            learners.append(learner.id)
        courses = [{
            "id": n, "title": f"Teams 活用研修 第{n}期", "summary": "録画あり", "description_md": "説明",
            "eligible_all": True, "status": PUBLISHED, "published_at": now - timedelta(minutes=n),
            "search_text": normalise_for_search(f"Teams 活用研修 第{n}期 録画あり"), "completion_mode": "either",
            "attendance_threshold_pct": 75, "viewing_threshold_pct": 90, "organizer_mailbox": "",
            "created_at": now, "updated_at": now, "requires_approval": False, "target_audience": "全職員",
        } for n in range(1, 201)]
        db.session.execute(insert(Course), courses)
        db.session.execute(insert(TrainingSession), [{
            "course_id": c["id"], "title": f"第{k}回", "starts_at": now + timedelta(days=k * 7, hours=c["id"] % 5),
            "ends_at": now + timedelta(days=k * 7, hours=c["id"] % 5 + 2), "delivery": "teams", "location": "",
            "join_url": "", "capacity": 50, "confirmed_count": 0, "status": "scheduled", "revision": 1,
            "enroll_opens_at": now - timedelta(days=10), "enroll_closes_at": now + timedelta(days=k * 7 - 1),
            "cancel_deadline": now + timedelta(days=k * 7 - 1), "created_at": now, "updated_at": now,
        } for c in courses for k in (1, 2, 3)])
        archive = Archive(course_id=1, title="第1期 録画", description="", status=PUBLISHED,
                          audience="eligible", published_at=now)
        db.session.add(archive)
        db.session.flush()
        archive_file = ArchiveFile(archive_id=archive.id, kind=VIDEO, filename="recording.mp4",
                                   content_type="video/mp4", size_bytes=size, sha256=digest.hexdigest(),
                                   storage_key=key, status=READY, completed_at=now, duration_seconds=3600,
                                   duration_checked_at=now)
        db.session.add(archive_file)
        db.session.commit()
        return {"learner_ids": learners, "archive_id": archive.id, "file_id": archive_file.id, "key": key}


def run_wrk(url_base: str, viewers: Path, seconds: int, connections: int, size: int, lua: Path) -> dict:
    env = {**os.environ, "BENCH_SIZE": str(size), "BENCH_RANGE": str(RANGE), "BENCH_VIEWERS": str(viewers)}
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s", str(lua), url_base],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    result = json.loads(line[len("WRKJSON "):])
    result["mb_s"] = result["bytes"] / (result["duration_us"] / 1e6) / (1024 * 1024)
    return result


def obtain_links(front_url: str, agents: list[Agent], link_path: str) -> tuple[list[tuple[str, str]], float]:
    """Every viewer asks the app for their playback link at once (the access check happens
    here); returns [(link, that viewer's Cookie header)] and the seconds it took."""
    host, port = urlsplit(front_url).hostname, urlsplit(front_url).port

    async def all_of_them():
        return await asyncio.gather(*(
            _fetch(host, port, Req("GET", link_path, agent=agent, headers={"Accept": "application/json"}))
            for agent in agents))

    started = time.perf_counter()
    answers = asyncio.run(all_of_them())
    elapsed = time.perf_counter() - started
    pairs = []
    for agent, answer in zip(agents, answers, strict=True):
        if answer.status != 200:
            raise SystemExit(f"link refused to a viewer: {answer.status} {answer.text[:200]}")
        pairs.append((json.loads(answer.body)["url"], agent.cookie_header()))
    return pairs, elapsed


def process_tree(pid_file: Path) -> list[int]:
    """nginx's master and workers (CPU accounting: load-independent, unlike wall-clock rates)."""
    try:
        master = int(pid_file.read_text().split()[0])
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return []
    return [master, *map(int, children)]


def write_viewers(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{url}\t{cookie}\n" for url, cookie in pairs))
    return path


class CatalogueProbe(threading.Thread):
    """Requests the catalogue while streaming runs and records its latency.

    ``rate`` > 0: paced (open loop), ``rate`` requests per second whatever the answers' speed —
    a few users browsing while the videos stream; the probe measures latency without adding a
    saturating load of its own (and a slow answer does not delay the next request, so slowness is
    not hidden). ``rate`` = 0: closed loop, ``concurrency`` clients back to back (a load test
    rather than a probe: it competes with the streams for the CPU)."""

    PAGES = ["/courses", "/courses?q=Teams", "/courses?page=2", "/courses?" + urlencode({"q": "活用研修"}),
             "/courses?page=3"]

    def __init__(self, base_url: str, agent: Agent, rate: float = 10.0, concurrency: int = 4):
        super().__init__(daemon=True)
        self.base_url, self.agent, self.rate, self.concurrency = base_url, agent, rate, concurrency
        self.latencies: list[float] = []
        self.errors = 0
        self.samples: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        if self.rate <= 0:
            while not self.stop.is_set():
                result = run_load(self.base_url, [Req("GET", p, agent=self.agent) for p in self.PAGES * 2],
                                  self.concurrency)
                self.latencies.extend(result.latencies_ms)
                self.errors += result.errors
                self.samples = (self.samples + result.error_samples)[:5]
            return
        asyncio.run(self._paced())

    async def _paced(self) -> None:
        host, port = urlsplit(self.base_url).hostname, urlsplit(self.base_url).port
        loop = asyncio.get_running_loop()

        async def one(path: str) -> None:
            started = time.perf_counter()
            try:
                answer = await _fetch(host, port, Req("GET", path, agent=self.agent))
            except OSError as exc:
                self.errors += 1
                self.samples = (self.samples + [f"GET {path}: {exc}"])[:5]
                return
            self.latencies.append((time.perf_counter() - started) * 1000)
            if answer.status != 200:
                self.errors += 1
                self.samples = (self.samples + [f"GET {path}: HTTP {answer.status}"])[:5]

        tasks, due, n = set(), loop.time(), 0
        while not self.stop.is_set():
            task = asyncio.create_task(one(self.PAGES[n % len(self.PAGES)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            due += 1 / self.rate
            await asyncio.sleep(max(0.0, due - loop.time()))
        if tasks:
            await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probe-rate", type=float, default=10.0,
                        help="catalogue requests per second while streaming (0: closed loop, 4 clients)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is required (apt-get install wrk nginx-light)")
    size = args.size_mb * 1024 * 1024
    work = Path(tempfile.mkdtemp(prefix="lms-bench-stream-"))
    os.chmod(work, 0o755)
    storage = work / "storage"
    run_dir = work / "nginx"
    run_dir.mkdir()
    lua = work / "ranges.lua"
    lua.write_text(WRK_LUA)
    nginx = None
    try:
        with fresh_database("lms_bench_stream") as url:
            data = generate(url, storage, size, args.connections)
            secret = secrets.token_urlsafe(32)
            env = {"LMS_STORAGE_DIR": str(storage), "LMS_ACCEL_REDIRECT_PREFIX": ACCEL_PREFIX,
                   "LMS_SESSION_IDLE_MINUTES": "600", "LMS_MEDIA_LINKS": "1", "LMS_MEDIA_LINK_SECRET": secret,
                   "LMS_MEDIA_LINK_TTL": str(max(60, 2 * args.seconds))}
            with Gunicorn(url, workers=args.workers, env=env) as server:
                front, direct = free_port(), free_port()
                conf = run_dir / "nginx.conf"
                conf.write_text(NGINX_CONF.format(run=run_dir, app_port=server.port, front_port=front,
                                                  direct_port=direct, accel=ACCEL_PREFIX,
                                                  objects=storage / "objects",
                                                  media_location=media_location(storage / "objects", secret)))
                nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run_dir), "-g", "daemon off;"])
                front_url, direct_url = f"http://127.0.0.1:{front}", f"http://127.0.0.1:{direct}"
                _wait(front_url + "/healthz")
                agents = []
                for learner_id in data["learner_ids"]:  # 50 browsers, 50 sessions
                    agent = Agent()
                    sign_in_demo(front_url, agent, learner_id)
                    agents.append(agent)
                probe_agent = Agent()  # the catalogue's user: a session of their own
                sign_in_demo(front_url, probe_agent, data["learner_ids"][0])
                link_path = f"/archives/{data['archive_id']}/files/{data['file_id']}/link"
                pairs, _seconds = obtain_links(front_url, agents, link_path)
                # Correctness first: a viewer's link answers 206 with the right bytes through
                # nginx; without the viewer's cookie, or with another viewer's, it is refused.
                first_url, first_cookie = pairs[0]
                check = request(front_url, "GET", first_url, headers={"Range": "bytes=4096-8191",
                                                                      "Cookie": first_cookie})
                with open(storage / "objects" / data["key"], "rb") as fh:
                    fh.seek(4096)
                    expected = fh.read(4096)
                if check.status != 206 or check.body != expected:
                    raise SystemExit(f"app range request wrong: {check.status}")
                anonymous = request(front_url, "GET", first_url, headers={"Range": "bytes=0-9"})
                foreign = request(front_url, "GET", first_url, headers={"Range": "bytes=0-9", "Cookie": pairs[1][1]})
                unsigned = request(front_url, "GET", first_url.split("?")[0], headers={"Range": "bytes=0-9",
                                                                                      "Cookie": first_cookie})
                if 206 in (anonymous.status, foreign.status, unsigned.status):
                    raise SystemExit("a range request without a valid link and cookie was served")
                if request(front_url, "GET", link_path, headers={"Accept": "application/json"}).status == 200:
                    raise SystemExit("an anonymous request obtained a link")
                # Page cache: read the file once.
                with open(storage / "objects" / data["key"], "rb") as fh:
                    while fh.read(16 * 1024 * 1024):
                        pass
                direct_viewers = write_viewers(work / "direct.tsv", [(f"/direct/{data['key']}", "")])
                run_wrk(front_url, write_viewers(work / "app.tsv", pairs), 2, args.connections, size, lua)  # warm-up
                run_wrk(direct_url, direct_viewers, 2, args.connections, size, lua)
                app_runs, nginx_runs, latencies, probe_errors, samples = [], [], [], 0, []
                for _ in range(args.rounds):
                    app_cpu = cpu_seconds(server.pids())
                    pairs, link_seconds = obtain_links(front_url, agents, link_path)
                    app_cpu = cpu_seconds(server.pids()) - app_cpu
                    # The catalogue is measured while the streams run (not during the burst of
                    # 50 simultaneous link requests, which real viewers spread over time).
                    probe = CatalogueProbe(front_url, probe_agent, rate=args.probe_rate)
                    probe.start()
                    nginx_cpu = cpu_seconds(process_tree(run_dir / "nginx.pid"))
                    run = run_wrk(front_url, write_viewers(work / "app.tsv", pairs), args.seconds, args.connections,
                                  size, lua)
                    run["nginx_cpu"] = cpu_seconds(process_tree(run_dir / "nginx.pid")) - nginx_cpu
                    run["link_seconds"], run["link_cpu"] = link_seconds, app_cpu
                    run["mb_s"] = run["bytes"] / (run["duration_us"] / 1e6 + link_seconds) / (1024 * 1024)
                    app_runs.append(run)
                    probe.stop.set()
                    probe.join()
                    latencies.extend(probe.latencies)
                    probe_errors += probe.errors
                    samples = (samples + probe.samples)[:5]
                    nginx_cpu = cpu_seconds(process_tree(run_dir / "nginx.pid"))
                    run = run_wrk(direct_url, direct_viewers, args.seconds, args.connections, size, lua)
                    run["nginx_cpu"] = cpu_seconds(process_tree(run_dir / "nginx.pid")) - nginx_cpu
                    nginx_runs.append(run)
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        shutil.rmtree(work, ignore_errors=True)

    app_mb_s = statistics.median(r["mb_s"] for r in app_runs)
    nginx_mb_s = statistics.median(r["mb_s"] for r in nginx_runs)
    emit({
        "app_mb_s": round(app_mb_s, 1),
        "nginx_mb_s": round(nginx_mb_s, 1),
        "ratio": round(app_mb_s / nginx_mb_s, 3) if nginx_mb_s else 0.0,
        "catalogue_p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "catalogue_requests": len(latencies),
        "catalogue_probe_rate": args.probe_rate,
        "catalogue_errors": probe_errors,
        "catalogue_error_samples": samples,
        "app_runs_mb_s": [round(r["mb_s"], 1) for r in app_runs],
        "nginx_runs_mb_s": [round(r["mb_s"], 1) for r in nginx_runs],
        "app_req_per_s": round(statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in app_runs), 1),
        "app_non_206": sum(r["status_errors"] + r["errors"] for r in app_runs),
        "nginx_non_206": sum(r["status_errors"] + r["errors"] for r in nginx_runs),
        "app_p99_ms": round(statistics.median(r["p99_ms"] for r in app_runs), 1),
        "link_phase_ms": round(statistics.median(r["link_seconds"] for r in app_runs) * 1000, 1),
        # CPU seconds per GiB delivered (wall-clock rates are noisy on a shared machine): nginx
        # alone on each side, and on the APP side the app's CPU during the link phase.
        "nginx_cpu_s_per_gib_app": _per_gib(app_runs, "nginx_cpu"),
        "nginx_cpu_s_per_gib_direct": _per_gib(nginx_runs, "nginx_cpu"),
        "app_link_cpu_s_per_gib": _per_gib(app_runs, "link_cpu"),
        "viewers": len(data["learner_ids"]),
        "nginx_p99_ms": round(statistics.median(r["p99_ms"] for r in nginx_runs), 1),
        "range_bytes": RANGE,
        "connections": args.connections,
        "file_mb": args.size_mb,
        "gunicorn_workers": args.workers,
        "cpus": os.cpu_count(),
    })


def _per_gib(runs: list[dict], field: str) -> float:
    gib = sum(r["bytes"] for r in runs) / 1024 ** 3
    return round(sum(r[field] for r in runs) / gib, 3) if gib else 0.0


def _wait(url: str, timeout: float = 20) -> None:
    from urllib.error import URLError
    from urllib.request import urlopen

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except (URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


if __name__ == "__main__":
    main()
