"""Local tooling: the shell, the fake Slack it drives, and the demo data set."""
