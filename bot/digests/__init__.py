"""Channel digests: a period's handoff, speed, funnel, pulse, index and gap, on a schedule.

- `content`: what a digest says about a period (`compose`), and its chart;
- `schedule`: the job that posts each (digest, channel, period) once, late with a note
  after downtime, or skipped when more than a period late;
- `commands`: `/align digest preview|send <name>`.
"""
