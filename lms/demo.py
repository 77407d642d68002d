"""The demo data set: realistic Japanese training data for the embedded default.

Idempotent: every row is found by a natural key before it is created, so running
``flask --app wsgi lms demo`` twice changes nothing the second time.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Required, TypedDict

from sqlalchemy import func, select

from lms.archives.demo import load_demo_archives
from lms.archives.models import Archive
from lms.attendance.models import ROLL_CALL, TEAMS_REPORT, Attendance
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER, User
from lms.common.timeutil import TOKYO, as_utc, fiscal_year_of, utcnow
from lms.completion.services import recompute_for_session
from lms.completion.summary import rebuild
from lms.courses.models import (
    BY_ATTENDANCE,
    BY_EITHER,
    HYBRID,
    ONSITE,
    PUBLISHED,
    SCHEDULED,
    TEAMS,
    Category,
    Course,
    CourseEligibility,
    SessionQuota,
    TrainingPath,
    TrainingPathStep,
    TrainingSession,
)
from lms.courses.search import normalise_for_search, seed_default_synonyms
from lms.enrollment.models import CONFIRMED, PENDING, WAITLISTED, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality, TenantMapping
from lms.municipalities.services import load_municipalities
from lms.planning import services as planning
from lms.roster.models import StaffMember

_NS = uuid.UUID("6f1c3a52-9d6e-4c1b-8a57-2f0e5d4b7c11")


def demo_uuid(*parts: str) -> str:
    """A stable fake Entra id for demo rows."""
    return str(uuid.uuid5(_NS, "/".join(parts)))


# Municipalities with demo staff: the prefecture, a 特別区, a 市, a 町, a 村.
DEMO_MUNICIPALITIES = ("130001", "131016", "132012", "133051", "133078")

# The demo municipalities' mail domains (demo.<slug>.lg.jp).
DEMO_MAIL_DOMAINS = {"130001": "metro.tokyo", "131016": "chiyoda", "132012": "hachioji", "133051": "hinode", "133078": "hinohara"}

_FAMILY = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田"]
_FAMILY_KANA = ["サトウ", "スズキ", "タカハシ", "タナカ", "イトウ", "ワタナベ", "ヤマモト", "ナカムラ", "コバヤシ", "カトウ", "ヨシダ", "ヤマダ"]
_GIVEN = ["花子", "太郎", "美咲", "健太", "陽菜", "翔", "結衣", "大輔", "彩", "誠"]
_GIVEN_KANA = ["ハナコ", "タロウ", "ミサキ", "ケンタ", "ヒナ", "ショウ", "ユイ", "ダイスケ", "アヤ", "マコト"]
_DEPARTMENTS = ["総務課", "企画政策課", "情報政策課", "税務課", "子育て支援課", "福祉課", "環境課", "都市計画課"]
_TITLES = ["主事", "主任", "係長", "課長補佐", "課長"]

CATEGORIES = [
    ("Teams", "Teams"),
    ("Microsoft 365", "Microsoft 365"),
    ("業務効率化", "Productivity"),
    ("情報セキュリティ", "Information security"),
    ("管理職向け", "For managers"),
]

class CourseSpec(TypedDict, total=False):
    """One demo course: the keys every course has, then the optional ones."""

    title: Required[str]
    category: Required[str]
    summary: Required[str]
    description: Required[str]
    audience: Required[str]
    delivery: Required[str]
    capacity: Required[int]
    offsets: Required[list[int]]  # days from today of its sessions
    approval: bool
    selection: bool  # 選考: the organiser decides after approval
    series: bool  # 連続講座: the sessions are the dated parts of one series
    eligible: list[str]  # municipality codes
    location: str


COURSES: list[CourseSpec] = [
    {
        "title": "Teams 操作研修（基礎）",
        "category": "Teams",
        "summary": "チャット、会議、ファイル共有など Microsoft Teams の基本操作を実習形式で学びます。",
        "description": "## この研修で学ぶこと\n\n- チームとチャネルの使い分け\n- 会議の予約と参加、画面共有\n"
        "- ファイルの共同編集\n\n**対象**: Teams を使い始めたばかりの職員\n\n持ち物: 庁内端末（Teams にサインインできること）",
        "audience": "Teams を使い始めた職員",
        "delivery": TEAMS,
        "capacity": 40,
        "offsets": [-40, -12, 9, 23, 44],
    },
    {
        "title": "Microsoft 365 活用研修",
        "category": "Microsoft 365",
        "summary": "Outlook、OneDrive、SharePoint を組み合わせて、部署内の情報共有を効率化します。",
        "description": "## 内容\n\n1. OneDrive と SharePoint の違い\n2. 共有リンクの権限設定\n3. Outlook の予定表共有\n\n"
        "演習では実際の業務を想定したファイルを使います。",
        "audience": "全職員",
        "delivery": TEAMS,
        "capacity": 60,
        "offsets": [-25, 14, 35],
    },
    {
        "title": "業務効率化オンラインプログラム",
        "category": "業務効率化",
        "summary": "Power Automate と Forms を使った定型業務の自動化を、4 回のオンライン講座で身につけます。",
        "description": "## プログラム\n\n- 第1回 業務の棚卸し\n- 第2回 Forms で申請を受け付ける\n- 第3回 Power Automate で通知を自動化\n"
        "- 第4回 成果発表\n\n各回 90 分。",
        "audience": "業務改善に取り組む職員",
        "delivery": TEAMS,
        "capacity": 30,
        "offsets": [-18, 7, 21, 28],
    },
    {
        "title": "情報セキュリティ研修（必修）",
        "category": "情報セキュリティ",
        "summary": "標的型メール、パスワード管理、個人情報の取扱いなど、全職員に必要な情報セキュリティの基礎。",
        "description": "## 必修研修です\n\n年度内に必ず受講してください。アーカイブ視聴でも修了できます。",
        "audience": "全職員（必修）",
        "delivery": HYBRID,
        "capacity": 100,
        "offsets": [-50, 16],
        "approval": False,
    },
    {
        "title": "管理職のための Teams 会議運営",
        "category": "管理職向け",
        "summary": "会議の事前準備、ファシリテーション、議事録の共有まで、管理職向けに実践的に解説します。",
        "description": "所属長の承認が必要です。",
        "audience": "係長級以上",
        "delivery": ONSITE,
        "capacity": 20,
        "offsets": [12, 40],
        "approval": True,
        "location": "都庁第一本庁舎 7階 研修室A",
    },
    {
        "title": "Excel データ活用入門",
        "category": "業務効率化",
        "summary": "ピボットテーブルと Power Query で、集計業務の時間を半分にします。",
        "description": "## 対象\n\nExcel の基本操作ができる職員",
        "audience": "Excel の基本操作ができる職員",
        "delivery": TEAMS,
        "capacity": 50,
        "offsets": [19],
        "eligible": ["131016", "132012"],
    },
    {
        "title": "政策形成研修（選考あり）",
        "category": "管理職向け",
        "summary": "地域の課題から政策を組み立てる演習。研修担当の承認のあと、研修所が受講者を選考します。",
        "description": "## 選考について\n\n申込が定員を超えた場合は、研修所が職層と受講歴をもとに選考し、結果をメールでお知らせします。",
        "audience": "主任級以上",
        "delivery": ONSITE,
        "capacity": 2,
        "offsets": [33],
        "approval": True,
        "selection": True,
        "location": "都庁第一本庁舎 7階 研修室B",
    },
    {
        "title": "新任職員研修（3日間の連続講座）",
        "category": "業務効率化",
        "summary": "3日間で公務員の基礎を学ぶ連続講座。1回の申込で3日分の受講が決まります。4分の3以上の出席で修了です。",
        "description": "## 連続講座\n\n3日間すべてに申し込みます。欠席した日は補講で補えます。",
        "audience": "今年度の新規採用職員",
        "delivery": ONSITE,
        "capacity": 30,
        "offsets": [24, 25, 26],
        "series": True,
        "location": "都庁第一本庁舎 7階 研修室A",
    },
]


def load_demo() -> dict[str, int]:
    load_municipalities()
    seed_default_synonyms()
    municipalities = {m.code: m for m in db.session.scalars(select(Municipality))}
    _tenant_mappings(municipalities)
    users = _users(municipalities)
    staff = _roster(municipalities, users)
    courses = _courses(municipalities, users)
    _enrollments(courses, staff)
    db.session.flush()
    _past_attendance(courses)
    _training_path(courses)
    _training_plan(users)
    load_demo_archives()
    db.session.flush()
    # Rows written here publish no events: the dashboard summaries are recomputed whole.
    rebuild(db.session())

    def count(model):
        return db.session.scalar(select(func.count()).select_from(model))

    return {
        "municipalities": count(Municipality),
        "users": count(User),
        "staff members": count(StaffMember),
        "courses": count(Course),
        "sessions": count(TrainingSession),
        "enrollments": count(Enrollment),
        "archives": count(Archive),
    }


def _tenant_mappings(municipalities):
    for code in DEMO_MUNICIPALITIES:
        tid = demo_uuid("tenant", code)
        exists = db.session.scalar(select(TenantMapping).where(TenantMapping.tenant_id == tid))
        if exists is None:
            db.session.add(TenantMapping(tenant_id=tid, mail_domain="", municipality=municipalities[code], source="demo"))


def _user(municipality, key, name, email, roles):
    tid = demo_uuid("tenant", municipality.code)
    oid = demo_uuid("user", municipality.code, key)
    user = db.session.scalar(select(User).where(User.tenant_id == tid, User.object_id == oid))
    if user is None:
        user = User(tenant_id=tid, object_id=oid, display_name=name, email=email, municipality=municipality, is_demo=True)
        db.session.add(user)
    user.set_roles(set(roles))
    return user


def _users(municipalities):
    pref = municipalities["130001"]
    users = {
        "platform": _user(pref, "platform", "山本 誠（都 システム管理者・デモ）", "admin@demo.metro.tokyo.lg.jp",
                          {PLATFORM_ADMIN}),
        "trainer": _user(pref, "trainer", "中村 彩（研修講師・デモ）", "trainer@demo.metro.tokyo.lg.jp", {TRAINER}),
    }
    for code, slug in DEMO_MAIL_DOMAINS.items():
        if code == "130001":
            continue  # 都: the platform admin and the trainer above
        m = municipalities[code]
        person = f"{_FAMILY[(int(code[2:5]) + 7) % len(_FAMILY)]} {_GIVEN[(int(code[3:5]) + 2) % len(_GIVEN)]}"
        users[f"admin-{code}"] = _user(
            m, "admin", f"{person}（{m.name} 研修担当・デモ）", f"kenshu@demo.{slug}.lg.jp", {MUNICIPAL_ADMIN}
        )
        for i in range(2):
            users[f"learner-{code}-{i}"] = _user(
                m, f"learner{i}", f"{_FAMILY[(i + int(code[3:5])) % len(_FAMILY)]} {_GIVEN[(i + int(code[2:5])) % len(_GIVEN)]}", f"staff{i}@demo.{slug}.lg.jp", set()
            )
    db.session.flush()
    return users


def _roster(municipalities, users):
    """Ten staff per demo municipality; the demo learners and admins are among them."""
    staff = {}
    for code in DEMO_MUNICIPALITIES:
        m = municipalities[code]
        linked = [u for key, u in users.items() if u.municipality_id == m.id]
        for i in range(10):
            number = f"{code[2:5]}{i + 1:04d}"
            member = db.session.scalar(
                select(StaffMember).where(StaffMember.municipality_id == m.id, StaffMember.employee_number == number)
            )
            if member is None:
                f, g = (i * 5 + int(code[3])) % len(_FAMILY), (i * 3 + int(code[4])) % len(_GIVEN)
                user = linked[i] if i < len(linked) else None
                name = user.display_name.split("（")[0] if user else f"{_FAMILY[f]} {_GIVEN[g]}"
                member = StaffMember(
                    municipality=m,
                    employee_number=number,
                    full_name=name,
                    full_name_kana=_kana_of(name),
                    department=_DEPARTMENTS[(i + int(code[4])) % len(_DEPARTMENTS)],
                    job_title=_TITLES[i % len(_TITLES)],
                    sign_in_name=(user.email if user else f"e{number}@demo.{DEMO_MAIL_DOMAINS[code]}.lg.jp").lower(),
                    email=user.email if user else f"e{number}@demo.{DEMO_MAIL_DOMAINS[code]}.lg.jp",
                    hired_on=date(2026, 4, 1) if i >= 8 else date(2010 + i, 4, 1),
                    source="demo",
                    user=user,
                    entra_tenant_id=user.tenant_id if user else None,
                    entra_object_id=user.object_id if user else None,
                )
                db.session.add(member)
            staff[(code, i)] = member
    db.session.flush()
    return staff


def _kana_of(name: str) -> str:
    """The reading of a demo name, from the same lists it was made of (so 鈴木 太郎 reads スズキ タロウ)."""
    family, given = name.split(" ", 1)
    return f"{_FAMILY_KANA[_FAMILY.index(family)]} {_GIVEN_KANA[_GIVEN.index(given)]}"


def _at(days: int, hour: int, minute: int = 0) -> datetime:
    today = utcnow().astimezone(TOKYO).date()
    day = today + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO)


def _courses(municipalities, users):
    categories = {}
    for order, (name, name_en) in enumerate(CATEGORIES):
        cat = db.session.scalar(select(Category).where(Category.name == name))
        if cat is None:
            cat = Category(name=name, name_en=name_en, sort_order=order)
            db.session.add(cat)
        categories[name] = cat
    db.session.flush()
    courses = []
    for spec in COURSES:
        course = db.session.scalar(select(Course).where(Course.title == spec["title"]))
        if course is None:
            course = Course(
                title=spec["title"],
                summary=spec["summary"],
                description_md=spec["description"],
                category=categories[spec["category"]],
                target_audience=spec["audience"],
                requires_approval=spec.get("approval", False),
                selection=spec.get("selection", False),
                status=PUBLISHED,
                published_at=utcnow(),
                owner=users["trainer"],
                completion_mode=BY_EITHER if spec["delivery"] != ONSITE else BY_ATTENDANCE,
                eligible_all="eligible" not in spec,
            )
            course.search_text = normalise_for_search(" ".join([spec["title"], spec["summary"], spec["description"]]))
            for code in spec.get("eligible", []):
                course.eligibility.append(CourseEligibility(municipality=municipalities[code]))
            db.session.add(course)
            db.session.flush()
            for n, offset in enumerate(spec["offsets"], start=1):
                start = _at(offset, 10 if n % 2 else 14)
                session = TrainingSession(
                    course=course,
                    title=f"第{n}回",
                    starts_at=start,
                    ends_at=start + timedelta(minutes=90),
                    delivery=spec["delivery"],
                    location=spec.get("location", "" if spec["delivery"] == TEAMS else "都庁第二本庁舎 31階 特別会議室"),
                    join_url=(
                        f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_demo{course.id}x{n}%40thread.v2/0"
                        if spec["delivery"] != ONSITE
                        else ""
                    ),
                    capacity=spec["capacity"],
                    enroll_opens_at=start - timedelta(days=60),
                    enroll_closes_at=start - timedelta(days=2),
                    cancel_deadline=start - timedelta(days=1),
                    organizer_user_id=users["trainer"].id,
                )
                db.session.add(session)
                if spec["title"].startswith("Microsoft 365") and offset > 0:
                    session.quotas.append(SessionQuota(municipality=municipalities["131016"], seats=5))
            if spec.get("series"):  # the sessions are the days of one 連続講座, named by the first
                db.session.flush()
                first = min(course.sessions, key=lambda s: s.starts_at)
                for part in course.sessions:
                    part.series_id = first.id
                    part.title = part.title.replace("回", "日")
        courses.append(course)
    db.session.flush()
    return courses


def _past_attendance(courses) -> None:
    """A lived-in year: the sessions already held have their attendance (most attended, some
    left early, some did not come) and the completions and certificates that follow from it,
    so that every dashboard and chart shows something real."""
    if db.session.scalar(select(func.count()).select_from(Attendance)):
        return
    now = utcnow()
    for course in courses:
        for session in course.sessions:
            if as_utc(session.ends_at) > now:
                continue
            length = int((as_utc(session.ends_at) - as_utc(session.starts_at)).total_seconds())
            confirmed = list(db.session.scalars(select(Enrollment).where(
                Enrollment.session_id == session.id, Enrollment.status == CONFIRMED).order_by(Enrollment.arrival_seq)))
            for n, enrollment in enumerate(confirmed):
                pct = (100, 95, 88, 40, 0)[n % 5]  # 40 %: left early; 0: did not come
                if pct == 0:
                    continue
                db.session.add(Attendance(
                    session_id=session.id, staff_member_id=enrollment.staff_member_id,
                    source=ROLL_CALL if session.delivery == ONSITE else TEAMS_REPORT,
                    attended_seconds=length * pct // 100, attended_pct=pct,
                    attended=pct >= course.attendance_threshold_pct,
                ))
            db.session.flush()
            for enrollment in confirmed:
                recompute_for_session(enrollment.staff_member_id, session.id)
    db.session.flush()


def _training_path(courses) -> None:
    """研修体系: the basics first, then Microsoft 365, then the data course (the learner's
    受講履歴 shows how far they have come)."""
    if db.session.scalar(select(func.count()).select_from(TrainingPath)):
        return
    by_title = {c.title: c for c in courses}
    order = ["Teams 操作研修（基礎）", "Microsoft 365 活用研修", "Excel データ活用入門"]
    db.session.add(TrainingPath(
        name="デジタル活用 基礎から実践へ",
        description="Teams の基本から Microsoft 365 の活用、データ活用へと順に受講します。",
        steps=[TrainingPathStep(course=by_title[title], position=n) for n, title in enumerate(order, start=1)
               if title in by_title],
    ))
    db.session.flush()


def _training_plan(users) -> None:
    """年間研修計画: the year of the next sessions, published, its survey open for two weeks;
    千代田区 and 八王子市 have answered, 日の出町 and 檜原村 not yet (the platform admin sees who
    is missing and can remind them; an office can answer in the browser or through Excel)."""
    upcoming = db.session.scalar(select(func.min(TrainingSession.starts_at)).where(
        TrainingSession.status == SCHEDULED, TrainingSession.starts_at > utcnow()))
    if upcoming is None:
        return
    year = fiscal_year_of(upcoming)
    if planning.plan_of_year(year) is not None:
        return
    platform = users["platform"]
    plan = planning.create_plan(platform, year, note="デモ：研修ごとに受講希望人数を回答する計画です。")
    planning.publish_plan(platform, plan, utcnow() + timedelta(days=14))
    items = planning.survey_items(plan)
    for code, wanted in (("131016", (6, 3, 2)), ("132012", (10, 4, 0))):
        office = users[f"admin-{code}"]
        answers = {item.id: planning.Answer(n, 1 if i == 0 else 3, "新任職員を優先" if i == 0 else "")
                   for i, (item, n) in enumerate(zip(items, wanted, strict=False))}
        planning.answer_survey(office, plan, office.municipality_id, answers)
    db.session.flush()


def _enrollments(courses, staff):
    """A few enrollments per session, in every state a learner can meet."""
    if db.session.scalar(select(func.count()).select_from(Enrollment)):
        return
    seq = 0
    for course in courses:
        for s_index, session in enumerate(course.sessions):
            if session.series_id is not None and session.series_id != session.id:
                continue  # a later part of a 連続講座: its places follow the first's (below)
            members = [staff[(code, i)] for code in DEMO_MUNICIPALITIES[1:] for i in range(s_index % 3, 10, 3)]
            for m_index, member in enumerate(members[: max(3, min(len(members), session.capacity // 4))]):
                if not course.is_open_to(member.municipality_id):
                    continue
                seq += 1
                status = CONFIRMED
                step = None
                if course.selection:  # approved by the office, waiting for the organiser's 選考
                    status, step = PENDING, "selection"
                elif course.requires_approval and m_index % 3 == 0:
                    status = PENDING
                quota = next((q for q in session.quotas if q.municipality_id == member.municipality_id), None)
                if quota and quota.confirmed_count >= quota.seats:
                    status = WAITLISTED
                if status == CONFIRMED and session.confirmed_count >= session.capacity:
                    status = WAITLISTED
                enrollment = Enrollment(
                    session=session,
                    staff_member=member,
                    municipality_id=member.municipality_id,
                    status=status,
                    source="self",
                    approval_step=step,
                    arrival_seq=seq,
                    requested_at=session.starts_at - timedelta(days=20, minutes=-m_index),
                    confirmed_at=session.starts_at - timedelta(days=20) if status == CONFIRMED else None,
                    waitlisted_at=session.starts_at - timedelta(days=20) if status == WAITLISTED else None,
                    requested_by_id=member.user_id,
                )
                if status == CONFIRMED:
                    session.confirmed_count += 1
                    if quota:
                        quota.confirmed_count += 1
                db.session.add(enrollment)
                if status == CONFIRMED and session.series_id == session.id:
                    for part in course.sessions:  # the place in every later part (source "series")
                        if part is session:
                            continue
                        seq += 1
                        db.session.add(Enrollment(
                            session=part, staff_member=member, municipality_id=member.municipality_id,
                            status=CONFIRMED, source="series", arrival_seq=seq, requested_at=enrollment.requested_at,
                            confirmed_at=enrollment.confirmed_at, requested_by_id=member.user_id))
                        part.confirmed_count += 1
    db.session.flush()
