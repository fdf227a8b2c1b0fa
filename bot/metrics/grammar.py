"""The query grammar: a metric question in words -> a metric, a period and options.

Pure: no database, no Slack, no clock. Callers pass `now` and the workspace timezone,
so the same words mean the same thing in tests, the shell and Slack.

Periods are half-open [start, end) between local midnights of the workspace timezone.
Midnights are built from local dates, never by adding a timedelta to an aware datetime:
Python adds wall-clock time to datetimes that share a zoneinfo, and a day with a
daylight-saving switch really is 23 or 25 hours long.

Where the product spec leaves room, the grammar chooses:
- "last N days|weeks|months" is rolling and includes today: it ends at tomorrow's
  midnight and starts N days (7N days, N months) earlier. The default, "last 30 days",
  is this form.
- "this|last week|month|quarter|year" is a whole calendar unit (weeks start on Monday),
  "last day" is yesterday; mtd, qtd and ytd run from the unit's start through today.
- A typed range includes both dates; a single typed date is that day.
- Words the grammar does not know are ignored, unless they look like a period (a number,
  "last", "week", ...): those are refused, since answering for the default period
  instead would look right and be wrong.
"""

from __future__ import annotations

import calendar
import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

DIMENSIONS = ("owner", "source", "segment", "region", "team")
BREAKDOWNS = (*DIMENSIONS, "reason")  # rejections break down by their reason
MAX_LENGTH = 500
MAX_DAYS = 3660  # ten years: anything longer is a typo, and an expensive one
DEFAULT_DAYS = 30
DAY = timedelta(days=1)

PERIOD_FORMS = ("Periods: today, yesterday, this|last week|month|quarter|year, "
                "last N days|weeks|months, mtd, qtd, ytd, 2026-03, Q3 2026, 2026, "
                "2026-01-01..2026-03-31.")
COMPARE_FORMS = "Compare with “vs previous” (the period before) or “vs last year”."
DIMENSION_FORMS = "Break down by owner, source, segment, region or team (rejections by reason)."
DAY_FORMS = ("Days: today, tomorrow, a weekday (friday, next monday), next week, or a date like "
             "dec 24 or 2026-12-01.")

_UNIT_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_WEEKDAYS = {name: n for n, names in enumerate((
    ("monday", "mon"), ("tuesday", "tue", "tues"), ("wednesday", "wed"),
    ("thursday", "thu", "thur", "thurs"), ("friday", "fri"), ("saturday", "sat"),
    ("sunday", "sun"))) for name in names}
_TO_DATE = {"mtd": "month", "qtd": "quarter", "ytd": "year"}
_FIRST_YEAR, _LAST_YEAR = 1900, 2999  # keeps every derived period inside datetime's range

# words a question may carry that name nothing
_FILLER = frozenset({
    "a", "an", "the", "what", "whats", "s", "was", "were", "is", "are", "our", "my", "me", "we",
    "us", "i", "you", "for", "in", "on", "of", "over", "during", "at", "to", "from", "and", "how",
    "hows", "show", "tell", "give", "get", "please", "about", "did", "do", "does", "has", "have",
    "been", "it", "its", "can", "alignbot", "hey", "hi", "metric", "metrics"})
# a leftover word like these was meant as a period the grammar could not read
_PERIOD_WORDS = frozenset({
    "last", "past", "next", "previous", "ago", "day", "days", "week", "weeks", "month", "months",
    "quarter", "quarters", "year", "years", "today", "yesterday", "tomorrow"})

_SLACK_TOKEN = re.compile(r"<[^<>]*>")  # <@U123>, <#C123|general>, <!here>, <https://...>
_MONTHS = {name: n for n, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
    ("october", "oct"), ("november", "nov"), ("december", "dec")), 1) for name in names}
_DAY_OF_MONTH = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th)?")
_DATE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
_RANGE_SEPARATOR = re.compile(rf"({_DATE})(?:\s*(?:\.\.|[–—])\s*|\s+(?:to|-)\s+)({_DATE})")
_PUNCTUATION = re.compile(r"[^\w.\-]+")
_DOT = re.compile(r"(?<=[0-9])\.\.(?=[0-9])|\.")  # only a range's ".." survives
_HYPHEN = re.compile(r"(?<![0-9])-|-(?![0-9q])")  # only those of 2026-03, 2026-q3, q3-2026 survive

