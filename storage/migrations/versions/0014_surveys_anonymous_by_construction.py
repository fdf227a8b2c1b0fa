"""surveys anonymous by construction: runs hold a secret erased at close; answers no time

Nothing wrote these tables before pulse surveys existed but the demo, whose rows held
what answers may no longer hold (a key per person kept after close, answer times): the
tables are made anew rather than converted.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table('survey_answers')
    op.drop_table('survey_invites')
    op.drop_table('survey_questions')
    op.drop_table('survey_runs')
    op.drop_table('surveys')
    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys')),
    sa.UniqueConstraint('team_id', 'key', name=op.f('uq_surveys_team_id_key'))
    )
    op.create_table('survey_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started_by', sa.String(length=64), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=True),
    sa.Column('opened_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closes_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], name=op.f('fk_survey_runs_survey_id_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_runs')),
    sa.UniqueConstraint('survey_id', 'number', name=op.f('uq_survey_runs_survey_id_number')),
    sa.UniqueConstraint('survey_id', 'opened_at', name=op.f('uq_survey_runs_survey_id_opened_at'))
    )
    op.create_index('ix_survey_runs_team_state', 'survey_runs', ['team_id', 'state'], unique=False)
    op.create_index('uq_survey_runs_open', 'survey_runs', ['survey_id'], unique=True, sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))
    op.create_table('survey_invites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('prompt_due_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('prompted_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_reminder_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminders_sent', sa.Integer(), nullable=False),
    sa.Column('responded', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_survey_invites_person_id_people')),
    sa.ForeignKeyConstraint(['run_id'], ['survey_runs.id'], name=op.f('fk_survey_invites_run_id_survey_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_invites')),
    sa.UniqueConstraint('run_id', 'person_id', name=op.f('uq_survey_invites_run_id_person_id'))
    )
    op.create_index('ix_survey_invites_prompt_due', 'survey_invites', ['prompt_due_at'], unique=False)
    op.create_index('ix_survey_invites_reminder_due', 'survey_invites', ['next_reminder_at'], unique=False)
    op.create_table('survey_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('options', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['survey_runs.id'], name=op.f('fk_survey_questions_run_id_survey_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_questions')),
    sa.UniqueConstraint('run_id', 'position', name=op.f('uq_survey_questions_run_id_position'))
    )
    op.create_table('survey_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('respondent_key', sa.String(length=64), nullable=True),
    sa.Column('role', sa.String(length=64), nullable=True),
    sa.Column('value', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['question_id'], ['survey_questions.id'], name=op.f('fk_survey_answers_question_id_survey_questions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['survey_runs.id'], name=op.f('fk_survey_answers_run_id_survey_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answers')),
    sa.UniqueConstraint('question_id', 'respondent_key', name=op.f('uq_survey_answers_question_id_respondent_key'))
    )
    op.create_index('ix_survey_answers_run', 'survey_answers', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_table('survey_answers')
    op.drop_table('survey_invites')
    op.drop_table('survey_questions')
    op.drop_table('survey_runs')
    op.drop_table('surveys')
    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('audience', sa.JSON(), nullable=True),
    sa.Column('schedule', sa.String(length=64), nullable=True),
    sa.Column('min_responses', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys')),
    sa.UniqueConstraint('team_id', 'key', name=op.f('uq_surveys_team_id_key'))
    )
    op.create_table('survey_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('opened_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closes_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], name=op.f('fk_survey_runs_survey_id_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_runs')),
    sa.UniqueConstraint('survey_id', 'opened_at', name=op.f('uq_survey_runs_survey_id_opened_at'))
    )
    op.create_table('survey_invites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('sent_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminders_sent', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_survey_invites_person_id_people')),
    sa.ForeignKeyConstraint(['run_id'], ['survey_runs.id'], name=op.f('fk_survey_invites_run_id_survey_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_invites')),
    sa.UniqueConstraint('run_id', 'person_id', name=op.f('uq_survey_invites_run_id_person_id'))
    )
    op.create_table('survey_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('scale', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['survey_runs.id'], name=op.f('fk_survey_questions_run_id_survey_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_questions')),
    sa.UniqueConstraint('run_id', 'position', name=op.f('uq_survey_questions_run_id_position'))
    )
    op.create_table('survey_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('respondent_key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('answered_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['survey_questions.id'], name=op.f('fk_survey_answers_question_id_survey_questions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['survey_runs.id'], name=op.f('fk_survey_answers_run_id_survey_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answers')),
    sa.UniqueConstraint('question_id', 'respondent_key', name=op.f('uq_survey_answers_question_id_respondent_key'))
    )
    op.create_index('ix_survey_runs_team_state', 'survey_runs', ['team_id', 'state'], unique=False)
    op.create_index('ix_survey_answers_run', 'survey_answers', ['run_id'], unique=False)
