"""What links a person to their prompts and, while a run is open, to their answers."""

from __future__ import annotations

import hashlib
import hmac


def respondent_key(secret: str, person_id: int) -> str:
    """Links a person's answers while the run is open; meaningless once the secret is gone."""
    return hmac.new(secret.encode(), str(person_id).encode(), hashlib.sha256).hexdigest()[:40]


def prompt_ref(run_id: int, position: int, user: str) -> str:
    """The outbox ref of a person's prompt (and of its edits)."""
    return f"survey:{run_id}:{position}:{user}"
