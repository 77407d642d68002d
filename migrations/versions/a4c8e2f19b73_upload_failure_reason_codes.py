"""Why an upload failed is kept as a code and its parameters, put into words in the reader's
language; the free text of older rows stays and is shown as it is

Revision ID: a4c8e2f19b73
Revises: b7e19d4c2a86
Create Date: 2026-12-06 09:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = 'a4c8e2f19b73'
down_revision = 'b7e19d4c2a86'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('upload_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_code', sa.String(length=40), server_default='', nullable=False))
        batch_op.add_column(sa.Column('error_params', sa.JSON(), nullable=True))


# The Japanese words of each code, for a downgrade (the older code shows ``error`` as it is).
_WORDS = {
    'too_large': 'ファイルが大きすぎます。',
    'kind_too_large': 'ファイルが大きすぎます。',
    'unsupported_type': 'このファイルの形式には対応していません。動画（MP4・WebM）、資料（PDF・PowerPoint）、字幕（WebVTT）をアップロードしてください。',
    'unknown_type': 'このファイルの形式には対応していません。',
    'beyond_declared_length': '宣言されたサイズを超えるデータが送信されました。',
    'disk_full': '保存領域の空き容量が不足しているため、アップロードを保存できませんでした。システム管理者に連絡してください。',
    'pptx_unreadable': 'PowerPoint ファイルとして読み取れません（.pptx 形式のみ対応）。',
    'vtt_unreadable': '字幕ファイル（WebVTT, UTF-8）として読み取れません。',
    'incomplete': 'ファイルが途中までしか届いていません。もう一度アップロードしてください。',
    'checksum_mismatch': 'ファイルの検証（SHA-256）に失敗しました。通信中に内容が変わった可能性があります。もう一度アップロードしてください。',
    'cancelled': 'アップロードは中止されました。',
    'expired': 'アップロードの有効期限が切れました。最初からやり直してください。',
}


def downgrade():
    upload_session = sa.table('upload_session', sa.column('error', sa.Text()), sa.column('error_code', sa.String()))
    for code, words in _WORDS.items():
        op.execute(upload_session.update()
                   .where(upload_session.c.error_code == code, upload_session.c.error == '')
                   .values(error=words))
    with op.batch_alter_table('upload_session', schema=None) as batch_op:
        batch_op.drop_column('error_params')
        batch_op.drop_column('error_code')
