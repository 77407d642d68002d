"""The session calendar file may carry the Teams join link: only those concerned get it."""

from __future__ import annotations


def test_calendar_for_trainer_only_of_own_course(client, login_as, make_course, make_session, make_user):
    owner = make_user("trainer", "130001")
    session = make_session(make_course(owner=owner))
    login_as("trainer", "130001")  # another trainer: as if there were no such session
    assert client.get(f"/sessions/{session.id}/calendar.ics").status_code == 404
    login_as(user=owner)
    response = client.get(f"/sessions/{session.id}/calendar.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"


def test_calendar_for_training_office_only_where_course_is_open(client, login_as, make_course, make_session):
    session = make_session(make_course(eligible=["131016"]))
    login_as("municipal_admin", "132012")  # 八王子市: not eligible
    assert client.get(f"/sessions/{session.id}/calendar.ics").status_code == 404
    login_as("municipal_admin", "131016")
    assert client.get(f"/sessions/{session.id}/calendar.ics").status_code == 200


def test_calendar_refused_to_learner_without_enrollment(client, login_as, make_session):
    session = make_session()
    login_as("learner", "131016")
    assert client.get(f"/sessions/{session.id}/calendar.ics").status_code == 404


def test_a_downloaded_calendar_is_published_by_the_configured_organiser(app, client, login_as, make_course,
                                                                         make_session, make_user):
    from icalendar import Calendar

    owner = make_user("trainer", "130001")
    course = make_course(owner=owner)
    course.organizer_mailbox = "kenshu@metro.tokyo.lg.jp"
    session = make_session(course)
    login_as(user=owner)
    calendar = Calendar.from_ical(client.get(f"/sessions/{session.id}/calendar.ics").data)
    assert str(calendar["METHOD"]) == "PUBLISH"  # an event to keep, not an invitation to answer
    event = next(c for c in calendar.walk("VEVENT"))
    assert str(event["ORGANIZER"]) == "mailto:kenshu@metro.tokyo.lg.jp"
    assert str(event["ORGANIZER"].params["CN"]) == app.config["LMS_ISSUER_NAME"]
    assert "ATTENDEE" not in event
