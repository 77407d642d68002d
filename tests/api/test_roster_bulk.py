"""POST /api/v1/staff/bulk: an HR system's whole feed as a job, processed in parts by the
worker with the CSV import's rules, every entry with its result; resumable after a crash."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from lms.api import roster_jobs
from lms.api.models import RosterJob, RosterJobPart, RosterJobRow
from lms.api.webhooks.models import WebhookEndpoint, WebhookMessage
from lms.audit.models import AuditLog
from lms.common.timeutil import utcnow
from lms.roster.models import StaffHistory, StaffMember
from tests.api.conftest import A, B, assert_problem
from tests.factories import make_staff, municipality


def _entry(number: str, **changes) -> dict:
    entry = {"employee_number": number, "full_name": f"連携 {number}", "full_name_kana": "ﾚﾝｹｲ",
             "department": "総務課", "job_title": "主事", "sign_in_name": f"{number.lower()}@city.example.lg.jp",
             "hired_on": "2024-04-01"}
    entry.update(changes)
    return entry


def _run(job_id: int) -> RosterJob:
    job = roster_jobs.run_job(job_id)
    assert job is not None
    return job


def test_a_feed_is_a_job_with_a_result_per_entry(api, db, monkeypatch):
    monkeypatch.setattr(roster_jobs, "PART", 4)  # several parts
    stays = make_staff(A, employee_number="S0001", full_name="連携 S0001", full_name_kana="レンケイ",
                       department="総務課", job_title="主事", sign_in_name="s0001@city.example.lg.jp",
                       email="", hired_on=None)
    moves = make_staff(A, employee_number="S0002", department="総務課", job_title="主事",
                       sign_in_name="s0002@city.example.lg.jp")
    leaves = make_staff(A, employee_number="S0003", sign_in_name="s0003@city.example.lg.jp")
    db.session.add(WebhookEndpoint(municipality_id=municipality(A).id, url="https://hr.example.lg.jp/hooks",
                                   event_types="roster.job_finished", secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
    db.session.commit()
    entries = [
        _entry("S0001", email="", hired_on=None),                              # 1 unchanged
        _entry("S0002", department="企画課", job_title="主任"),                  # 2 transferred
        _entry("S0003", department=leaves.department, job_title=leaves.job_title,
               full_name=leaves.full_name, full_name_kana=leaves.full_name_kana,
               hired_on=None, email=leaves.email, left_on="2026-03-31"),        # 3 left
        _entry("N0001"),                                                        # 4 added
        _entry("N0001", full_name="重複"),                                       # 5 refused: duplicate
        _entry("N0002", sign_in_name="not-an-address"),                         # 6 refused: sign-in
        {"employee_number": "N0003", "full_name": 42},                          # 7 refused: a number
        "not an object",                                                        # 8 refused
        _entry("N0004", surname="unknown field"),                               # 9 refused
        _entry("N0005", job_grade="係長級"),                                      # 10 added
    ]
    response = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": entries})
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "queued" and body["total"] == 10 and body["processed"] == 0
    assert response.headers["Location"].endswith(f"/api/v1/roster-jobs/{body['id']}")
    stored = [(part.part, len(json.loads(part.payload))) for part in db.session.scalars(
        select(RosterJobPart).where(RosterJobPart.job_id == body["id"]).order_by(RosterJobPart.part))]

    _run(body["id"])
    job = api("writer_a", "get", f"/api/v1/roster-jobs/{body['id']}").get_json()
    assert job["status"] == "finished" and job["processed"] == 10
    assert job["counts"] == {"unchanged": 1, "transferred": 1, "left": 1, "added": 2, "refused": 5}

    results = api("writer_a", "get", f"/api/v1/roster-jobs/{body['id']}/results?limit=4")
    page1 = results.get_json()
    assert [r["row"] for r in page1["items"]] == [1, 2, 3, 4] and page1["next"]
    rest = api("writer_a", "get", page1["next"].replace("http://localhost", "")).get_json()
    assert [r["row"] for r in rest["items"]] == [5, 6, 7, 8] and rest["next"]
    outcomes = {r["row"]: r for r in page1["items"] + rest["items"]}
    assert [outcomes[n]["outcome"] for n in range(1, 9)] == [
        "unchanged", "transferred", "left", "added", "refused", "refused", "refused", "refused"]
    assert "重複" in outcomes[5]["message"] and "サインイン名" in outcomes[6]["message"]
    assert "full_name" in outcomes[7]["message"]
    refused = api("writer_a", "get", f"/api/v1/roster-jobs/{body['id']}/results?outcome=refused").get_json()
    assert [r["row"] for r in refused["items"]] == [5, 6, 7, 8, 9]

    db.session.expire_all()
    assert (db.session.get(StaffMember, moves.id).department, db.session.get(StaffMember, moves.id).job_title) == \
        ("企画課", "主任")
    gone = db.session.get(StaffMember, leaves.id)
    assert gone.status == "left" and str(gone.left_on) == "2026-03-31"
    kinds = {(h.staff_member_id, h.kind) for h in db.session.scalars(select(StaffHistory))}
    assert {(moves.id, "transfer"), (leaves.id, "left")} <= kinds
    added = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "N0005"))
    assert added.job_grade == "係長級" and added.source == "api" and added.full_name_kana == "レンケイ"
    assert db.session.get(StaffMember, stays.id).updated_at == stays.updated_at
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "roster.bulk_upsert"))
    assert audit.details["added"] == 2 and audit.details["roster_job_id"] == body["id"]
    finished = db.session.scalar(select(WebhookMessage).where(WebhookMessage.event_type == "roster.job_finished"))
    assert finished is not None and '"refused":5' in finished.payload
    # The feed was stored in parts of PART entries, and is not kept once processed.
    assert stored == [(0, 4), (1, 4), (2, 2)]
    assert db.session.scalars(select(RosterJobPart.part).where(RosterJobPart.job_id == body["id"])).all() == []
    # Done is done: running it again changes nothing.
    assert roster_jobs.run_job(body["id"]) is None


def test_a_job_whose_worker_died_resumes_at_the_next_part(api, db, monkeypatch):
    monkeypatch.setattr(roster_jobs, "PART", 3)
    entries = [_entry(f"R{n:04d}") for n in range(1, 9)] + [_entry("R0002", full_name="後から重複")]
    job_id = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": entries}).get_json()["id"]
    real, calls = roster_jobs.upsert_staff_entries, []

    def dies_on_the_second_part(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("the worker was killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(roster_jobs, "upsert_staff_entries", dies_on_the_second_part)
    with pytest.raises(SystemExit):
        roster_jobs.run_job(job_id)
    db.session.rollback()
    job = db.session.get(RosterJob, job_id)
    assert (job.status, job.processed) == ("running", 3)
    assert roster_jobs.run_job(job_id) is None  # its heartbeat is fresh: another worker may hold it
    db.session.execute(update(RosterJob).where(RosterJob.id == job_id)
                       .values(heartbeat_at=utcnow() - roster_jobs.STALE - timedelta(seconds=1)))
    db.session.commit()
    assert roster_jobs.resume_stalled() == [job_id]
    job = api("writer_a", "get", f"/api/v1/roster-jobs/{job_id}").get_json()
    assert job["status"] == "finished" and job["counts"] == {"added": 8, "refused": 1}
    rows = api("writer_a", "get", f"/api/v1/roster-jobs/{job_id}/results").get_json()["items"]
    assert [r["row"] for r in rows] == list(range(1, 10))
    assert rows[-1]["outcome"] == "refused" and "重複" in rows[-1]["message"]  # a part done before the crash counts
    assert db.session.scalar(select(StaffMember.id).where(StaffMember.employee_number == "R0008")) is not None


def test_the_request_is_checked_as_a_whole(api, db, monkeypatch):
    url = "/api/v1/staff/bulk"
    assert_problem(api("writer_a", "post", url, data="{}", headers={"Content-Type": "text/plain"}), 415)
    assert_problem(api("writer_a", "post", url, data="{not json", headers={"Content-Type": "application/json"}), 400)
    assert_problem(api("writer_a", "post", url, json=[]), 422, "invalid-input")
    assert_problem(api("writer_a", "post", url, json={"entries": []}), 422, "invalid-input")
    assert_problem(api("writer_a", "post", url, json={"entries": [_entry("X1")], "extra": 1}), 422, "invalid-input")
    assert_problem(api("writer_a", "post", url, json={"entries": [_entry("X1")], "municipality_code": 131016}), 422)
    monkeypatch.setattr(roster_jobs, "MAX_ENTRIES", 3)
    too_many = assert_problem(api("writer_a", "post", url, json={"entries": [_entry(f"X{n}") for n in range(4)]}), 422)
    assert "entries" in too_many["errors"]
    assert_problem(api("reader_a", "post", url, json={"entries": [_entry("X1")]}), 403, "forbidden")
    assert_problem(api("platform", "post", url, json={"entries": [_entry("X1")]}), 422, "invalid-input")
    assert_problem(api("writer_a", "post", url, json={"entries": [_entry("X1")], "municipality_code": B}), 404)
    assert db.session.scalar(select(RosterJob.id)) is None


def test_another_municipality_does_not_see_the_job(api, db):
    created = api("platform", "post", "/api/v1/staff/bulk", json={"entries": [_entry("P1")], "municipality_code": B})
    assert created.status_code == 202
    job_id = created.get_json()["id"]
    assert created.get_json()["municipality_code"] == B
    assert_problem(api("writer_a", "get", f"/api/v1/roster-jobs/{job_id}"), 404, "not-found")
    assert_problem(api("writer_a", "get", f"/api/v1/roster-jobs/{job_id}/results"), 404, "not-found")
    assert api("platform", "get", f"/api/v1/roster-jobs/{job_id}").status_code == 200
    assert_problem(api("platform", "get", f"/api/v1/roster-jobs/{job_id}/results?cursor=bm9wZQ"), 400,
                   "invalid-cursor")


def test_a_feed_sent_again_with_its_idempotency_key_is_one_job(api, db):
    """An HR system's retry after a timeout: the same key and feed answer with the first job
    (202, Idempotent-Replayed), whatever state it is in; the same key with another feed is
    refused; a key is the client's own; without a key each request is a job."""
    url = "/api/v1/staff/bulk"
    feed = {"entries": [_entry("K0001"), _entry("K0002")]}
    key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
    first = api("writer_a", "post", url, json=feed, headers={"Idempotency-Key": f'"{key}"'})
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    job_id = first.get_json()["id"]
    _run(job_id)
    again = api("writer_a", "post", url, json=feed, headers={"Idempotency-Key": key})  # bare: the same key
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json()["id"] == job_id and again.get_json()["status"] == "finished"
    assert again.get_json()["counts"] == {"added": 2}

    other_feed = {"entries": [_entry("K0001", department="企画課")]}
    reused = assert_problem(api("writer_a", "post", url, json=other_feed, headers={"Idempotency-Key": key}),
                            422, "idempotency-key-reused")
    assert str(job_id) in reused["detail"]
    for bad in ("", '""', '"unbalanced', "with space", "x" * 256, "日本語"):
        assert_problem(api("writer_a", "post", url, json=feed, headers={"Idempotency-Key": bad.encode().decode("latin-1")}),
                       400, "invalid-idempotency-key")
    own = api("platform", "post", url, json={**feed, "municipality_code": A}, headers={"Idempotency-Key": key})
    assert own.status_code == 202 and own.get_json()["id"] != job_id  # another client's key space
    assert api("writer_a", "post", url, json=feed).get_json()["id"] not in (job_id, own.get_json()["id"])
    assert db.session.scalar(select(func.count()).select_from(RosterJob)) == 3
    accepted = db.session.scalars(select(AuditLog).where(AuditLog.action == "roster.bulk_accepted")).all()
    assert len(accepted) == 3  # the replay did nothing to audit


