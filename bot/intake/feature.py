"""Intake: CSV files dropped into a folder, and CRM owner emails Slack could not answer for.
(Webhooks come through the web server, bot/platform/server.py; imports also by the CLI.)"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from bot.intake import owners
from bot.intake.imports import import_dropped
from bot.platform.descriptor import Feature
from bot.platform.jobs import Job, every
from bot.platform.services import Services


def import_folder(services: Services, now) -> Any:
    """Import CSV files dropped into [imports] folder, each content once."""
    if (folder := _folder(services)) is None:
        return []
    return [(path.name, s.as_dict()) for path, s in import_dropped(services, folder, now)]


def _folder(services: Services) -> Path | None:
    folder = services.config.imports.folder
    if folder and services.installations is not None:  # OAuth mode: a folder per workspace
        folder = Path(folder) / services.team_id
    return Path(folder) if folder and Path(folder).is_dir() else None


def folder_due(services: Services) -> datetime | None:
    """Now while the folder holds CSV files (each firing checks them), else never."""
    folder = _folder(services)
    return services.clock.now() if folder and any(folder.glob("*.csv")) else None


FEATURE = Feature(
    "intake",
    jobs=(
        Job("imports.folder", import_folder, lambda c: every(minutes=1), 60,
            "import CSV files dropped into the configured folder", folder_due),
        Job("owners.retry", owners.retry, lambda c: every(minutes=5), 300,
            "ask Slack again about CRM owner emails it could not answer for, and route their "
            "leads", owners.retry_due),
    ),
    scopes={"users:read.email": ("users.lookupByEmail",)},  # CRM owner emails to Slack users
)
