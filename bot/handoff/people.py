"""People: the config's [[people]] made into rows the rest of the bot can join on."""

from __future__ import annotations

from bot.platform.work import Work
from storage.models import Person
from storage.people import get_person


def sync_config_people(work: Work) -> int:
    """Upsert everyone listed in the config; returns how many rows changed."""
    session, team_id, changed = work.session, work.team_id, 0
    for p in work.config.people:
        row = get_person(session, team_id, p.slack_id) or Person(team_id=team_id,
                                                                 slack_id=p.slack_id)
        values = dict(email=p.email, name=p.name or row.name, role=p.role,
                      manager_slack_id=p.manager, timezone=p.timezone, weight=p.weight,
                      daily_cap=p.daily_cap, from_config=True,
                      working_hours=str(p.working_hours) if p.working_hours else None)
        if row.id is None or any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = work.now
            session.add(row)
            changed += 1
    return changed
