"""Indicative print quality: camera read figures mapped to an A–F grade, and a per-batch trend that warns early.

NOT an ISO/IEC 15415 grade. A conformant grade needs a calibrated verifier (controlled lighting, aperture,
reflectance calibration) that a conveyor camera is not. The figures here come from the frames the station already
decodes; they move the way a real grade does (a dirty print head lowers contrast and decode margin before codes
stop reading), which is what an early warning needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DISCLAIMER = "indicative only, not ISO/IEC 15415"
GRADES = "ABCDF"
GRADE_VALUE = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0, "F": 0.0}

# Thresholds per figure, from grade A down to D (below the last: F). Symbol contrast follows the spirit of
# ISO/IEC 15415's SC bands; module size in camera pixels bounds what a decoder can resolve reliably; the decode
# margin is the decoder's own figure in [0, 1] (1 = read with everything to spare).
THRESHOLDS: dict[str, tuple[float, float, float, float]] = {
    "contrast": (0.70, 0.55, 0.40, 0.20),
    "module_px": (4.0, 3.0, 2.2, 1.5),
    "margin": (0.75, 0.50, 0.30, 0.10),
}


def figure_grade(name: str, value: float) -> str:
    for grade, limit in zip(GRADES, THRESHOLDS[name]):
        if value >= limit:
            return grade
    return "F"


def grade(figures: Mapping[str, float]) -> str | None:
    """The overall grade is the worst of the figures present (as a verifier's overall grade is the lowest)."""
    grades = [figure_grade(name, float(figures[name])) for name in THRESHOLDS if figures.get(name) is not None]
    if not grades:
        return None
    return max(grades, key=GRADES.index)


@dataclass
class QualityTrend:
    """A batch's grade over time: an exponentially weighted mean, and a drift alarm that fires once.

    The alarm fires when the mean drops ``drop`` grade steps below the best mean seen in this batch (after
    ``warmup`` reads), or below ``floor`` — and re-arms once the mean recovers.
    """

    alpha: float = 0.05
    drop: float = 1.0
    floor: float = GRADE_VALUE["C"]
    warmup: int = 20
    count: int = 0
    mean: float | None = None
    best: float | None = None
    alarmed: bool = False
    histogram: dict[str, int] = field(default_factory=lambda: {g: 0 for g in GRADES})

    def add(self, grade_letter: str) -> bool:
        """Record one grade; True when this read makes the drift alarm fire."""
        value = GRADE_VALUE[grade_letter]
        self.count += 1
        self.histogram[grade_letter] += 1
        self.mean = value if self.mean is None else self.mean + self.alpha * (value - self.mean)
        if self.count < self.warmup:
            return False
        self.best = self.mean if self.best is None else max(self.best, self.mean)
        drifting = self.mean < self.floor or self.mean <= self.best - self.drop
        if drifting and not self.alarmed:
            self.alarmed = True
            return True
        if not drifting and self.alarmed and self.mean >= self.best - self.drop / 2:
            self.alarmed = False
        return False

    @property
    def mean_grade(self) -> str | None:
        if self.mean is None:
            return None
        return min(GRADE_VALUE, key=lambda g: abs(GRADE_VALUE[g] - self.mean))  # type: ignore[operator]
