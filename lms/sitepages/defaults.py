"""The text of each site page until a platform admin edits it (Japanese first, with English).

Written for Manabi as it is: what it stores and why, and the accessibility work the project
does itself. Operators add their contact details and their own rules (retention periods).
"""

from __future__ import annotations

from dataclasses import dataclass

ACCESSIBILITY = "accessibility"
PRIVACY = "privacy"


@dataclass(frozen=True)
class DefaultPage:
    title: str
    body_md: str
    title_en: str
    body_md_en: str


ACCESSIBILITY_JA = """\
Manabi 研修ポータル（以下「本ポータル」）は、障害の有無や年齢、使う機器や支援技術にかかわらず、都と区市町村の職員の誰もが研修を探し、申し込み、受講し、修了を確かめられるよう、ウェブアクセシビリティの確保と向上に取り組みます。

## 対象範囲

本ポータルのすべてのページ（サインイン前のページ、受講者・講師・研修担当・システム管理者のページ）を対象とします。講師が登録する研修資料のうち、外部サイトへのリンク先とアップロードされた録画・資料は、その作成者が個別に対応します。

## 目標とする適合レベル

日本産業規格 JIS X 8341-3:2016「高齢者・障害者等配慮設計指針－情報通信における機器，ソフトウェア及びサービス－第3部：ウェブコンテンツ」の適合レベル AA に準拠することを目標とします。この規格は国際規格 ISO/IEC 40500:2012（WCAG 2.0）と一致しています。

## 取り組み

- ページを変更するたびに、自動試験（axe-core）で WCAG 2.1 の適合レベル A と AA の達成基準を、すべての種類のページについて日本語と英語の両方で確かめています。
- キーボードだけで、研修の申込み・取消し・録画の再生ができることを試験しています。
- 文字と背景の色の組み合わせは、コントラスト比 4.5:1 以上としています。
- 録画には字幕（文字起こし）を付けるよう講師にお願いしています。

自動試験の結果は、このページの「試験結果」に掲載しています。

## お問い合わせ

アクセシビリティについてお気づきの点は、所属する区市町村の研修担当または本ポータルの運営担当までお知らせください。
"""

ACCESSIBILITY_EN = """\
Manabi, the training portal (the "portal"), works to make its pages accessible, so that every member of staff of the metropolitan government and the municipalities can find, apply for, attend and complete training, whatever their abilities, age, device or assistive technology.

## Scope

All pages of the portal: the pages before sign-in and those of learners, trainers, training offices and platform administrators. Material added by trainers (linked external sites, uploaded recordings and documents) is the responsibility of its author.

## Target level

The portal aims to conform to level AA of the Japanese Industrial Standard JIS X 8341-3:2016 (Guidelines for older persons and persons with disabilities — Information and communications equipment, software and services — Part 3: Web content), which is identical to the international standard ISO/IEC 40500:2012 (WCAG 2.0).

## What we do

- With every change, an automated test (axe-core) checks the WCAG 2.1 level A and AA success criteria on every kind of page, in Japanese and in English.
- A test checks that applying for a course, cancelling and playing a recording work with the keyboard alone.
- Text and background colours have a contrast ratio of at least 4.5:1.
- Trainers are asked to add captions (transcripts) to recordings.

The results of the automated test are shown under "Test results" on this page.

## Contact

Please tell your municipality's training office or the portal's operators about any difficulty you meet.
"""

PRIVACY_JA = """\
本ポータルは、都と区市町村の職員研修の運営のために、次のとおり個人情報を取り扱います。

## 取り扱う情報

- 職員名簿の情報：氏名、氏名カナ、職員番号、所属、職名、採用日、Microsoft 365 のサインイン名、メールアドレス
- サインインの情報：Microsoft Entra ID の利用者 ID とテナント ID、最後にサインインした日時
- 研修の記録：受講の申込み、出欠（会場での QR 受付と点呼、Teams 会議の出席レポート）、録画の視聴状況、修了と修了証
- 操作の記録：管理の操作と個人情報の出力についての監査ログ（日時、操作した人、接続元の IP アドレス）

## 利用の目的

- 研修の申込みの受付、承認と定員の管理
- 研修回の運営（出席の確認、Teams 会議への招待）
- 修了の判定と修了証の発行
- 研修の案内、申込み結果とリマインドのメール送信
- 区市町村ごとの研修実績の集計
- 不正な利用の防止と調査

## 情報を見る人と提供

所属する区市町村の研修担当と、研修を担当する講師が、職務に必要な範囲で閲覧します。Teams 会議の開催と出席レポートの取得のため、Microsoft 365（Microsoft Graph）と情報をやり取りします。法令に基づく場合を除き、これ以外の第三者には提供しません。

## 安全管理

通信は暗号化しています。閲覧できる範囲は役割と区市町村ごとに制限し、管理の操作と個人情報の出力は監査ログに記録します。

## Cookie

サインインの状態、表示する言語、録画の再生のために Cookie を使います。広告や閲覧の追跡には使いません。

## 開示・訂正・利用停止

ご自身の情報の開示、訂正、利用停止を希望するときは、所属する区市町村の研修担当にお申し出ください。

## お問い合わせ

本ポータルの運営担当までお問い合わせください。
"""

PRIVACY_EN = """\
The portal handles personal information as follows, to run the training of the staff of the metropolitan government and the municipalities.

## What is kept

- Staff roster: name, name in kana, staff number, department, job title, date of hiring, Microsoft 365 sign-in name, e-mail address
- Sign-in: Microsoft Entra ID user and tenant IDs, time of the last sign-in
- Training records: applications, attendance (QR check-in and roll call on site, Teams meeting attendance reports), viewing of recordings, completions and certificates
- Activity: an audit log of administrative actions and exports of personal data (time, who, IP address)

## Why

- To take and approve applications and manage the number of seats
- To run sessions (attendance, Teams meeting invitations)
- To decide completion and issue certificates
- To send announcements, application results and reminders by e-mail
- To report training figures per municipality
- To prevent and investigate misuse

## Who sees it, and sharing

Your municipality's training office and the trainers of your courses see what their work needs. To hold Teams meetings and read their attendance reports, the portal exchanges data with Microsoft 365 (Microsoft Graph). Nothing is given to anyone else, except where the law requires it.

## Security

Connections are encrypted. What each person can see is limited by role and municipality; administrative actions and exports of personal data are recorded in the audit log.

## Cookies

Cookies keep you signed in, remember your language and let recordings play. They are not used for advertising or tracking.

## Access, correction, suspension

To see, correct or stop the use of your information, ask your municipality's training office.

## Contact

Please contact the portal's operators.
"""

DEFAULTS = {
    ACCESSIBILITY: DefaultPage("アクセシビリティ方針", ACCESSIBILITY_JA, "Accessibility policy", ACCESSIBILITY_EN),
    PRIVACY: DefaultPage("個人情報の取扱い", PRIVACY_JA, "Privacy policy", PRIVACY_EN),
}
