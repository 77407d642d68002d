"""The Graph schema checker itself (tests/teams/graph_schema.py), against real v1.0 CSDL types."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT

METADATA = Path(ROOT).parent / "shared/graph/msgraph-v1.0-metadata.xml"


@pytest.fixture(scope="module")
def schema():
    if not METADATA.exists():
        pytest.skip(f"Graph schema not found at {METADATA} (outside the repository; see shared/graph/README.md)")
    from tests.teams.graph_schema import GraphSchema

    return GraphSchema(METADATA)


# ---------------------------------------------------------------- primitive types


def test_integers_are_ints_in_range_and_not_bools(schema):
    assert schema.check({"totalAttendanceInSeconds": 3600}, "attendanceRecord") == []
    assert schema.check({"totalAttendanceInSeconds": "3600"}, "attendanceRecord") == [
        "$.totalAttendanceInSeconds: expected Edm.Int32, got str"]
    assert schema.check({"totalAttendanceInSeconds": True}, "attendanceRecord") == [
        "$.totalAttendanceInSeconds: expected Edm.Int32, got bool"]
    assert schema.check({"totalAttendanceInSeconds": 1.5}, "attendanceRecord") == [
        "$.totalAttendanceInSeconds: expected Edm.Int32, got float"]
    assert schema.check({"totalAttendanceInSeconds": 2**31}, "attendanceRecord") == [
        "$.totalAttendanceInSeconds: 2147483648 is out of range for Edm.Int32"]
    assert schema.check({"disc": 40000, "bitrate": 2**40}, "audio") == ["$.disc: 40000 is out of range for Edm.Int16"]


def test_strings_booleans_and_floating_point(schema):
    assert schema.check({"subject": "研修", "isOnlineMeeting": True}, "event") == []
    assert schema.check({"subject": 1, "isOnlineMeeting": "true"}, "event") == [
        "$.subject: expected Edm.String, got int", "$.isOnlineMeeting: expected Edm.Boolean, got str"]
    assert schema.check({"isOnlineMeeting": 1}, "event") == ["$.isOnlineMeeting: expected Edm.Boolean, got int"]
    assert schema.check({"altitude": 1, "latitude": 35.68}, "deviceGeoLocation") == []
    assert schema.check({"altitude": False, "latitude": "35.68"}, "deviceGeoLocation") == [
        "$.altitude: expected Edm.Double, got bool", "$.latitude: expected Edm.Double, got str"]


def test_date_time_offsets_need_a_time_zone_offset_and_a_real_date(schema):
    for good in ("2025-05-01T09:00:00Z", "2025-05-01T09:00:00.1234567Z", "2025-05-01T09:00:00+09:00",
                 "2025-05-01T09:00Z", "0001-01-01T00:00:00Z"):
        assert schema.check({"createdDateTime": good}, "event") == [], good
    for bad in ("2025-05-01T09:00:00", "2025-05-01 09:00:00Z", "2025-02-30T09:00:00Z", "2025-05-01T25:00:00Z",
                "2025-05-01", "x"):
        assert schema.check({"createdDateTime": bad}, "event") == [
            f"$.createdDateTime: {bad!r} is not a valid Edm.DateTimeOffset"], bad
    assert schema.check({"createdDateTime": 1714550400}, "event") == [
        "$.createdDateTime: expected Edm.DateTimeOffset, got int"]


def test_dates_times_of_day_and_durations(schema):
    window = {"startDate": "2025-05-01", "endDate": "2025-05-31"}
    assert schema.check(window, "bookingsAvailabilityWindow") == []
    assert schema.check({"startDate": "2025-5-1", "endDate": "2025-05-01T00:00:00Z"}, "bookingsAvailabilityWindow") == [
        "$.startDate: '2025-5-1' is not a valid Edm.Date", "$.endDate: '2025-05-01T00:00:00Z' is not a valid Edm.Date"]
    assert schema.check({"startTime": "08:30:00", "endTime": "17:15:00.0000000"}, "workingHours") == []
    assert schema.check({"startTime": "8:30", "endTime": "24:00:00"}, "workingHours") == [
        "$.startTime: '8:30' is not a valid Edm.TimeOfDay", "$.endTime: '24:00:00' is not a valid Edm.TimeOfDay"]
    for good in ("PT1H30M", "P1D", "PT45S", "PT0.5S", "P1DT2H"):
        assert schema.check({"duration": good}, "learningContent") == [], good
    for bad in ("90", "1:30:00", "P", "PT", "P1H"):
        assert schema.check({"duration": bad}, "learningContent") == [f"$.duration: {bad!r} is not a valid Edm.Duration"]


def test_guids_binary_and_streams(schema):
    assert schema.check({"skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900"}, "assignedLicense") == []
    assert schema.check({"skuId": "6fd2c87f-b296-42f0-b197"}, "assignedLicense") == [
        "$.skuId: '6fd2c87f-b296-42f0-b197' is not a valid Edm.Guid"]
    attachment = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "invite.ics", "contentBytes": "QkVHSU4="}
    assert schema.check(attachment, "attachment") == []
    assert schema.check({**attachment, "contentBytes": "not base64!"}, "attachment") == [
        "$.contentBytes: 'not base64!' is not a valid Edm.Binary"]
    assert schema.check({"content": b"anything"}, "driveItem") == []  # Edm.Stream is not JSON


def test_collections_are_lists_and_single_values_are_not(schema):
    assert schema.check({"skillTags": ["teams", "研修"]}, "learningContent") == []
    assert schema.check({"skillTags": "teams"}, "learningContent") == [
        "$.skillTags: expected Collection(Edm.String), got str"]
    assert schema.check({"skillTags": ["teams", 2]}, "learningContent") == ["$.skillTags[1]: expected Edm.String, got int"]
    assert schema.check({"subject": ["a"]}, "event") == ["$.subject: expected Edm.String, got list"]
    assert schema.check({"start": [{"dateTime": "2025-05-01T09:00:00", "timeZone": "UTC"}]}, "event") == [
        "$.start: expected microsoft.graph.dateTimeTimeZone, got list"]
    assert schema.check({"start": "2025-05-01T09:00:00"}, "event") == [
        "$.start: expected microsoft.graph.dateTimeTimeZone, got str"]
    assert schema.check([{"id": "a"}], "Collection(event)") == []
    assert schema.check({"id": "a"}, "Collection(event)") == ["$: expected Collection(microsoft.graph.event), got dict"]
    assert schema.check([{"subject": 1}], "Collection(event)", "value") == ["value[0].subject: expected Edm.String, got int"]


def test_null_only_where_the_property_is_nullable(schema):
    assert schema.check({"description": None, "level": None, "skillTags": None}, "learningContent") == []
    assert schema.check({"title": None}, "learningContent") == ["$.title: expected Edm.String, got null"]
    assert schema.check({"start": None}, "event") == []
    assert schema.check({"start": {"dateTime": None, "timeZone": "UTC"}}, "event") == [
        "$.start.dateTime: expected Edm.String, got null"]
    # A non-nullable collection: neither the collection nor its items may be null.
    assert schema.check({"disabledPlans": None}, "assignedLicense") == [
        "$.disabledPlans: expected Collection(Edm.Guid), got null"]
    assert schema.check({"disabledPlans": [None]}, "assignedLicense") == [
        "$.disabledPlans[0]: expected Edm.Guid, got null"]
    assert schema.check({"attendees": [None]}, "event") == []


# ---------------------------------------------------------------- enum types


def test_enum_values_are_member_names(schema):
    assert schema.check({"status": "completed", "learnerUserId": "u", "learningContentId": "c"},
                        "learningCourseActivity") == []
    assert schema.check({"status": "done"}, "learningCourseActivity") == [
        "$.status: 'done' is not a member of microsoft.graph.courseStatus"]
    assert schema.check({"status": "Completed"}, "learningCourseActivity") == [
        "$.status: 'Completed' is not a member of microsoft.graph.courseStatus"]  # names are case-sensitive
    assert schema.check({"status": 2}, "learningCourseActivity") == [
        "$.status: expected microsoft.graph.courseStatus, got int"]
    # inherited by learningAssignment, also through @odata.type on the base type
    assert schema.check({"status": "inProgress", "assignmentType": "required"}, "learningAssignment") == []
    assignment = {"@odata.type": "#microsoft.graph.learningAssignment", "status": "finished", "assignmentType": "x"}
    assert schema.check(assignment, "learningCourseActivity") == [
        "$.status: 'finished' is not a member of microsoft.graph.courseStatus",
        "$.assignmentType: 'x' is not a member of microsoft.graph.assignmentType"]
    assert schema.check({"body": {"contentType": "html", "content": "<p>x</p>"}}, "event") == []
    assert schema.check({"daysOfWeek": ["monday", "someday"]}, "workingHours") == [
        "$.daysOfWeek[1]: 'someday' is not a member of microsoft.graph.dayOfWeek"]


def test_flags_enums_take_comma_separated_member_names(schema):
    policy = {"currentCombinations": ["password,sms", "fido2"], "previousCombinations": []}
    assert schema.check(policy, "updateAllowedCombinationsResult") == []
    assert schema.check({"currentCombinations": ["password,pigeon"]}, "updateAllowedCombinationsResult") == [
        "$.currentCombinations[0]: 'pigeon' is not a member of microsoft.graph.authenticationMethodModes"]
    assert schema.check({"status": "notStarted,completed"}, "learningCourseActivity") == [
        "$.status: 'notStarted,completed' is not a member of microsoft.graph.courseStatus"]  # not a flags enum


# ---------------------------------------------------------------- action parameters


def notice(**changes) -> dict:
    body = {"topic": {"source": "text", "value": "研修のお知らせ", "webUrl": "https://teams.microsoft.com/l/entity/x"},
            "activityType": "sessionConfirmed", "chainId": 42,
            "previewText": {"content": "受講が確定しました"},
            "templateParameters": [{"name": "course", "value": "Teams 活用研修"}],
            "teamsAppId": "6fd2c87f-b296-42f0-b197-1e91e994b900"}
    return {**body, **changes}


def test_action_parameter_names_and_types(schema):
    assert schema.check_action(notice(), "sendActivityNotification", binding="userTeamwork") == []
    assert schema.check_action(notice(chainId="42", activityType=7), "sendActivityNotification",
                               binding="userTeamwork") == [
        "$.activityType: expected Edm.String, got int", "$.chainId: expected Edm.Int64, got str"]
    assert schema.check_action(notice(chainId=True), "sendActivityNotification") == [
        "$.chainId: expected Edm.Int64, got bool"]
    assert schema.check_action(notice(templateParameters={"name": "course"}), "sendActivityNotification") == [
        "$.templateParameters: expected Collection(microsoft.graph.keyValuePair), got dict"]
    assert schema.check_action(notice(templateParameters=[{"value": "x", "name": None}]), "sendActivityNotification") == [
        "$.templateParameters[0].name: expected Edm.String, got null"]
    assert schema.check_action(notice(topic={"source": "url", "value": "x"}), "sendActivityNotification") == [
        "$.topic.source: 'url' is not a member of microsoft.graph.teamworkActivityTopicSource"]
    assert schema.check_action(notice(subject="x"), "sendActivityNotification") == [
        "$.subject: no such parameter of sendActivityNotification"]


def test_actions_are_checked_against_the_overload_for_their_binding(schema):
    recipient = {"@odata.type": "#microsoft.graph.aadUserNotificationRecipient", "userId": "u"}
    # a chat's or a team's notice names its recipient; a user's teamwork is the recipient already
    assert schema.check_action(notice(recipient=recipient), "sendActivityNotification", binding="chat") == []
    assert schema.check_action(notice(recipient=recipient), "sendActivityNotification", binding="userTeamwork") == [
        "$.recipient: no such parameter of sendActivityNotification"]
    assert schema.check_action(notice(recipient=recipient), "sendActivityNotification") == []  # fits some overload
    assert schema.check_action(notice(recipient={"userId": "u"}), "sendActivityNotification", binding="team") == [
        "$.recipient: microsoft.graph.teamworkNotificationRecipient is abstract (@odata.type must name a concrete type)",
        "$.recipient.userId: no such property on microsoft.graph.teamworkNotificationRecipient"]
    assert schema.check_action({}, "sendActivityNotification", binding="message") == [
        "$: sendActivityNotification cannot be bound to microsoft.graph.message"]
    assert schema.check_action({}, "sendNothing") == ["$: unknown action sendNothing"]


def test_non_nullable_action_parameters_are_required(schema):
    message = {"subject": "s", "body": {"contentType": "text", "content": "x"},
               "toRecipients": [{"emailAddress": {"address": "a@example.lg.jp"}}]}
    assert schema.check_action({"message": message, "saveToSentItems": False}, "sendMail") == []  # any case
    assert schema.check_action({"saveToSentItems": "no"}, "sendMail", "POST /users/x/sendMail") == [
        "POST /users/x/sendMail.saveToSentItems: expected Edm.Boolean, got str",
        "POST /users/x/sendMail: missing required key 'Message'"]
    assert schema.check_action({"message": None}, "sendMail") == ["$.message: expected microsoft.graph.message, got null"]
    assert schema.check_action({"Comment": "中止します"}, "cancel", binding="event") == []
    assert schema.check_action({}, "cancel", binding="event") == []  # Comment is optional
    clone = {"displayName": "x", "visibility": "private", "partsToClone": "apps,tabs,channels"}
    assert schema.check_action(clone, "clone", binding="team") == []
    assert schema.check_action({"visibility": "secret", "partsToClone": "apps,files"}, "clone", binding="team") == [
        "$.visibility: 'secret' is not a member of microsoft.graph.teamVisibilityType",
        "$.partsToClone: 'files' is not a member of microsoft.graph.clonableTeamParts"]
    assert schema.check_action({"displayName": "x"}, "clone", binding="team") == [
        "$: missing required key 'visibility'", "$: missing required key 'partsToClone'"]


# ---------------------------------------------------------------- required keys of a request


def test_the_caller_names_the_required_keys_of_a_request(schema):
    upsert = {"externalId": "course-1", "title": "Teams 活用研修", "contentWebUrl": "https://manabi.example.lg.jp/c/1",
              "languageTag": "ja-JP", "duration": "PT1H30M", "isActive": True}
    required = ("externalId", "title", "contentWebUrl", "languageTag")
    assert schema.check(upsert, "learningContent", required=required) == []
    missing = {k: v for k, v in upsert.items() if k not in ("title", "languageTag")}
    assert schema.check(missing, "learningContent", required=required) == [
        "$: missing required key 'title'", "$: missing required key 'languageTag'"]
    assert schema.check(missing, "learningContent") == []  # a PATCH may leave them out
    assert schema.check([upsert, missing], "Collection(learningContent)", "value", required=["title"]) == [
        "value[1]: missing required key 'title'"]
    install = {"teamsApp@odata.bind": "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/x"}
    assert schema.check(install, "userScopeTeamsAppInstallation", required=["teamsApp"]) == []
    with pytest.raises(ValueError, match="not properties of microsoft.graph.learningContent"):
        schema.check(upsert, "learningContent", required=["titel"])


# ---------------------------------------------------------------- names, derived types, annotations


def test_property_names_derived_types_and_annotations(schema):
    assert schema.check({"joinUrl": "x"}, "event") == ["$.joinUrl: no such property on microsoft.graph.event"]
    assert schema.check({"@odata.etag": 'W/"x"', "@odata.context": "c", "id": "x"}, "event") == []
    assert schema.check({"teamsApp@odata.bind": 5}, "userScopeTeamsAppInstallation") == [
        "$.teamsApp@odata.bind: expected a URL, got int"]
    assert schema.check({"app@odata.bind": "u"}, "userScopeTeamsAppInstallation") == [
        "$.app@odata.bind: no such property on microsoft.graph.userScopeTeamsAppInstallation"]
    assert schema.check({"@odata.type": "#microsoft.graph.event"}, "attendanceRecord") == [
        "$: microsoft.graph.event does not derive from microsoft.graph.attendanceRecord"]
    assert schema.check({"@odata.type": "#microsoft.graph.nothing"}, "identity") == [
        "$: unknown @odata.type #microsoft.graph.nothing"]
    assert schema.check({}, "noSuchType") == ["$: unknown Graph type microsoft.graph.noSuchType"]
