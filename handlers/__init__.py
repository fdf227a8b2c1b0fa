"""The Slack surface: Bolt listeners grouped by feature, each module with register(app, services)."""
