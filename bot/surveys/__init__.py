"""Pulse surveys: scheduled, answered by buttons or emoji reactions, anonymous by construction.

- `templates`: the question types and the built-in `alignment` template (read by bot.platform.config);
- `runs`: opening a run (audience, questions, invites), prompting in people's working hours,
  reminding non-responders, closing (the anonymising rewrite) — and the sweep job;
- `answers`: recording, changing and withdrawing an answer from a click, a select, a modal
  or a reaction;
- `results`: what may be shown of a closed run (the k rule, no subtraction), its JSON;
- `commands`, `home`, `demo`: the `/align survey ...` commands, App Home sections, and the
  demo's past runs through the same code.
"""
