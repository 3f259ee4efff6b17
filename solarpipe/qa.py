"""QA scores as the ALMA pipeline uses them: a number in [0, 1] with messages.

Colour bands (ARC staff read them at a glance): <= 0.33 red (error),
<= 0.66 yellow (warning), <= 0.90 blue (suboptimal), > 0.90 green.
A stage's representative score is its lowest score.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

RED_MAX = 0.33
YELLOW_MAX = 0.66
BLUE_MAX = 0.90

TOPICS = ("dataset", "flagging", "calibration", "imaging")


def colour(score: float | None) -> str:
    """The ALMA pipeline colour of a score ('red', 'yellow', 'blue', 'green'; 'grey' if None)."""
    if score is None:
        return "grey"
    if score <= RED_MAX:
        return "red"
    if score <= YELLOW_MAX:
        return "yellow"
    if score <= BLUE_MAX:
        return "blue"
    return "green"


def qa2_verdict(score: float | None, failed: bool = False) -> str:
    """The QA2 verdict of a stage from its representative score: 'pass' above the
    yellow band, 'semipass' in it, 'fail' in the red band or when the stage failed
    ('n/a' without a score)."""
    if failed:
        return "fail"
    if score is None:
        return "n/a"
    if score > YELLOW_MAX:
        return "pass"
    if score > RED_MAX:
        return "semipass"
    return "fail"


#: What the home page says for the lowest stage colour (the analyst still decides QA2)
VERDICTS = {
    "red": "Needs attention: a stage is red or failed. QA2 fail unless the analyst can explain it.",
    "yellow": "Review the yellow stages: warnings that may affect the science (QA2 semi-pass or pass).",
    "blue": "Usable: some stages are suboptimal (blue). QA2 pass likely after a look at them.",
    "green": "All stages green: QA2 pass suggested.",
    "grey": "No stage has run yet.",
}


def overall_verdict(stage_scores: Iterable[float | None]) -> tuple[str, str]:
    """(colour, text) of a whole run from its stages' representative scores: the lowest
    one decides, as ARC staff read the weblog (a failed stage has score 0)."""
    scores = [s for s in stage_scores if s is not None]
    c = colour(min(scores)) if scores else "grey"
    return c, VERDICTS[c]


@dataclass
class QAScore:
    """One QA verdict with the metric behind it and what it applies to."""

    score: float
    shortmsg: str
    longmsg: str = ""
    metric_name: str = ""
    metric_value: Any = None
    metric_units: str = ""
    applies_to: dict[str, Any] = field(default_factory=dict)
    topic: str = "dataset"

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.score) <= 1.0:
            raise ValueError(f"QA score {self.score!r} outside [0, 1] ({self.shortmsg})")
        self.score = float(self.score)
        if not self.longmsg:
            self.longmsg = self.shortmsg

    @property
    def colour(self) -> str:
        return colour(self.score)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["colour"] = self.colour
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QAScore":
        d = {k: v for k, v in d.items() if k != "colour"}
        return cls(**d)


@dataclass
class QAScorePool:
    """The scores of one stage; the representative score is the lowest."""

    scores: list[QAScore] = field(default_factory=list)

    def add(self, score: QAScore) -> None:
        self.scores.append(score)

    def extend(self, scores: Iterable[QAScore]) -> None:
        self.scores.extend(scores)

    @property
    def representative(self) -> QAScore | None:
        if not self.scores:
            return None
        return min(self.scores, key=lambda s: s.score)

    @property
    def representative_score(self) -> float | None:
        rep = self.representative
        return None if rep is None else rep.score

    def sorted(self) -> list[QAScore]:
        """Lowest first: what an analyst should read first."""
        return sorted(self.scores, key=lambda s: s.score)

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.scores]

    @classmethod
    def from_list(cls, items: Iterable[dict[str, Any]]) -> "QAScorePool":
        return cls([QAScore.from_dict(d) for d in items])


def score_fraction(bad_fraction: float, ok_below: float = 0.0, red_at: float = 0.5) -> float:
    """Linear score from a fraction of something bad: 1 at ok_below, 0 at red_at.

    Used by several tasks (flagged fraction, failed solutions); a pure helper so
    every stage scores fractions the same way.
    """
    if red_at <= ok_below:
        raise ValueError("red_at must exceed ok_below")
    x = (bad_fraction - ok_below) / (red_at - ok_below)
    return float(min(1.0, max(0.0, 1.0 - x)))
