"""OAuth mode's installations: slack_sdk's stores own the rows; alignbot only lists them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import SLACK_BOTS


def list_installed_teams(session: Session, client_id: str) -> list[str]:
    """The workspaces whose bot token alignbot holds (an uninstall deletes the row)."""
    c = SLACK_BOTS.c
    return list(session.scalars(
        select(c.team_id).distinct()
        .where(c.client_id == client_id, c.team_id.is_not(None), c.bot_token.is_not(None))
        .order_by(c.team_id)))
