"""Benchmark: the integration API — an HR system's roster feed, then an incremental sync.

Against a dedicated PostgreSQL database (``--database``, default ``lms_bench_api``) filled by
``lms synth`` (200,000 staff, 1,000,000 enrollments by default; kept for the next run, ``--fresh``
rebuilds it). Runs what production runs: gunicorn (2 sync workers), the background worker
(``flask lms worker``, 2 threads), Redis for the job queue and the rate limits, and the real
OpenID Connect provider of the tests (tests/node/oidc) minting the platform client's app-only
token by the client-credentials grant — every call carries it and the server validates it.

1. **The roster feed.** A first feed of ``--feed`` (50,000) entries for one municipality
   sets up its roster (not measured). Then the measured feed: the same people, 10% of them
   transferred (所属 changed), 1% leaving (``left_on``), the rest as they are — as an HR system
   sends its daily snapshot. Timed from the start of the POST (the client's JSON encoding
   included) to the job's status ``finished`` (polled as a client would, every 0.25 s):
   ``roster_rows_per_s``. ``roster_peak_rss_mb``: the largest resident set of any one server
   process (gunicorn worker receiving the body, or the background worker processing it),
   sampled every 50 ms (``roster_rss_added_mb``: the most the feed added to one of them).
2. **The sync.** The platform client walks every enrollment (1,000,000) with
   ``updated_since`` and ``limit=1000``, one page after another following ``next``, as an
   integration's first full sync does: ``page_p95_ms`` (each page's wall time at the client),
   ``pages``, ``rows``, ``errors`` (answers other than 200, and rows seen twice or missed).

The rate limit of API clients is raised for the run (``LMS_LIMIT_API=5000/minute``): at the
default 600/minute a first full sync of 1,000 pages is throttled by design, which would
measure the limit, not the pages. ``client_cpu_s``: this process's own CPU time (it shares
the two cores with the server).

Prints one JSON object. Targets: roster_rows_per_s >= 2000, roster_peak_rss_mb <= 200,
page_p95_ms <= 100, errors = 0.

    .venv/bin/python bench/api.py [--feed 50000 --staff 200000 --enrollments 1000000 --fresh]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote, urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BENCH_REDIS_URL,
    ROOT,
    Gunicorn,
    Req,
    _host_port,
    bench_app,
    emit,
    fetch,
    percentile,
)
from bench.reports import ensure_database  # noqa: E402
from tests.auth.conftest import API_CLIENTS, API_RESOURCE, TENANT_P, OidcProvider, entra_settings  # noqa: E402

MUNICIPALITY = "131016"  # 千代田区: the feed's municipality
DEPARTMENTS = [f"{name}課" for name in ("総務", "企画", "財政", "税務", "福祉", "保健", "環境", "都市計画", "土木",
                                        "教育総務", "子育て支援", "防災", "情報政策", "人事", "会計", "議会事務局")]
TITLES = ["主事", "主任", "係長", "課長補佐", "課長"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _entries(n: int, *, measured: bool) -> list[dict]:
    today = date.today().isoformat()
    entries = []
    for i in range(1, n + 1):
        department = DEPARTMENTS[i % len(DEPARTMENTS)]
        entry = {"employee_number": f"HR{i:06d}", "full_name": f"人事 太郎{i}", "full_name_kana": f"ジンジ タロウ{i}",
                 "department": department, "job_title": TITLES[i % len(TITLES)],
                 "sign_in_name": f"hr{i:06d}@city.example.lg.jp", "email": f"hr{i:06d}@city.example.lg.jp",
                 "hired_on": f"{2000 + i % 25}-04-01"}
        if measured and i % 10 == 0:  # 10%: 人事異動
            entry["department"] = DEPARTMENTS[(i + 1) % len(DEPARTMENTS)]
        elif measured and i % 100 == 1:  # 1%: 退職・転出
            entry["left_on"] = today
        entries.append(entry)
    return entries


def _setup_client(url: str) -> None:
    """The prefecture's tenant and the platform API client (as a platform admin registers it)."""
    with bench_app(url):
        from sqlalchemy import select

        from lms.api.models import ApiClient
        from lms.api.services import register_client
        from lms.extensions import db
        from lms.municipalities.models import Municipality, TenantMapping

        prefecture = db.session.scalar(select(Municipality).where(Municipality.code == "130001"))
        if db.session.scalar(select(TenantMapping).where(TenantMapping.tenant_id == TENANT_P)) is None:
            db.session.add(TenantMapping(tenant_id=TENANT_P, mail_domain="", municipality=prefecture, source="admin"))
        app_id = API_CLIENTS["platform"][0]
        if db.session.scalar(select(ApiClient).where(ApiClient.application_id == app_id)) is None:
            register_client(app_id, "東京都 人事システム（ベンチ）", None, None)
        db.session.commit()


