"""Block Kit builders: pure functions returning {"text": ..., "blocks": [...]} (or a view)."""
