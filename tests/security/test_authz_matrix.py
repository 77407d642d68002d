"""Authorization matrix: every route in app.url_map, called as each role with object IDs that
belong to another user or another municipality, compared with the table below.

Outcomes: "ok" (2xx, or a redirect other than to sign-in — e.g. back to a form with a
message), "L" (sent to sign-in), or the 4xx status: "403" (refused for the role, whatever the
object), "404" (refused: the object is not the user's, answered exactly as one that does not
exist — the second test below holds that for every route), "400"/"409"/"412"
(an access-checked request refused by validation or a business rule: POSTs send an empty
form). A 5xx is always a failure. A route missing from the table fails the test.

Roles (columns): anonymous, learner of A, trainer (not the owner of the objects),
municipal admin of A, municipal admin of B, platform admin. A = 千代田区 (131016),
B = 八王子市 (132012). The objects: a course owned by another trainer and open to B only,
its session, an
enrollment / staff member / completion / assignment / mail of municipality B, an archive
of that course with a file, an upload session of the other trainer.

Run with AUTHZ_PRINT=1 to print the observed table (to review a new route's row).
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from lms.common.ids import MAX_ID
from lms.common.jobs import worker_heartbeat
from tests.factories import sign_in

ROLES = ("anonymous", "learner", "trainer", "admin_a", "admin_b", "platform")

# endpoint METHOD: outcomes for (anonymous, learner, trainer, admin_a, admin_b, platform)
EXPECTED = {
    "main.home GET": "ok ok ok ok ok ok",
    "activities.answer GET": "L 404 404 404 404 404",
    "activities.answer POST": "L 404 404 404 404 404",
    "activities.start_attempt POST": "L 404 404 404 404 404",
    "activities.manage GET": "L 403 404 403 403 ok",
    "activities.manage POST": "L 403 404 403 403 400",
    "activities.publish POST": "L 403 404 403 403 ok",
    "activities.add_question POST": "L 403 404 403 403 400",
    "activities.edit_question GET": "L 403 404 403 403 ok",
    "activities.edit_question POST": "L 403 404 403 403 400",
    "activities.move_question POST": "L 403 404 403 403 ok",
    "activities.delete_question GET": "L 403 404 403 403 ok",
    "activities.delete_question POST": "L 403 404 403 403 ok",
    "activities.course_activities GET": "L 403 404 403 403 ok",
    "activities.course_activities POST": "L 403 404 403 403 400",
    "activities.reports GET": "L 403 ok ok ok ok",
    # (an empty form chooses neither 確認 nor 差し戻し: the list again, the error at that report)
    "activities.review POST": "L 403 404 404 422 422",
    "activities.results GET": "L 403 404 403 403 ok",
    "activities.results_export GET": "L 403 404 403 403 ok",
    "activities.attached_file GET": "L 404 404 404 ok ok",
    "courses.copy_course POST": "L 403 404 403 403 ok",
    "activities.question_bank GET": "L 403 404 403 403 ok",
    "activities.question_bank POST": "L 403 404 403 403 400",
    "activities.delete_bank_question GET": "L 403 404 403 403 ok",
    "activities.delete_bank_question POST": "L 403 404 403 403 ok",
    "activities.save_to_bank POST": "L 403 404 403 403 ok",
    "activities.add_from_bank POST": "L 403 404 403 403 ok",
    "admin.index GET": "L 403 403 403 403 ok",
    "admin.audit GET": "L 403 403 403 403 ok",
    "admin.audit_export POST": "L 403 403 403 403 ok",
    "admin.outbox GET": "L 403 403 ok ok ok",
    "admin.outbox_detail GET": "L 403 403 404 ok ok",
    "admin.outbox_retry POST": "L 403 403 404 ok ok",
    "archives.index GET": "L ok ok ok ok ok",
    "archives.view GET": "L 404 ok 404 ok ok",
    "archives.file GET": "L 404 ok 404 ok ok",
    "archives.file_link GET": "L 404 ok 404 ok ok",
    "archives.media GET": "403 403 403 403 403 403",
    "archives.progress POST": "L 404 400 404 400 400",
    "archives.manage GET": "L 403 ok 403 403 ok",
    "archives.detail GET": "L 403 404 403 403 ok",
    "archives.edit GET": "L 403 404 403 403 ok",
    "archives.edit POST": "L 403 404 403 403 ok",
    "archives.publish POST": "L 403 404 403 403 ok",
    "archives.tus_create POST": "L 403 412 403 403 412",
    "archives.withdraw POST": "L 403 404 403 403 ok",
    "archives.create GET": "L 403 ok 403 403 ok",
    "archives.create POST": "L 403 ok 403 403 ok",
    "archives.search GET": "L ok ok ok ok ok",
    "archives.tus_options OPTIONS": "L ok ok ok ok ok",
    "archives.tus_resource DELETE": "L 403 412 403 403 412",
    "archives.tus_resource PATCH": "L 403 412 403 403 412",
    "attendance.check_in GET": "L 404 404 404 404 404",
    "attendance.match_record POST": "L 404 404 404 404 ok",
    "attendance.qr GET": "L 404 404 404 404 ok",
    "attendance.rotate_qr POST": "L 404 404 404 404 ok",
    "attendance.roll_call GET": "L 404 404 404 404 ok",
    "attendance.roll_call POST": "L 404 404 404 404 ok",
    "attendance.report_upload GET": "L 404 404 404 404 ok",
    # An empty form: the file is required (the page again, with the message).
    "attendance.report_upload POST": "L 404 404 404 404 ok",
    # The upload is the other trainer's: even a platform admin, who may manage the session, finds none.
    "attendance.report_preview GET": "L 404 404 404 404 404",
    "attendance.report_preview POST": "L 404 404 404 404 404",
    "auth.callback GET": "404 404 404 404 404 404",
    "auth.demo GET": "ok ok ok ok ok ok",
    "auth.demo POST": "ok ok ok ok ok ok",
    "auth.login_page GET": "ok ok ok ok ok ok",
    "auth.start GET": "404 404 404 404 404 404",
    "auth.logout POST": "ok ok ok ok ok ok",
    "auth.logout_everywhere POST": "L ok ok ok ok ok",
    # Signing a user (a learner of B) out of every device: their municipality's admin, or a platform admin.
    "admin.sign_out_user POST": "L 403 403 404 ok ok",
    "admin.tenants GET": "L 403 403 403 403 ok",
    "admin.tenants POST": "L 403 403 403 403 400",
    # The page moved to /admin/tenants: a permanent redirect for everyone.
    "auth.tenants GET": "ok ok ok ok ok ok",
    "completion.verify_certificate GET": "ok ok ok ok ok ok",
    "completion.revoke POST": "L 403 404 403 403 ok",
    "completion.assignment_edit GET": "L 403 403 404 ok ok",
    "completion.assignment_edit POST": "L 403 403 404 ok ok",
    "completion.missing GET": "L 403 403 404 ok ok",
    "completion.assignment_new GET": "L 403 403 ok ok ok",
    "completion.assignment_new POST": "L 403 403 ok ok ok",
    "completion.certificate GET": "L 404 404 404 ok ok",
    "completion.comparison GET": "L 403 403 403 403 ok",
    "completion.course_completions GET": "L 403 404 403 403 ok",
    "completion.course_completions POST": "L 403 404 403 403 ok",
    "completion.certificates_zip GET": "L 403 403 ok ok ok",
    "completion.dashboard GET": "L 403 403 ok ok ok",
    "completion.export GET": "L 403 403 ok ok ok",
    "completion.history GET": "L ok ok ok ok ok",
    "completion.records GET": "L 403 403 ok ok ok",
    "courses.catalogue GET": "L ok ok ok ok ok",
    "courses.course_detail GET": "L ok ok ok ok ok",
    # admin_b cancels the B learner's enrollment; the platform admin then finds it cancelled.
    "enrollment.cancel POST": "L 404 404 404 ok 409",
    # The cancel button's confirmation page: not yours → 404; already cancelled → back with a message.
    "enrollment.cancel GET": "L 404 404 404 ok ok",
    "main.healthz GET": "ok ok ok ok ok ok",
    "main.hello GET": "ok ok ok ok ok ok",
    "main.readyz GET": "ok ok ok ok ok ok",
    "main.set_language POST": "ok ok ok ok ok ok",
    "courses.manage GET": "L 403 ok 403 403 ok",
    "courses.manage_course GET": "L 403 404 403 403 ok",
    "courses.cancel_course GET": "L 403 404 403 403 ok",
    "courses.cancel_course POST": "L 403 404 403 403 ok",
    "courses.edit_course GET": "L 403 404 403 403 ok",
    "courses.edit_course POST": "L 403 404 403 403 ok",
    "courses.path_list GET": "L 403 403 403 403 ok",
    "courses.path_new GET": "L 403 403 403 403 ok",
    "courses.path_new POST": "L 403 403 403 403 ok",
    "courses.path_edit GET": "L 403 403 403 403 ok",
    "courses.path_edit POST": "L 403 403 403 403 ok",
    "courses.path_delete GET": "L 403 403 403 403 ok",
    "courses.path_delete POST": "L 403 403 403 403 ok",
    "courses.course_prerequisites GET": "L 403 404 403 403 ok",
    "courses.course_prerequisites POST": "L 403 404 403 403 ok",
    "courses.publish_course POST": "L 403 404 403 403 ok",
    "courses.new_session GET": "L 403 404 403 403 ok",
    "courses.new_session POST": "L 403 404 403 403 ok",
    "courses.unpublish_course POST": "L 403 404 403 403 ok",
    "courses.new_course GET": "L 403 ok 403 403 ok",
    "courses.new_course POST": "L 403 ok 403 403 ok",
    "courses.cancel_session GET": "L 403 404 403 403 ok",
    "courses.cancel_session POST": "L 403 404 403 403 ok",
    "courses.edit_session GET": "L 403 404 403 403 ok",
    "courses.edit_session POST": "L 403 404 403 403 ok",
    "courses.new_part GET": "L 403 404 403 403 ok",
    "courses.new_part POST": "L 403 404 403 403 ok",
    "courses.new_makeup GET": "L 403 404 403 403 ok",
    "courses.new_makeup POST": "L 403 404 403 403 ok",
    "enrollment.my_page GET": "L ok ok ok ok ok",
    "enrollment.admin_home GET": "L 403 403 ok ok ok",
    "enrollment.approve POST": "L 403 403 404 ok ok",
    "enrollment.reject POST": "L 403 403 404 422 422",
    "enrollment.return_request POST": "L 403 403 404 422 422",
    "enrollment.swap POST": "L 403 403 404 422 422",  # an empty form: refused beside the row
    "enrollment.nominate_csv GET": "L 403 403 ok ok ok",
    "enrollment.nominate_csv POST": "L 403 403 ok ok ok",
    # The platform admin's POST to /manage/courses/<id>/cancel, walked before, called the course
    # off: B's office then finds its session as it finds the course page, not found (a live
    # course's session page is B's to see: tests/roster/test_municipal_admin.py).
    "enrollment.session_page GET": "L 403 403 404 404 ok",
    "enrollment.selection GET": "L 403 404 403 403 ok",
    "enrollment.selection POST": "L 403 404 403 403 409",
    "enrollment.nominate POST": "L 403 403 ok ok ok",  # (no person chosen: said on the page it came from)
    "roster.index GET": "L 403 403 ok ok ok",
    "roster.detail GET": "L 403 403 404 ok ok",
    "roster.edit GET": "L 403 403 404 ok ok",
    "roster.edit POST": "L 403 403 404 ok ok",
    "roster.leave POST": "L 403 403 404 422 422",  # an empty form: refused beside its field
    "roster.transfer POST": "L 403 403 404 422 422",
    "roster.export_csv GET": "L 403 403 ok ok ok",
    "roster.import_csv GET": "L 403 403 ok ok ok",
    "roster.import_csv POST": "L 403 403 ok ok ok",
    "roster.new GET": "L 403 403 ok ok ok",
    "roster.new POST": "L 403 403 ok ok ok",
    "teams.sync_roster POST": "L 403 403 ok ok ok",
    "notifications.session_calendar GET": "L 404 404 404 ok ok",
    # 所属長の承認 (tests/enrollment/test_supervisor_approval.py): everyone may look (a person who
    # heads no 所属 sees none); nobody in the matrix heads one, so every request is missing.
    "enrollment.supervisor_approvals GET": "L ok ok ok ok ok",
    "enrollment.supervisor_approve POST": "L 404 404 404 404 404",
    "enrollment.supervisor_reject POST": "L 404 404 404 404 404",
    "enrollment.supervisor_return POST": "L 404 404 404 404 404",
    # Sending a returned request again: only its learner (everyone else's is missing).
    "enrollment.resubmit POST": "L 404 404 404 404 404",
    # A head's stand-ins: naming one needs a head (422 with the message for everyone else); a
    # stand-in of someone else's is missing.
    "enrollment.delegate_approvals POST": "L 422 422 422 422 422",
    "enrollment.end_delegation GET": "L 404 404 404 404 404",
    "enrollment.end_delegation POST": "L 404 404 404 404 404",
    # Each person's own choice of Teams, mail or both (tests/teams/test_activity_notices.py).
    "notifications.notice_settings GET": "L ok ok ok ok ok",
    "notifications.notice_settings POST": "L ok ok ok ok ok",
    # Nobody signed in here is a B learner with a roster entry eligible for the course: refused by rule.
    "enrollment.enroll POST": "L 409 409 409 409 409",
    "static GET": "ok ok ok ok ok ok",
    "teams.graph_notifications POST": "400 400 400 400 400 400",
    "teams.retry_operation POST": "L 403 403 403 403 ok",
    "teams.session_detail GET": "L 404 404 404 404 ok",
    # An empty correction (the page again, with the errors beside the fields).
    "teams.session_detail POST": "L 404 404 404 404 400",
    "teams.import_now POST": "L 404 404 404 404 ok",
    "teams.sync_meeting POST": "L 404 404 404 404 ok",
    "teams.status GET": "L 403 403 403 403 ok",
    # Viva Learning (tests/teams/test_viva.py): platform admins only; the tenant is named by one of
    # its mappings (B's). Its courses' thumbnail is public (Viva Learning shows it to the tenant's users).
    "teams_viva.index GET": "L 403 403 403 403 ok",
    "teams_viva.tenant GET": "L 403 403 403 403 ok",
    "teams_viva.tenant POST": "L 403 403 403 403 ok",
    "teams_viva.reconcile POST": "L 403 403 403 403 ok",
    "teams_viva.disable GET": "L 403 403 403 403 ok",
    "teams_viva.disable POST": "L 403 403 403 403 ok",
    "teams_viva.thumbnail GET": "ok ok ok ok ok ok",
    # The Teams app package (tests/teams/test_app_package.py); without ENTRA_CLIENT_ID the download
    # goes back to the page, which says why.
    "teams.app_page GET": "L 403 403 403 403 ok",
    "teams.app_package_zip GET": "L 403 403 403 403 ok",
    # The Teams tab signs people in itself (tests/teams/test_tab.py): without Entra configured
    # its single sign-on is not there; an empty hand-over is refused.
    "teams_tab.tab GET": "ok ok ok ok ok ok",
    "teams_tab.sso POST": "404 404 404 404 404 404",
    "teams_tab.sign_in_window GET": "L L L L L L",
    "teams_tab.signed_in GET": "L ok ok ok ok ok",
    "teams_tab.redeem POST": "400 400 400 400 400 400",
    "archives.remove_file POST": "L 403 404 403 403 ok",
    "archives.dismiss_upload POST": "L 403 404 403 403 ok",
    "admin.remove_tenant POST": "L 403 403 403 403 ok",
    # admin_b deletes the assignment first; the platform admin then finds it gone.
    "completion.assignment_delete POST": "L 403 403 404 ok 404",
    # Its confirmation page (walked before the POSTs delete it).
    "completion.assignment_delete GET": "L 403 403 404 ok ok",
    # Added with the confirmation pages, the synonyms, the site pages and the printouts.
    "admin.remove_tenant GET": "L 403 403 403 403 ok",
    "admin.synonyms GET": "L 403 403 403 403 ok",
    "admin.delete_synonym GET": "L 403 403 403 403 ok",
    "admin.delete_synonym POST": "L 403 403 403 403 ok",
    # An empty group is refused with the form's message.
    "admin.synonyms POST": "L 403 403 403 403 400",
    "archives.withdraw GET": "L 403 404 403 403 ok",
    "archives.remove_file GET": "L 403 404 403 403 ok",
    "attendance.rotate_qr GET": "L 404 404 404 404 ok",
    "attendance.qr_poster GET": "L 404 404 404 404 ok",
    # Printed lists: a municipal admin sees their own municipality's participants of a session
    # that concerns it (B); A's admin finds no such session.
    "attendance.sign_in_sheet GET": "L 404 404 404 ok ok",
    "attendance.participants GET": "L 404 404 404 ok ok",
    "site.accessibility GET": "ok ok ok ok ok ok",
    "site.privacy GET": "ok ok ok ok ok ok",
    "site.edit GET": "L 403 403 403 403 ok",
    "site.edit POST": "L 403 403 403 403 400",
    # 年間研修計画: the platform admin plans and allocates; each training office answers the
    # survey for its own municipality (a platform admin without ?m= is sent to the plan).
    # The walk has cancelled the course by the time its session's allocation pages are
    # reached: a cancelled session leaves the plan, so they answer 404.
    "planning.index GET": "L 403 403 ok ok ok",
    "planning.index POST": "L 403 403 403 403 400",
    "planning.plan GET": "L 403 403 403 403 ok",
    "planning.publish POST": "L 403 403 403 403 400",
    "planning.allocate POST": "L 403 403 403 403 ok",
    "planning.adjust POST": "L 403 403 403 403 404",
    "planning.session_allocation GET": "L 403 403 403 403 404",
    "planning.publish_allocation POST": "L 403 403 403 403 404",
    "planning.survey GET": "L 403 403 ok ok ok",
    "planning.survey POST": "L 403 403 ok ok ok",
    "planning.survey_sheet GET": "L 403 403 ok ok ok",
    "planning.plan_sheet GET": "L 403 403 ok ok ok",
    "planning.plan_print GET": "L 403 403 ok ok ok",
    "planning.remind POST": "L 403 403 403 403 ok",
    # An office releases its own unused seats (the walk's session has left the plan by then:
    # 404; the platform admin without ?m= is sent to the plan).
    "planning.release POST": "L 403 403 404 404 ok",
    # Offices file for their own municipality (the session has left the plan by then: 404);
    # the platform admin decides (a rejection without a reason: back with the message).
    "planning.request_exchange POST": "L 403 403 404 404 ok",
    "planning.decide_exchange POST": "L 403 403 403 403 ok",
    # 研修負担金: the platform admin sets fees and bills; a municipality's statements and
    # charges are its own office's (B here) and the platform admin's.
    "planning.fee_settings GET": "L 403 403 403 403 ok",
    "planning.fee_settings POST": "L 403 403 403 403 ok",
    "planning.add_exemption POST": "L 403 403 403 403 400",
    "planning.issue_statement POST": "L 403 403 403 403 ok",
    "planning.fee_detail GET": "L 403 403 404 ok ok",
    "planning.statement GET": "L 403 403 404 ok ok",
    "planning.statement_sheet GET": "L 403 403 404 ok ok",
    "planning.statement_pdf GET": "L 403 403 404 ok ok",
    # An empty upload is refused with its message (the platform admin without ?m= is sent to the plan).
    "planning.survey_upload POST": "L 403 403 400 400 ok",
    # The integration API's client applications (platform admins); the form posted empty is refused.
    "api_clients.index GET": "L 403 403 403 403 ok",
    "api_clients.index POST": "L 403 403 403 403 400",
    "api_clients.revoke GET": "L 403 403 403 403 ok",
    "api_clients.revoke POST": "L 403 403 403 403 ok",
    # The integration API itself answers only bearer tokens of registered clients: a signed-in
    # browser gets 401 like anyone (tests/api/test_matrix.py walks it with each client).
    "api-docs.openapi_json GET": "ok ok ok ok ok ok",
    "api-docs.openapi_rapidoc GET": "ok ok ok ok ok ok",
    "api_v1.completions GET": "401 401 401 401 401 401",
    "api_v1.attendance GET": "401 401 401 401 401 401",
    "api_v1.viewing GET": "401 401 401 401 401 401",
    "api_v1.courses GET": "401 401 401 401 401 401",
    "api_v1.enrollments GET": "401 401 401 401 401 401",
    "api_v1.enrollment GET": "401 401 401 401 401 401",
    "api_v1.municipalities GET": "401 401 401 401 401 401",
    "api_v1.sessions GET": "401 401 401 401 401 401",
    "api_v1.staff GET": "401 401 401 401 401 401",
    "api_v1.staff_member GET": "401 401 401 401 401 401",
    "api_v1.put_staff_member PUT": "401 401 401 401 401 401",
    "api_v1.post_staff_bulk POST": "401 401 401 401 401 401",
    "api_v1.roster_job GET": "401 401 401 401 401 401",
    "api_v1.roster_job_results GET": "401 401 401 401 401 401",
    "webhooks.index GET": "L 403 403 ok ok ok",
    "webhooks.index POST": "L 403 403 400 400 400",
    "webhooks.detail GET": "L 403 403 404 ok ok",
    "webhooks.detail POST": "L 403 403 404 400 400",
    "webhooks.delivery GET": "L 403 403 404 ok ok",
    "webhooks.replay POST": "L 403 403 404 ok ok",
    "webhooks.disable GET": "L 403 403 404 ok ok",
    "webhooks.disable POST": "L 403 403 404 ok ok",
    "webhooks.enable POST": "L 403 403 404 ok ok",
    "webhooks.replay_failed POST": "L 403 403 404 ok ok",
    "webhooks.rotate GET": "L 403 403 404 ok ok",
    "webhooks.rotate POST": "L 403 403 404 ok ok",
    "webhooks.send_test POST": "L 403 403 404 ok ok",
    "webhooks.delete GET": "L 403 403 404 ok ok",
    # Municipality B's office deletes it; the platform admin then finds nothing.
    "webhooks.delete POST": "L 403 403 404 ok 404",
}


@pytest.fixture
def app_config(app_config):
    # A crash is recorded as an outcome (5xx) instead of stopping the walk.
    return {**app_config, "PROPAGATE_EXCEPTIONS": False, "LMS_LOG_REQUESTS": False}


def _url(rule, params) -> str:
    def fill(match):
        name = match.group(2)
        assert name in params, f"no sample object for <{name}> in {rule.rule}: add one to the world fixture"
        return str(params[name])

    return re.sub(r"<(?:([^:<>]+):)?([^<>]+)>", fill, rule.rule)


REMOVING = ("delete", "remove")


def _walk_order(rule):
    """Routes that remove their object run last, so that the others still find it."""
    return (any(word in rule.endpoint for word in REMOVING), rule.rule)


def _outcome(response) -> str:
    status = response.status_code
    if status in (301, 302, 303, 307, 308) and "/auth/login" in response.headers.get("Location", ""):
        return "L"
    if status == 401 and response.mimetype == "application/problem+json":
        return "401"  # the integration API: a bearer token or nothing (the session cookie counts for nothing)
    if status == 401:
        return "L"
    if status in (400, 403, 404, 405, 409, 412, 413, 422):
        return str(status)
    if status >= 500:
        return f"5xx({status})"
    return "ok"


def test_every_route_answers_each_role_as_the_table_says(app, world):
    params, users = world
    worker_heartbeat()  # /readyz: a worker is alive
    observed: dict[str, str] = {}
    for rule in sorted(app.url_map.iter_rules(), key=_walk_order):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["OPTIONS"]:
            key = f"{rule.endpoint} {method}"
            row = []
            for role in ROLES:
                client = app.test_client()
                if users[role] is not None:
                    sign_in(client, users[role])
                headers = {"Accept": "application/json"} if method != "GET" else {}
                response = client.open(_url(rule, params), method=method, headers=headers, buffered=True)
                row.append(_outcome(response))
            observed[key] = " ".join(row)
    if os.environ.get("AUTHZ_PRINT"):
        for key, row in observed.items():
            print(f'    "{key}": "{row}",')
    failures = [f"{key}: observed {row!r}, no entry in EXPECTED" for key, row in observed.items() if key not in EXPECTED]
    failures += [f"{key}: expected {EXPECTED[key]!r}, observed {row!r}" for key, row in observed.items()
                 if key in EXPECTED and EXPECTED[key] != row]
    failures += [f"{key}: 5xx" for key, row in observed.items() if "5xx" in row]
    stale = set(EXPECTED) - set(observed)
    assert not failures, "\n".join(failures)
    assert not stale, f"table rows for routes that no longer exist: {sorted(stale)}"
    print(f"authorization matrix: {len(observed)} routes x {len(ROLES)} roles = {len(observed) * len(ROLES)} calls")


def _unknown_params(params) -> dict:
    """The same parameters, every object id replaced by one that names nothing."""
    unknown = {name: (MAX_ID if isinstance(value, int) else value) for name, value in params.items()}
    unknown.update(upload_id=str(uuid.uuid4()), serial="T-000000000000")
    return unknown


def test_not_yours_is_answered_like_does_not_exist(app, world):
    """For every route naming an object and every role: when the object of another user or
    municipality is refused, an id that names nothing gets the very same answer (a 403 for
    one and a 404 for the other would tell which ids exist)."""
    params, users = world
    unknown = _unknown_params(params)
    leaks = []
    for rule in sorted(app.url_map.iter_rules(), key=_walk_order):
        if not any(name in rule.arguments for name in ("upload_id", "serial")) and "int" not in rule.rule:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["OPTIONS"]:
            for role in ROLES:
                answers = []
                for values in (params, unknown):
                    client = app.test_client()
                    if users[role] is not None:
                        sign_in(client, users[role])
                    headers = {"Accept": "application/json"} if method != "GET" else {}
                    answers.append(_outcome(client.open(_url(rule, values), method=method, headers=headers,
                                                        buffered=True)))
                theirs, nothing = answers
                if theirs in ("403", "404") and theirs != nothing:
                    leaks.append(f"{rule.endpoint} {method} as {role}: {theirs} for another's, {nothing} for none")
    assert not leaks, "\n".join(leaks)
