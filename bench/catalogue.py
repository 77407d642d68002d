"""Benchmark: the catalogue page (GET /courses) against a bare /hello view.

Starts gunicorn (2 sync workers, LMS_ENV=development, demo sign-in, rate limits on)
against a fresh PostgreSQL database (dropped at the end), generates 2,000 courses and
10,000 sessions, signs 200 learners of different municipalities in through the demo
sign-in (each from a loopback address of its own), then requests the catalogue as those
learners, with at least 500 distinct query strings (searches, filters, pages), through 64
concurrent connections, and /hello the same way before and after. No response caching.
The query mix asks for pages that exist: a page past a search's last one redirects to the
last page (as a learner following a stale link lands there), so each such query string is
replaced by the one its redirect names, found by asking each once before timing.
Production's settings where a bench allows them (bench/common.py: JSON request log, rate
limits, Redis).

Prints one JSON object: catalogue_per_s, hello_per_s (mean of the two hello runs), ratio,
p99_ms (of the catalogue requests), and a few details. Target: ratio >= 0.15.

    .venv/bin/python bench/catalogue.py [--requests 3000] [--hello 4000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Gunicorn,
    Req,
    bench_app,
    cpu_seconds,
    emit,
    fresh_database,
    measure_hello,
    postgres_pids,
    run_load,
)
from bench.enroll_rush import _source_ip, sign_in_everyone  # noqa: E402

LEARNERS = 200

COURSES = 2000
SESSIONS_PER_COURSE = 5

TOPICS = ["Teams", "Excel", "Word", "PowerPoint", "Outlook", "OneDrive", "SharePoint", "Forms", "Power Automate",
          "Power BI", "Copilot", "情報セキュリティ", "文書管理", "会議運営", "チャット", "ファイル共有", "予定表",
          "テレワーク", "個人情報保護", "電子決裁", "データ活用", "アクセシビリティ"]
KINDS = ["操作研修", "入門", "基礎講座", "応用講座", "活用研修", "実践ワークショップ", "管理者研修", "初任者研修"]
AUDIENCES = ["新任職員", "全職員", "管理職", "情報システム担当", "窓口担当", "研修担当"]
CATEGORIES = ["Teams", "Microsoft 365", "業務効率化", "情報セキュリティ", "管理職向け", "新任職員向け", "データ活用", "その他"]
SEARCHES = ["操作", "会議", "研修", "入門", "基礎", "応用", "活用", "Teams", "teams", "ＴＥＡＭＳ", "Excel", "excel 関数",
            "セキュリティ", "情報セキュリティ", "個人情報", "文書", "共有", "予定表", "テレワーク", "Power", "copilot",
            "ワークショップ", "管理者", "初任者", "チャット", "ファイル", "電子決裁", "データ", "アクセシビリティ", "操作研修",
            "Word 入門", "PowerPoint 基礎", "Outlook", "OneDrive", "SharePoint 活用", "Forms", "BI", "100%", "a_b", "ｿｳｻ"]


def generate(database_url: str, seed: int = 7) -> dict:
    """Bulk-insert the categories, courses, eligibility rows, sessions and one demo learner."""
    from sqlalchemy import insert, select

    from lms.auth.models import User
    from lms.common.timeutil import utcnow
    from lms.courses.models import PUBLISHED, Category, Course, CourseEligibility, TrainingSession
    from lms.courses.search import normalise_for_search
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import StaffMember

    rng = random.Random(seed)
    with bench_app(database_url):
        municipalities = db.session.scalars(select(Municipality.id).order_by(Municipality.id)).all()
        db.session.execute(insert(Category), [{"name": n, "name_en": n, "sort_order": i} for i, n in enumerate(CATEGORIES)])
        categories = dict(db.session.execute(select(Category.id, Category.name)).all())
        now = utcnow().replace(microsecond=0)
        courses = []
        for n in range(1, COURSES + 1):
            topic, kind = rng.choice(TOPICS), rng.choice(KINDS)
            title = f"{topic}{kind} 第{n}期"
            summary = f"{topic}の{kind}です。{rng.choice(AUDIENCES)}向け。"
            description = f"## 内容\n- {topic}の基本\n- {rng.choice(TOPICS)}との連携\n\n**持ち物**: 特になし"
            category_id = rng.choice(list(categories))
            courses.append({
                "id": n, "title": title, "summary": summary, "description_md": description,
                "category_id": category_id, "target_audience": rng.choice(AUDIENCES),
                "eligible_all": rng.random() > 0.2, "requires_approval": rng.random() < 0.3,
                "status": PUBLISHED, "published_at": now - timedelta(minutes=n),
                "search_text": normalise_for_search("\n".join([title, summary, description, categories[category_id]])),
                "completion_mode": "either", "attendance_threshold_pct": 75, "viewing_threshold_pct": 90,
                "organizer_mailbox": "", "created_at": now, "updated_at": now,
            })
        db.session.execute(insert(Course), courses)
        eligibility = []
        for course in courses:
            if not course["eligible_all"]:
                for mid in rng.sample(municipalities, rng.randint(1, 6)):
                    eligibility.append({"course_id": course["id"], "municipality_id": mid})
        db.session.execute(insert(CourseEligibility), eligibility)
        sessions = []
        for course in courses:
            for k in range(SESSIONS_PER_COURSE):
                start = now + timedelta(days=rng.randint(-30, 330), hours=rng.choice([1, 2, 4, 5]))
                capacity = rng.choice([20, 30, 50, 100, 300])
                delivery = rng.choice(["teams", "teams", "onsite", "hybrid"])
                sessions.append({
                    "course_id": course["id"], "title": f"第{k + 1}回", "starts_at": start,
                    "ends_at": start + timedelta(hours=2), "delivery": delivery,
                    "location": "" if delivery == "teams" else "都庁第一本庁舎 研修室",
                    "join_url": "https://teams.microsoft.com/l/meetup-join/bench" if delivery != "onsite" else "",
                    "capacity": capacity, "confirmed_count": rng.randint(0, capacity),
                    "enroll_opens_at": start - timedelta(days=60), "enroll_closes_at": start - timedelta(days=1),
                    "cancel_deadline": start - timedelta(days=1), "status": "scheduled", "revision": 1,
                    "created_at": now, "updated_at": now,
                })
        db.session.execute(insert(TrainingSession), sessions)
        municipality_ids = db.session.scalars(select(Municipality.id).order_by(Municipality.id)).all()
        learners = []
        for n in range(LEARNERS):
            mid = municipality_ids[n % len(municipality_ids)]
            learner = User(tenant_id="bench-tenant", object_id=f"bench-learner-{n}", display_name=f"ベンチ 受講者 {n}",
                           email=f"bench.learner{n}@example.lg.jp", municipality_id=mid, is_demo=True)
            db.session.add(learner)
            db.session.flush()
            db.session.add(StaffMember(municipality_id=mid, user_id=learner.id, employee_number=f"B{n:07d}",
                                       full_name=f"ベンチ 受講者 {n}", sign_in_name=learner.email, email=learner.email,
                                       source="manual"))
            learners.append(learner.id)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            # As autovacuum would have done on a live database (visibility map for index-only scans).
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        return {"courses": len(courses), "sessions": len(sessions), "learner_ids": learners,
                "category_ids": list(categories)}


def query_strings(category_ids: list[int], seed: int = 11) -> list[str]:
    """At least 500 distinct catalogue URLs: searches, filters, pages, and mixes."""
    from lms.common.timeutil import to_tokyo, utcnow

    rng = random.Random(seed)
    # The next twelve months (the page offers those of them that have sessions).
    local = to_tokyo(utcnow())
    months = [f"{local.year + (local.month - 1 + i) // 12:04d}-{(local.month - 1 + i) % 12 + 1:02d}" for i in range(12)]
    urls: set[str] = set()

    def add(**args):
        args = {k: v for k, v in args.items() if v not in (None, "")}
        urls.add("/courses" + ("?" + urlencode(args) if args else ""))

    for q in SEARCHES:
        for page in (1, 2, 3):
            add(q=q, page=page if page > 1 else None)
    for page in range(1, 101):
        add(page=page)
    for cid in category_ids:
        for month in months:
            add(category=cid, month=month)
    for delivery in ("teams", "onsite", "hybrid"):
        for month in months:
            add(delivery=delivery, month=month, free=rng.choice(["1", None]))
    while len(urls) < 650:
        mine = rng.choice([None, "1"])  # (its pages depend on the learner's municipality: its first page only)
        add(q=rng.choice(SEARCHES), category=rng.choice([None, *category_ids]), month=rng.choice([None, *months]),
            delivery=rng.choice([None, "teams", "onsite", "hybrid"]), free=rng.choice([None, "1"]),
            mine=mine, page=None if mine else rng.choice([None, 2]))
    return sorted(urls)


def existing_pages(base_url: str, urls: list[str], as_learner) -> list[str]:
    """``urls`` with each one past its last page replaced by the page its redirect names."""
    probe = run_load(base_url, [as_learner(n, u) for n, u in enumerate(urls)], 8, ok=(200, 302), keep_responses=True)
    if probe.errors:
        raise SystemExit(f"probe failed: {probe.error_samples}")
    kept = set()
    for url, response in zip(urls, probe.responses or [], strict=True):
        if response is not None and response.status == 302:
            target = urlsplit(response.headers.get("location", ""))
            url = target.path + (f"?{target.query}" if target.query else "")
        kept.add(url)
    return sorted(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="catalogue requests (default 3000)")
    parser.add_argument("--hello", type=int, default=4000, help="hello requests per run (default 4000)")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    with fresh_database("lms_bench_catalogue") as url:
        started = time.perf_counter()
        data = generate(url)
        generated_s = time.perf_counter() - started
        with Gunicorn(url, workers=2) as server:
            agents, _tokens = sign_in_everyone(server.base_url, data["learner_ids"])

            def as_learner(n: int, url: str) -> Req:  # each learner from the address it signed in from
                k = n % len(agents)
                return Req("GET", url, agent=agents[k], source=_source_ip(k))

            urls = existing_pages(server.base_url, query_strings(data["category_ids"]), as_learner)
            rng = random.Random(3)
            plan = [rng.choice(urls) for _ in range(args.requests - len(urls))] + urls
            rng.shuffle(plan)
            # Warm both workers (imports, templates, connection pools) before timing.
            warm = run_load(server.base_url, [as_learner(n, u) for n, u in enumerate(urls[:100])], args.concurrency)
            if warm.errors:
                raise SystemExit(f"warm-up failed: {warm.error_samples}")
            measure_hello(server.base_url, 500, args.concurrency)

            database = url.rsplit("/", 1)[1]

            def cpu() -> tuple[float, float]:
                return cpu_seconds(server.pids()), cpu_seconds(postgres_pids(database))

            c0 = cpu()
            hello_before = measure_hello(server.base_url, args.hello, args.concurrency)
            c1 = cpu()
            catalogue = run_load(server.base_url, [as_learner(n, u) for n, u in enumerate(plan)], args.concurrency,
                                 keep_responses=True)
            c2 = cpu()
            hello_after = measure_hello(server.base_url, args.hello, args.concurrency)

        # A 200 that is the sign-in page or lacks the results heading would be a lie.
        wrong = sum(1 for r in catalogue.responses if r is not None and r.status == 200 and "results-heading" not in r.text)
    if catalogue.errors or wrong:
        print(json.dumps({"detail": {"statuses": {str(k): v for k, v in catalogue.statuses.items()},
                                     "samples": catalogue.error_samples[:5], "wrong": wrong}}, ensure_ascii=False),
              file=sys.stderr)
    hello_per_s = (hello_before.per_s + hello_after.per_s) / 2
    emit({
        "catalogue_per_s": round(catalogue.per_s, 1),
        "hello_per_s": round(hello_per_s, 1),
        "ratio": round(catalogue.per_s / hello_per_s, 3) if hello_per_s else 0.0,
        "p99_ms": round(catalogue.p99_ms, 1),
        "p50_ms": round(catalogue.p50_ms, 1),
        "catalogue_requests": catalogue.count,
        "distinct_queries": len(urls),
        "distinct_learners": len(agents),
        "errors": catalogue.errors + hello_before.errors + hello_after.errors + wrong,
        "hello_before_per_s": round(hello_before.per_s, 1),
        "hello_after_per_s": round(hello_after.per_s, 1),
        # CPU per request (app workers, database backends): comparable when the machine is shared.
        "catalogue_cpu_ms": [round((c2[0] - c1[0]) / catalogue.count * 1000, 2), round((c2[1] - c1[1]) / catalogue.count * 1000, 2)],
        "hello_cpu_ms": [round((c1[0] - c0[0]) / hello_before.count * 1000, 2), round((c1[1] - c0[1]) / hello_before.count * 1000, 2)],
        "courses": data["courses"],
        "sessions": data["sessions"],
        "generate_s": round(generated_s, 1),
    })


if __name__ == "__main__":
    main()
