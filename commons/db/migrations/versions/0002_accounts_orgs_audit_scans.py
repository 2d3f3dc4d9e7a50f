"""accounts orgs audit scans

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 03:17:30.162729
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=96), nullable=True),
    sa.Column('token', sa.String(length=100), nullable=True, comment='Name of the token used.'),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('namespace', sa.String(length=96), nullable=True),
    sa.Column('target', sa.String(length=400), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False, comment='One successor per row: no forks.'),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_events_hash')),
    sa.UniqueConstraint('prev_hash', name=op.f('uq_audit_events_prev_hash'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_namespace'), ['namespace'], unique=False)

    op.create_table('orgs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=96), nullable=False),
    sa.Column('fullname', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orgs')),
    sa.UniqueConstraint('name', name=op.f('uq_orgs_name'))
    )
    op.create_table('site_settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_site_settings'))
    )
    op.create_table('memberships',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('read', 'contributor', 'write', 'admin')", name=op.f('ck_memberships_role')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_memberships_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'user_id', name=op.f('pk_memberships'))
    )
    op.create_table('scan_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repo_id', sa.String(length=32), nullable=False),
    sa.Column('commit', sa.String(length=40), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('blob', sa.String(length=64), nullable=False, comment='sha256 (LFS) or git blob id of the scanned bytes'),
    sa.Column('scanner', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False, comment='worst finding: ok, info, warning, critical'),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('imports', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_scan_records_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_records')),
    sa.UniqueConstraint('repo_id', 'commit', 'path', name='uq_scan_records_repo_commit_path')
    )
    with op.batch_alter_table('scan_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_records_repo_id'), ['repo_id'], unique=False)

    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=64), nullable=False, comment='sha256 of the cookie secret'),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('access_grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False,
                                      server_default=sa.func.now()))
        batch_op.add_column(sa.Column('decided_by', sa.String(length=96), nullable=True))

    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.JSON(), nullable=True, comment='Fine-grained tokens: [{resource, actions}]; NULL for read/write tokens.'))
        batch_op.drop_constraint(op.f('ck_tokens_role'), type_='check')
        batch_op.create_check_constraint('role', "role IN ('read', 'write', 'fine-grained')")



def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_tokens_role'), type_='check')
        batch_op.create_check_constraint('role', "role IN ('read', 'write')")
        batch_op.drop_column('scopes')

    with op.batch_alter_table('access_grants', schema=None) as batch_op:
        batch_op.drop_column('decided_by')
        batch_op.drop_column('updated_at')

    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_user_id'))

    op.drop_table('web_sessions')
    with op.batch_alter_table('scan_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scan_records_repo_id'))

    op.drop_table('scan_records')
    op.drop_table('memberships')
    op.drop_table('site_settings')
    op.drop_table('orgs')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_namespace'))

    op.drop_table('audit_events')