_FLAG = re.compile(r"(?<!\S)(share|chart)(?!\S)")
_COMPARE = re.compile(
    r"(?<!\S)(?:(?:vs|versus|compared to|compared with)(?: the)?"
    r"(?: (?P<target>(?:previous|prior|last) period|(?:previous|prior|last|same period last) year"
    r"|a year ago|year ago|previous|prior|ly))?"
    r"|(?P<yoy>yoy|year over year))(?!\S)")
_BY = re.compile(r"(?<!\S)(?:by|per)(?: (?:the|each))?(?: (?P<dim>[^\s|]+))?(?!\S)")
_PERIOD = re.compile(
    rf"(?<!\S)(?:(?P<range>{_DATE}\.\.{_DATE})"
    rf"|(?P<date>{_DATE})"
    r"|q(?P<q1>[0-9]+)[ -]?(?P<y1>[0-9]{4})"
    r"|(?P<y2>[0-9]{4})[ -]?q(?P<q2>[0-9]+)"
    r"|(?P<month>[0-9]{4}-[0-9]{1,2})"
    r"|(?P<year>[0-9]{4})"
    r"|(?:last|past) (?P<n>[0-9]+) (?P<unit>day|week|month)s?"
    r"|(?:this|current) (?P<this>week|month|quarter|year)"
    r"|(?:last|past|previous) (?P<last>day|week|month|quarter|year)"
    r"|(?P<to_date>[mqy]td|(?:month|quarter|year) to date)"
    r"|(?P<day>today|yesterday))(?!\S)")


