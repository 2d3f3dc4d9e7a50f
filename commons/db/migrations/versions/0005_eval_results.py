"""eval_results

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 06:34:02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('eval_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repo_id', sa.String(length=32), nullable=False),
    sa.Column('model_sha', sa.String(length=40), nullable=False),
    sa.Column('task', sa.String(length=64), nullable=False),
    sa.Column('task_version', sa.String(length=32), nullable=False),
    sa.Column('task_type', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False, comment='capability | bias | safety'),
    sa.Column('dataset_repo', sa.String(length=200), nullable=False),
    sa.Column('dataset_sha', sa.String(length=40), nullable=False),
    sa.Column('harness_version', sa.String(length=32), nullable=False),
    sa.Column('settings_hash', sa.String(length=16), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False, comment='The settings the hash names.'),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('subgroup', sa.String(length=200), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('stderr', sa.Float(), nullable=True),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('n_total', sa.Integer(), nullable=False),
    sa.Column('better', sa.String(length=8), nullable=True, comment='higher | lower | None (see ideal)'),
    sa.Column('ideal', sa.Float(), nullable=True, comment='The unbiased value of a bias score.'),
    sa.Column('headline', sa.Boolean(), nullable=False, comment='The metric the task is quoted by.'),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('written_to', sa.String(length=64), nullable=True, comment='Where the card got it: a commit sha on main, or refs/pr/N.'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_eval_results_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_eval_results_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eval_results')),
    sa.UniqueConstraint('repo_id', 'model_sha', 'task', 'task_version', 'dataset_repo', 'dataset_sha', 'harness_version', 'settings_hash', 'metric', 'subgroup', name='uq_eval_results_key')
    )
    with op.batch_alter_table('eval_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_results_repo_id'), ['repo_id'], unique=False)
        batch_op.create_index('ix_eval_results_task_metric', ['task', 'metric'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('eval_results', schema=None) as batch_op:
        batch_op.drop_index('ix_eval_results_task_metric')
        batch_op.drop_index(batch_op.f('ix_eval_results_repo_id'))

    op.drop_table('eval_results')
