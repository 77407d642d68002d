"""Composing notification mails (Japanese) with an .ics attachment."""

from __future__ import annotations

from lms.common.timeutil import to_tokyo


def compose_enrollment_notice(enrollment, kind: str) -> tuple[str, str, str]:
    session = enrollment.session
    course = session.course
    start = to_tokyo(session.starts_at)
    when = f"{start:%Y年%m月%d日 %H:%M}"
    titles = {
        "confirmed": "受講が確定しました",
        "waitlisted": "キャンセル待ちに登録しました",
        "pending": "受講申込を受け付けました（承認待ち）",
        "promoted": "キャンセル待ちから受講確定になりました",
        "rejected": "受講申込が承認されませんでした",
        "changed": "研修の日時・場所が変更されました",
        "cancelled": "受講申込を取り消しました",
        "reminder": "明日は研修の受講日です",
    }
    subject = f"【Manabi】{titles.get(kind, kind)}：{course.title} {session.title}"
    body = f"{enrollment.staff_member.full_name} 様\n\n{titles.get(kind, kind)}。\n\n研修：{course.title} {session.title}\n日時：{when}\n"
    return subject, body, ""
