"""Admin commands: checking the configuration."""

from __future__ import annotations

from bot.blocks import admin as views
from bot.blocks.admin import ConfigVerdict
from bot.platform.command_table import Command, Invocation, Reply
from bot.platform.config import ConfigError, Secrets, load_config


def check_config(path: str | None, secrets: Secrets) -> ConfigVerdict:
    """Validate the file on disk as it is now (it may have changed since the bot started)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return ConfigVerdict(exc.source, tuple(exc.problems), secrets.status(), {})
    summary = {"people": len(config.people), "sla policies": len(config.sla),
               "targets": len(config.targets), "digests": len(config.digests),
               "channels": sum(1 for c in vars(config.channels).values() if c)}
    return ConfigVerdict(config.source, (), secrets.status(), summary)


def config_check_command(inv: Invocation) -> Reply:
    """Validate the configuration file and list every problem with its key.
    Reads the file as it is on disk now, and says which secrets are set (never their values)."""
    source = inv.services.config.source
    verdict = check_config(None if source.startswith("<") else source, inv.services.secrets)
    return Reply.of(views.config_verdict(verdict))


COMMANDS = [Command("config check", config_check_command, admin=True)]