def test_a_feed_sent_three_times_at_once_with_one_key_is_one_job(token, clients, live_server, db):
    """Three copies in flight together (PostgreSQL: the later ones wait on the unique index
    for the first's commit; SQLite: on the write lock): one job, three answers naming it."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    headers = {"Authorization": f"Bearer {token('writer_a')}", "Idempotency-Key": "retry-3-at-once"}
    feed = {"entries": [_entry(f"T{n:04d}") for n in range(2000)]}  # two parts: the first's write takes a moment
    start = threading.Barrier(3)

    def post(_n):
        start.wait(10)
        return requests.post(f"{live_server.url}/api/v1/staff/bulk", json=feed, headers=headers, timeout=60)

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(post, range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true", "true"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(RosterJob)) == 1


def test_entries_holding_nul_are_refused_and_their_results_kept(api, db):
    """Found by a hostile-input sweep on PostgreSQL: a refused entry's number and message echo
    what the client sent, and a NUL in them stopped the job (PostgreSQL cannot store one)."""
    entries = [_entry("N\x000001"), _entry("N0002", full_name="連携\x00太郎"), {"employee_number\x00": "N0003"},
               _entry("N0004")]
    response = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": entries})
    assert response.status_code == 202, response.get_data(as_text=True)
    job = _run(response.get_json()["id"])
    assert job.status == "finished"
    results = {r["row"]: r for r in api("writer_a", "get", f"/api/v1/roster-jobs/{job.id}/results").get_json()["items"]}
    assert [results[n]["outcome"] for n in (1, 2, 3, 4)] == ["refused", "refused", "refused", "added"]
    assert results[1]["employee_number"] == "N\ufffd0001" and "employee_number" in results[1]["message"]
    assert "full_name" in results[2]["message"] and "employee_number\ufffd" in results[3]["message"]


def test_a_feed_without_mail_or_hire_date_keeps_them(api, db):
    make_staff(A, employee_number="K0100", full_name="連携 K0100", full_name_kana="レンケイ", department="総務課",
               job_title="主事", sign_in_name="k0100@city.example.lg.jp", email="k0100@city.example.lg.jp",
               hired_on=None)
    db.session.execute(update(StaffMember).where(StaffMember.employee_number == "K0100")
                       .values(hired_on=utcnow().date()))
    db.session.commit()
    entry = {key: value for key, value in _entry("K0100").items() if key not in ("email", "hired_on")}
    sent = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": [entry]})
    assert sent.status_code == 202, sent.get_json()
    _run(sent.get_json()["id"])
    results = api("writer_a", "get", f"/api/v1/roster-jobs/{sent.get_json()['id']}/results").get_json()["items"]
    assert [r["outcome"] for r in results] == ["unchanged"], results
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0100"))
    assert (member.email, member.hired_on) == ("k0100@city.example.lg.jp", utcnow().date())


def test_feed_entries_follow_the_departure_rules(api, db):
    """A departure before the 採用日, or a change to an entry already left, is refused by name."""
    left = make_staff(A, employee_number="K0101", department="総務課", job_title="主事",
                      sign_in_name="k0101@city.example.lg.jp", hired_on=None)
    db.session.execute(update(StaffMember).where(StaffMember.id == left.id)
                       .values(status="left", left_on=utcnow().date() - timedelta(days=10)))
    db.session.commit()
    entries = [_entry("K0102", hired_on="2025-04-01", left_on="2020-01-01"),
               _entry("K0101", full_name=left.full_name, full_name_kana=left.full_name_kana, email=left.email,
                      hired_on=None, department="企画課", left_on=utcnow().date().isoformat())]
    sent = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": entries})
    _run(sent.get_json()["id"])
    results = api("writer_a", "get", f"/api/v1/roster-jobs/{sent.get_json()['id']}/results").get_json()["items"]
    assert [r["outcome"] for r in results] == ["refused", "refused"], results
    assert "採用日" in results[0]["message"]
    assert "所属" in results[1]["message"] and "退職・転出日" in results[1]["message"]
    assert db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0102")) is None


def test_results_are_worded_for_a_feed_in_the_language_asked_for(api, db, app):
    """The results speak of entries and of fields as the API names them, in the language of
    the request's Accept-Language (kept with the job: the worker has no request)."""
    entries = [_entry("K0200"), _entry("K0200", full_name="重複"), _entry("K0201", full_name="  "),
               _entry("K0202", full_name=42)]
    for language in ("ja", "en"):
        sent = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": entries},
                   headers={"Accept-Language": language})
        _run(sent.get_json()["id"])
        results = api("writer_a", "get", f"/api/v1/roster-jobs/{sent.get_json()['id']}/results?outcome=refused",
                      headers={"Accept-Language": language}).get_json()["items"]
        messages = [r["message"] for r in results]
        assert len(messages) == 3, results
        if language == "en":  # (a message translated already: the job keeps the language)
            assert not any("\u3040" <= ch <= "\u30ff" for ch in messages[2]), messages[2]
        assert "employee_number" in messages[0] and "full_name" in messages[1]
        assert not any(word in " ".join(messages) for word in ("ファイル", "行目", "氏名"))
        if language == "ja":
            assert "エントリ 1" in messages[0]
        else:
            assert "entry 1" in messages[0] and not any("\u3040" <= ch <= "\u30ff" for ch in " ".join(messages))


