"""Pulse surveys: answer buttons, the comment modal and emoji reactions, the survey
commands and sweep, and the Home's survey sections."""

from __future__ import annotations

from bot.platform.descriptor import Feature, HomeSection
from bot.platform.jobs import Job, every
from bot.surveys import commands, home, runs

FEATURE = Feature(
    "surveys",
    listeners=("handlers.surveys",),
    commands=tuple(commands.COMMANDS),
    jobs=(Job("surveys.sweep", runs.sweep, lambda c: every(minutes=1), 60,
              "open scheduled survey runs, send prompts and reminders in people's hours, close "
              "runs", runs.next_due, per_workspace=False),),  # due invites of every workspace
    home=(HomeSection(20, home.waiting), HomeSection(40, home.latest_results)),
    scopes={
        "reactions:read": ("reaction_added", "reaction_removed"),  # emoji answers to prompts
        "usergroups:read": ("usergroups.list", "usergroups.users.list"),  # audiences by group
        "users:read": ("users.info",),  # a group member's timezone, and whether they are a bot
    },
    events={"reaction_added": "emoji answers to survey prompts",
            "reaction_removed": "withdrawing an emoji answer"},
)
