"""Question types and the built-in templates. Plain data: bot.platform.config reads it to validate."""

from __future__ import annotations

from dataclasses import dataclass

SCALE5, SCALE10, CHOICE, TEXT = "scale5", "scale10", "choice", "text"
QUESTION_TYPES = (SCALE5, SCALE10, CHOICE, TEXT)
MAX_OPTIONS = 10  # a choice is answered with :one: ... :keycap_ten: too
SCALE5_LABELS = ("Low", "Rather low", "Medium", "Rather high", "High")
SCALE10_LABELS = ("Not at all",) + ("",) * 9 + ("Completely",)


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    type: str
    options: tuple[str, ...] = ()  # a choice's options; a scale's labels, lowest value first

    @classmethod
    def of(cls, row) -> Question:
        """A question as a run stored it."""
        return cls(row.key, row.text, row.type, tuple(row.options or ()))

    @property
    def values(self) -> range:
        """The answers a scale or a choice takes (a choice: its options' numbers, from 1)."""
        if self.type == SCALE5:
            return range(1, 6)
        if self.type == SCALE10:
            return range(0, 11)
        return range(1, len(self.options) + 1) if self.type == CHOICE else range(0)

    @property
    def required(self) -> bool:
        """Free text is optional: reminders only chase the other questions."""
        return self.type != TEXT

    def label(self, value: int) -> str:
        """How an answer reads: "4 · Rather high", "7", or a choice's option."""
        if self.type == CHOICE:
            return self.options[value - 1]
        label = self.options[value - self.values.start] if self.options else ""
        return f"{value} · {label}" if label else str(value)


def question(key: str, text: str, type_: str, options: tuple[str, ...] = ()) -> Question:
    """A question of the config: a scale gets its labels, a choice keeps its options."""
    labels = {SCALE5: SCALE5_LABELS, SCALE10: SCALE10_LABELS}
    return Question(key, text, type_, labels.get(type_, options if type_ == CHOICE else ()))


ALIGNMENT = (
    question("customer_understanding",
                   "How well do sales and marketing share an understanding of the target customer?",
                   SCALE5),
    question("shared_goals", "How much do sales and marketing share goals and objectives?",
                   SCALE5),
    question("communication", "How effective is communication between sales and marketing?",
                   SCALE5),
    question("lead_quality", "How good is the quality of the leads marketing passes to sales?",
                   SCALE5),
    question("customer_satisfaction", "How satisfied are our customers?", SCALE5),
    question("collaboration", "How well do sales and marketing work together?", SCALE10),
    Question("comment", "Anything else you want to say? (optional)", TEXT),
)
TEMPLATES: dict[str, tuple[Question, ...]] = {"alignment": ALIGNMENT}