def _kana(text: str) -> bool:
    return any("\u3040" <= ch <= "\u30ff" for ch in text)


def _results_in(api, job_id: int, language: str) -> dict[int, dict]:
    items = api("writer_a", "get", f"/api/v1/roster-jobs/{job_id}/results",
                headers={"Accept-Language": language}).get_json()["items"]
    return {r["row"]: r for r in items}


def test_results_are_worded_in_the_language_of_whoever_reads_them(api, db):
    """A job's results are kept without a language (a message id and its parameters) and worded
    for each reader: a feed sent in English reads in Japanese for a Japanese reader, and the
    other way round — dates, field names and the API's own refusals included."""
    left = make_staff(A, employee_number="L0301", department="総務課", job_title="主事",
                      sign_in_name="l0301@city.example.lg.jp", hired_on=None)
    make_staff(A, employee_number="L0302", full_name="連携 L0302", full_name_kana="レンケイ", department="総務課",
               job_title="主事", sign_in_name="l0302@city.example.lg.jp", email="", hired_on=None)
    db.session.execute(update(StaffMember).where(StaffMember.id == left.id)
                       .values(status="left", left_on=utcnow().date().replace(month=1, day=5)))
    db.session.commit()
    entries = [_entry("L0300"), _entry("L0300", full_name="重複"),                  # 1 added, 2 duplicate
               _entry("L0303", full_name=42),                                       # 3 not a string
               _entry("L0304", sign_in_name="not-an-address"),                      # 4 sign-in
               _entry("L0301", full_name=left.full_name, full_name_kana=left.full_name_kana, email=left.email,
                      hired_on=None, department="企画課",
                      left_on=utcnow().date().isoformat()),                         # 5 left already
               _entry("L0302", email="", hired_on=None, full_name="連携 二郎"),     # 6 updated: 氏名
               _entry("L0305", full_name="長" * 101, hired_on="1800-01-01")]       # 7 too long, too early
    year = utcnow().date().year
    for sent_in in ("en", "ja"):
        sent = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": entries},
                   headers={"Accept-Language": sent_in})
        assert sent.status_code == 202, sent.get_json()
        job_id = sent.get_json()["id"]
        _run(job_id)
        ja, en = _results_in(api, job_id, "ja"), _results_in(api, job_id, "en")
        if sent_in == "ja":  # (the first feed added L0300; the second finds it)
            assert ja[1]["outcome"] == "unchanged"
        assert [ja[n]["outcome"] for n in (2, 3, 4, 5, 7)] == ["refused"] * 5, ja
        assert ja[6]["outcome"] == ("updated" if sent_in == "en" else "unchanged"), ja[6]
        assert "エントリ 1" in ja[2]["message"] and "重複" in ja[2]["message"]
        assert "文字列で指定してください" in ja[3]["message"] and "full_name" in ja[3]["message"]
        assert "メールアドレスの形式ではありません" in ja[4]["message"]
        assert f"{year}年1月5日" in ja[5]["message"] and "所属、退職・転出日" in ja[5]["message"]
        assert "entry 1" in en[2]["message"]
        assert "full_name" in en[3]["message"]
        assert f"{year}-01-05" in en[5]["message"]
        assert "100文字以内" in ja[7]["message"] and "から" in ja[7]["message"] and "100" in en[7]["message"]
        for n in (2, 3, 4, 5, 7):
            assert not _kana(en[n]["message"]), en[n]["message"]
            assert _kana(ja[n]["message"]), ja[n]["message"]
        if sent_in == "en":
            assert "氏名" in ja[6]["message"] and en[6]["message"] and not _kana(en[6]["message"])


def test_a_result_stored_as_text_before_message_ids_is_shown_as_it_is(api, db):
    sent = api("writer_a", "post", "/api/v1/staff/bulk", json={"entries": [_entry("L0400")]})
    job_id = sent.get_json()["id"]
    _run(job_id)
    db.session.execute(update(RosterJobRow).where(RosterJobRow.job_id == job_id)
                       .values(outcome="refused", message="Stored in English before results kept their ids.",
                               message_id="", message_params=None))
    db.session.commit()
    for language in ("ja", "en"):
        assert _results_in(api, job_id, language)[1]["message"] == "Stored in English before results kept their ids."