class QueryError(Exception):
    """A question the grammar cannot answer; the message says what to do next."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.suggestions = tuple(suggestions)


@dataclass(frozen=True)
class Period:
    """Half-open [start, end) between local midnights of the workspace timezone."""

    start: datetime
    end: datetime
    label: str
    # how the period was named ("month", "mtd", "week"; None for plain days): previous() needs it
    kind: str | None = field(default=None, compare=False, repr=False)

    def previous(self) -> Period:
        """The period just before: the previous week, month, quarter or year for a calendar
        unit, the same span of the previous unit for mtd/qtd/ytd, else as many days before."""
        first, end = self._dates()
        tz = self.start.tzinfo
        if self.kind in _UNIT_MONTHS:
            return _period(_add_months(first, -_UNIT_MONTHS[self.kind]), first, tz, self.kind)
        if self.kind in _TO_DATE:
            months = _UNIT_MONTHS[_TO_DATE[self.kind]]
            last = _add_months(end - DAY, -months)  # Mar 31 -> Feb 28, never past the unit
            return _period(_add_months(first, -months), last + DAY, tz, self.kind)
        return _period(first - (end - first), first, tz, self.kind)

    def last_year(self) -> Period:
        """The same local dates a year earlier; Feb 29 becomes Feb 28."""
        first, end = self._dates()
        kind = None if self.kind == "week" else self.kind  # a year back is not a Monday
        last = _add_months(end - DAY, -12)
        return _period(_add_months(first, -12), last + DAY, self.start.tzinfo, kind)

    def days(self) -> float:
        """Length in local calendar days: a day with a DST switch still counts as one."""
        end = self.end.astimezone(self.start.tzinfo)
        return (end.replace(tzinfo=None) - self.start.replace(tzinfo=None)) / DAY

    def _dates(self) -> tuple[date, date]:
        return self.start.date(), self.end.date()


@dataclass(frozen=True)
class Query:
    """A parsed question: which metric, over which period, and how to answer it."""

    metric: str
    period: Period
    by: str | None = None
    compare: str | None = None  # "previous" | "last_year"
    share: bool = False  # post publicly instead of ephemerally
    chart: bool = False  # attach a chart


def parse_period(text: str, now: datetime, tz: ZoneInfo) -> Period:
    """The period `text` names, with nothing but filler around it; blank means the default."""
    return named_period(text, now, tz) or _last_n(DEFAULT_DAYS, "day", _today(now, tz), tz)


def named_period(text: str, now: datetime, tz: ZoneInfo) -> Period | None:
    """The period `text` names, or None when it names none (blank, filler, punctuation);
    words left over that are not filler raise."""
    period, rest = _take_period(_words(text), _today(now, tz), tz)
    if _meaningful(rest):
        raise QueryError(f"I couldn't read the period “{_quote(text)}”. {PERIOD_FORMS}")
    return period


def asked_period(text: str, now: datetime, tz: ZoneInfo) -> Period | None:
    """The period a command's words name; None when there are none (the command's default).
    Words that name no period ("hi", "!!!", a mention) are an error, not the default."""
    period = named_period(text, now, tz)
    if period is None and text.strip():
        raise QueryError(f"I couldn't read a period in “{_quote(text)}”. {PERIOD_FORMS}")
    return period


def parse_day(text: str, today: date) -> date:
    """One day named in words, counted from `today`: today, tomorrow, yesterday, a date, a
    weekday ("friday" and "next friday" are the first one after today, "this friday" may be
    today), or "next week" (its Monday)."""
    words = _words(text).split()
    qualifier = words.pop(0) if len(words) == 2 and words[0] in ("next", "this") else None
    word = " ".join(words)
    if qualifier is None and re.fullmatch(_DATE, word):
        try:
            return _typed_date(word)
        except QueryError:
            raise QueryError(f"“{word}” is not a date. {DAY_FORMS}") from None
    if qualifier is None and (day := _month_day(words, today)) is not None:
        return day
    named = {"today": today, "tomorrow": today + DAY, "yesterday": today - DAY}
    if qualifier is None and word in named:
        return named[word]
    if qualifier == "next" and word == "week":
        return today + (7 - today.weekday()) * DAY
    if word in _WEEKDAYS:
        first = 0 if qualifier == "this" else 1
        return today + ((_WEEKDAYS[word] - today.weekday() - first) % 7 + first) * DAY
    raise QueryError(f"I couldn't read the day “{_quote(text)}”. {DAY_FORMS}")


def _month_day(words: list[str], today: date) -> date | None:
    """"dec 24", "24th december": the first such day from `today` on (this year's, else next
    year's); None when the words are not a month and a day."""
    if len(words) != 2:
        return None
    month, day = words if words[0] in _MONTHS else words[::-1]
    if month not in _MONTHS or not (number := _DAY_OF_MONTH.fullmatch(day)):
        return None
    for year in range(today.year, today.year + 5):  # Feb 29 comes back within four
        with suppress(ValueError):
            if (found := date(year, _MONTHS[month], int(number[1]))) >= today:
                return found
    raise QueryError(f"“{' '.join(words)}” is not a date. {DAY_FORMS}")


def parse_query(text: str, now: datetime, tz: ZoneInfo,
                vocabulary: Mapping[str, Sequence[str]],
                default_metric: str | None = None) -> Query:
    """Reads a free-form question such as "what was our win rate last quarter by source?"."""
    today = _today(now, tz)
    phrases = _phrases(vocabulary)
    # the metric first: an admin's synonym ("cost per customer") beats the grammar's words
    metric, words = _take_metric(_words(text), phrases)
    share, chart, words = _take_flags(words)
    compare, words = _take_compare(words)
    by, words = _take_by(words)
    period, words = _take_period(words, today, tz)
    _refuse_period_leftovers(words)
    metric = metric or default_metric
    if metric is None:
        raise _unknown_metric(words, phrases, vocabulary)
    period = period or _last_n(DEFAULT_DAYS, "day", today, tz)
    return Query(metric, period, by, compare, share, chart)


# --- words ---

def _words(text: str) -> str:
    if len(text) > MAX_LENGTH:
        raise QueryError(f"That's too long for me: ask in {MAX_LENGTH} characters or fewer.")
    return _normalize(text)


def _normalize(text: str) -> str:
    """Lower-case words separated by single spaces; dates and ranges keep their - and .."""
    text = _SLACK_TOKEN.sub(" ", text.lower())
    text = _RANGE_SEPARATOR.sub(r"\1..\2", text)
    text = _PUNCTUATION.sub(" ", text)
    text = _DOT.sub(lambda m: m[0] if m[0] == ".." else " ", text)
    return " ".join(_HYPHEN.sub(" ", text).split())


def _cut(words: str, match: re.Match[str]) -> str:
    """Replaces a recognised phrase by a marker, so its neighbours cannot join into a new one."""
    return " ".join(f"{words[:match.start()]} | {words[match.end():]}".split())


def _meaningful(words: str) -> list[str]:
    return [w for w in words.split() if w != "|" and w not in _FILLER]


def _quote(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- metric, flags, comparison, breakdown ---

def _phrases(vocabulary: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Every way to name each metric, normalised like the question, longest first."""
    return _phrases_of(tuple((key, tuple(synonyms)) for key, synonyms in vocabulary.items()))


@functools.cache  # the same every question (a hundred normalisations): worked out once
def _phrases_of(vocabulary: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, str]:
    named = [(_normalize(name), key) for key, synonyms in vocabulary
             for name in (key, key.replace("_", " "), *synonyms)]
    phrases: dict[str, str] = {}
    for phrase, key in sorted(named, key=lambda pair: -len(pair[0])):
        if phrase:
            phrases.setdefault(phrase, key)
    return phrases


def _take_metric(words: str, phrases: Mapping[str, str]) -> tuple[str | None, str]:
    found = None
    for phrase, key in phrases.items():
        if phrase not in words:  # of the ~90 phrases, most: no pattern to search
            continue
        pattern = _phrase_pattern(phrase)
        while match := pattern.search(words):
            if found not in (None, key):
                raise QueryError(f"One metric at a time, please: {found} or {key}?", (found, key))
            found, words = key, _cut(words, match)
    return found, words


@functools.lru_cache(maxsize=1024)  # the registry's phrases and the admins' synonyms
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """The phrase as whole words."""
    return re.compile(rf"(?<!\S){re.escape(phrase)}(?!\S)")


def _take_flags(words: str) -> tuple[bool, bool, str]:
    found = set(_FLAG.findall(words))
    return "share" in found, "chart" in found, _FLAG.sub("|", words)


def _take_compare(words: str) -> tuple[str | None, str]:
    matches = list(_COMPARE.finditer(words))
    if not matches:
        return None, words
    target = matches[0]["target"]
    if len(matches) > 1 or not (target or matches[0]["yoy"]):
        raise QueryError(COMPARE_FORMS)
    year = matches[0]["yoy"] or target == "ly" or "year" in target
    return ("last_year" if year else "previous"), _cut(words, matches[0])


def _take_by(words: str) -> tuple[str | None, str]:
    matches = list(_BY.finditer(words))
    if not matches:
        return None, words
    if len(matches) > 1:
        raise QueryError(f"One breakdown at a time, please. {DIMENSION_FORMS}")
    word = matches[0]["dim"] or ""
    dimension = word[:-1] if word.endswith("s") and word[:-1] in BREAKDOWNS else word
    if dimension not in BREAKDOWNS:
        suggestions = tuple(difflib.get_close_matches(dimension, BREAKDOWNS, n=2))
        what = f"by “{_quote(word)}”" if word else "by nothing"
        raise QueryError(f"I can't break down {what}. {_did_you_mean(suggestions)}"
                         f"{DIMENSION_FORMS}", suggestions)
    return dimension, _cut(words, matches[0])


def _unknown_metric(words: str, phrases: Mapping[str, str],
                    vocabulary: Mapping[str, Sequence[str]]) -> QueryError:
    metrics = ", ".join(vocabulary)
    left = _meaningful(words)
    if not left:
        return QueryError(f"Which metric? Metrics: {metrics}.")
    suggestions = _suggest(left, phrases)
    return QueryError(f"I don't know the metric “{_quote(' '.join(left))}”. "
                      f"{_did_you_mean(suggestions)}Metrics: {metrics}.", suggestions)


def _suggest(words: list[str], phrases: Mapping[str, str]) -> tuple[str, ...]:
    """Metric keys whose names look like some run of up to three of the words."""
    runs = {" ".join(words[i:i + n]) for n in (1, 2, 3) for i in range(len(words) - n + 1)}
    scored = sorted((difflib.SequenceMatcher(None, run, name).ratio(), phrases[name])
                    for run in runs
                    for name in difflib.get_close_matches(run, phrases, n=3, cutoff=0.75))
    return tuple(dict.fromkeys(key for _, key in reversed(scored)))[:3]


def _did_you_mean(suggestions: tuple[str, ...]) -> str:
    return f"Did you mean {' or '.join(suggestions)}? " if suggestions else ""


# --- periods ---

def _today(now: datetime, tz: ZoneInfo) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")  # a naive time would be read as the host's
    return now.astimezone(tz).date()


def _take_period(words: str, today: date, tz: ZoneInfo) -> tuple[Period | None, str]:
    matches = list(_PERIOD.finditer(words))
    if not matches:
        return None, words
    if len(matches) > 1:
        raise QueryError(f"One period at a time, please: “{matches[0][0]}” or "
                         f"“{matches[1][0]}”? {PERIOD_FORMS}")
    period = _named_period(matches[0], today, tz)
    if period.days() > MAX_DAYS:
        raise _too_long()
    return period, _cut(words, matches[0])


def _named_period(m: re.Match[str], today: date, tz: ZoneInfo) -> Period:
    if m["range"]:
        first, last = (_typed_date(part) for part in m["range"].split(".."))
        if last < first:
            raise QueryError(f"“{m['range']}” ends before it starts: put the earlier date "
                             f"first. {PERIOD_FORMS}")
        return _period(first, last + DAY, tz)
    if m["date"]:
        day = _typed_date(m["date"])
        return _period(day, day + DAY, tz)
    if m["q1"] or m["q2"]:
        quarter, year = int(m["q1"] or m["q2"]), _typed_year(m["y1"] or m["y2"])
        if not 1 <= quarter <= 4:
            raise QueryError(f"“{m[0]}” is not a quarter: they run Q1 to Q4. {PERIOD_FORMS}")
        return _unit("quarter", date(year, 3 * quarter - 2, 1), tz)
    if m["month"]:
        year, month = m["month"].split("-")
        if not 1 <= int(month) <= 12:
            raise QueryError(f"“{m[0]}” is not a month: they run 01 to 12. {PERIOD_FORMS}")
        return _unit("month", date(_typed_year(year), int(month), 1), tz)
    if m["year"]:
        return _unit("year", date(_typed_year(m["year"]), 1, 1), tz)
    if m["n"]:
        return _last_n(int(m["n"]), m["unit"], today, tz)
    if m["this"]:
        return _unit(m["this"], today, tz)
    if m["day"] or m["last"] == "day":
        day = today if m["day"] == "today" else today - DAY
        return _period(day, day + DAY, tz, label=m["day"] or "yesterday")
    if m["last"]:
        return _unit(m["last"], today, tz).previous()
    kind = m["to_date"] if m["to_date"] in _TO_DATE else m["to_date"][0] + "td"  # "month to date"
    unit = _TO_DATE[kind]
    return _period(_unit(unit, today, tz).start.date(), today + DAY, tz, kind, f"{unit} to date")


def _last_n(n: int, unit: str, today: date, tz: ZoneInfo) -> Period:
    """The N days, weeks or months up to and including today."""
    if n < 1:
        raise QueryError(f"“last {n} {unit}s” is empty: ask for 1 or more. {PERIOD_FORMS}")
    if n > MAX_DAYS:  # also keeps the date arithmetic below in range
        raise _too_long()
    end = today + DAY
    start = _add_months(end, -n) if unit == "month" else end - n * (7 if unit == "week" else 1) * DAY
    return _period(start, end, tz, label=f"last {n} {unit}{'s' if n > 1 else ''}")


def _unit(unit: str, day: date, tz: ZoneInfo) -> Period:
    """The whole week (from Monday), month, quarter or year that contains `day`."""
    if unit == "week":
        monday = day - day.weekday() * DAY
        return _period(monday, monday + 7 * DAY, tz, "week")
    months = _UNIT_MONTHS[unit]
    first = date(day.year, (day.month - 1) // months * months + 1, 1)
    return _period(first, _add_months(first, months), tz, unit)


def _period(first: date, end: date, tz: tzinfo | None, kind: str | None = None,
            label: str | None = None) -> Period:
    """[first, end) as local midnights, built from dates so DST cannot shift them."""
    return Period(midnight(first, tz), midnight(end, tz), label or _label(first, end, kind), kind)


def midnight(day: date, tz: tzinfo | None) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _label(first: date, end: date, kind: str | None) -> str:
    if kind == "week":
        return f"week of {first.isoformat()}"
    if kind == "month":
        return first.isoformat()[:7]
    if kind == "quarter":
        return f"Q{(first.month - 1) // 3 + 1} {first.year}"
    if kind == "year":
        return str(first.year)
    last = end - DAY
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def _add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, clamped to the month's end (Mar 31 -> Feb 28)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _typed_date(text: str) -> date:
    year, month, day = text.split("-")
    try:
        return date(_typed_year(year), int(month), int(day))
    except ValueError:
        raise QueryError(f"“{text}” is not a date. {PERIOD_FORMS}") from None


def _typed_year(text: str) -> int:
    year = int(text)
    if not _FIRST_YEAR <= year <= _LAST_YEAR:
        raise QueryError(f"I can only use years {_FIRST_YEAR} to {_LAST_YEAR}, "
                         f"not {year}. {PERIOD_FORMS}")
    return year


def _too_long() -> QueryError:
    return QueryError(f"That period is too long: ask for at most {MAX_DAYS} days "
                      f"(ten years). {PERIOD_FORMS}")


def _refuse_period_leftovers(words: str) -> None:
    odd = [w for w in words.split() if w in _PERIOD_WORDS or any(c.isdigit() for c in w)]
    if odd:
        raise QueryError(f"I couldn't read the period in “{_quote(' '.join(odd))}”. {PERIOD_FORMS}")