class RssSampler:
    """The peak resident set of each process of the given trees, sampled every 50 ms."""

    def __init__(self, roots: list[int]):
        self.roots = roots
        self.peak: dict[int, int] = {}
        self.start: dict[int, int] = {}  # each process's resident set when sampling began
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for root in self.roots:
                try:
                    proc = psutil.Process(root)
                    for p in [proc, *proc.children(recursive=True)]:
                        rss = p.memory_info().rss
                        self.start.setdefault(p.pid, rss)
                        self.peak[p.pid] = max(self.peak.get(p.pid, 0), rss)
                except psutil.Error:
                    continue
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _feed(base_url: str, headers: dict, entries: list[dict]) -> tuple[float, dict]:
    started = time.perf_counter()
    body = json.dumps({"entries": entries, "municipality_code": MUNICIPALITY}, ensure_ascii=False).encode()
    answer = _call(base_url, "POST", "/api/v1/staff/bulk", {**headers, "Content-Type": "application/json"}, body)
    if answer.status != 202:
        raise RuntimeError(f"the feed was answered {answer.status}: {answer.text[:500]}")
    job_path = urlsplit(answer.headers["location"]).path
    while True:
        job = json.loads(_call(base_url, "GET", job_path, headers).body)
        if job["status"] in ("finished", "failed"):
            return time.perf_counter() - started, job
        time.sleep(0.25)


def _call(base_url: str, method: str, path: str, headers: dict, body: bytes | None = None):
    host, port = _host_port(base_url)
    return asyncio.run(fetch(host, port, Req(method, path, headers=headers, body=body)))


def _sync(base_url: str, headers: dict) -> dict:
    path = f"/api/v1/enrollments?updated_since={quote('2000-01-01T00:00:00+00:00')}&limit=1000"
    times, pages, rows, errors, seen = [], 0, 0, 0, set()
    while path:
        answer = _call(base_url, "GET", path, headers)
        times.append(answer.elapsed_ms)
        pages += 1
        if answer.status != 200:
            errors += 1
            _log(f"page {pages}: {answer.status} {answer.text[:200]}")
            break
        page = json.loads(answer.body)
        for item in page["items"]:
            if item["id"] in seen:
                errors += 1
            seen.add(item["id"])
        rows += len(page["items"])
        path = urlsplit(page["next"]).path + "?" + urlsplit(page["next"]).query if page["next"] else ""
        if pages % 100 == 0:
            _log(f"  {pages} pages, {rows} rows, p95 so far {percentile(times, 95):.1f} ms")
    return {"times": times, "pages": pages, "rows": rows, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="lms_bench_api")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--feed", type=int, default=50_000)
    parser.add_argument("--staff", type=int, default=200_000)
    parser.add_argument("--courses", type=int, default=2_000)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    args = parser.parse_args()

    url = ensure_database(args.database, args.fresh, args.staff, args.courses, args.enrollments, _log)
    _setup_client(url)
    with tempfile.TemporaryDirectory() as tmp:
        provider = OidcProvider(Path(tmp))
        provider.start()
        try:
            settings = entra_settings(provider)
            env = {key: str(value) for key, value in settings.items() if key != "LMS_DEMO_LOGIN"}
            env.update({"LMS_API_AUDIENCE": API_RESOURCE, "LMS_LIMIT_API": "5000/minute;200000/hour",
                        "LMS_BASE_URL": "http://127.0.0.1"})
            headers = {"Authorization": f"Bearer {provider.api_token('platform')}", "Accept": "application/json",
                       "Accept-Language": "ja"}
            with Gunicorn(url, workers=2, env=env) as server:
                worker_env = {**server.env}
                worker = subprocess.Popen([str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "lms", "worker"],
                                          cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                try:
                    _log(f"setting up the roster: a first feed of {args.feed} entries …")
                    seconds, job = _feed(server.base_url, headers, _entries(args.feed, measured=False))
                    _log(f"  {job['counts']} in {seconds:.1f} s")
                    _log("the measured feed (10% transfers, 1% departures) …")
                    cpu_before = time.process_time()
                    with RssSampler([*server.pids(), worker.pid]) as rss:
                        seconds, job = _feed(server.base_url, headers, _entries(args.feed, measured=True))
                    feed_cpu = time.process_time() - cpu_before
                    _log(f"  {job['counts']} in {seconds:.1f} s")
                    _log("the sync: every enrollment, 1,000 a page …")
                    cpu_before = time.process_time()
                    sync = _sync(server.base_url, headers)
                    sync_cpu = time.process_time() - cpu_before
                finally:
                    worker.terminate()
                    worker.wait(30)
        finally:
            provider.stop()
    with bench_app(url):
        from sqlalchemy import func, select

        from lms.enrollment.models import Enrollment
        from lms.extensions import db

        expected = db.session.scalar(select(func.count()).select_from(Enrollment))
    errors = sync["errors"] + (0 if job["status"] == "finished" else 1) + abs(expected - sync["rows"])
    emit({
        "roster_rows_per_s": round(args.feed / seconds, 1),
        "roster_peak_rss_mb": round(max(rss.peak.values()) / 2**20, 1),
        # What the feed itself added to a process (the rest is the process as it was before).
        "roster_rss_added_mb": round(max(rss.peak[pid] - rss.start[pid] for pid in rss.peak) / 2**20, 1),
        "page_p95_ms": round(percentile(sync["times"], 95), 1),
        "page_p50_ms": round(percentile(sync["times"], 50), 1),
        "pages": sync["pages"],
        "rows": sync["rows"],
        "errors": errors,
        "roster_seconds": round(seconds, 2),
        "roster_counts": job["counts"],
        "client_cpu_s": {"feed": round(feed_cpu, 2), "sync": round(sync_cpu, 2)},
        "enrollments": expected,
        "pid_rss_mb": {str(pid): round(v / 2**20, 1) for pid, v in sorted(rss.peak.items())},
    })


if __name__ == "__main__":
    os.environ.setdefault("BENCH_REDIS_URL", BENCH_REDIS_URL)
    main()
