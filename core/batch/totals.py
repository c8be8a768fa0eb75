"""The summary a batch prints at its end, counted as the rows stream past."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..analysis.results import FACE_STATUSES
from ..inference.calibration import AGE_CHECKS


class Totals:
    """Running totals of a run's rows for the summary printed at its end: kept as the rows
    stream past, so the summary costs neither memory nor a re-read of the results (nor
    pandas' import, two thirds of the command's start-up). Rows of one file always come
    together (one image's rows are written at once), so a file is counted at its first row."""

    def __init__(self):
        self.files = Counter()  # files by the status of their first row
        self.faces = self.uncertain = self.poor = 0
        self.graded = False  # whether any face has a quality grade
        self.issues = Counter()  # quality issues of the poor faces
        self.age_checks, self.age_threshold = Counter(), None
        self.errors = Counter()  # files by the reason of their error
        self._last_file = None

    @property
    def analysed_any(self) -> bool:
        """Whether at least one image could be analysed (faces or not): the exit code's test."""
        return any(self.files[status] for status in (*FACE_STATUSES, "no_face"))

    def add(self, rows: Iterable[dict]) -> None:
        for row in rows:
            status = row["status"]
            if row["file"] != self._last_file:
                self._last_file = row["file"]
                self.files[status] += 1
                if status == "error":
                    self.errors[str(row.get("error")).split(" (")[0]] += 1
            if status not in FACE_STATUSES:
                continue
            self.faces += 1
            self.uncertain += status == "uncertain"
            self.graded = self.graded or row.get("quality") is not None
            if row.get("quality") == "poor":
                self.poor += 1
                self.issues.update(issue for issue in (row.get("quality_issues") or "").split(";") if issue)
            if row.get("age_check") is not None:
                self.age_checks[row["age_check"]] += 1
                self.age_threshold = row["age_threshold"] if self.age_threshold is None else self.age_threshold

    def summary(self, elapsed: float, out: Path | None = None, analysed: int | None = None,
                notes: Sequence[str] = ()) -> str:
        """Plain-text totals: files, faces, no-face, errors (grouped by reason), images/s."""
        files = sum(self.files.values())
        analysed = files if analysed is None else analysed
        resumed = f" ({files - analysed} from the earlier run)" if analysed != files else ""
        lines = [f"{files} files{resumed}, {self.faces} faces, "
                 f"{self.files['no_face']} without a face, {self.files['error']} errors "
                 f"in {elapsed:.1f} s ({analysed / max(elapsed, 1e-9):.1f} images/s)"]
        if self.graded:
            detail = ", ".join(f"{issue} {n}" for issue, n in self.issues.most_common())
            lines.append(f"  quality: {self.poor} poor faces ({detail or 'none'}), {self.uncertain} reported as uncertain")
        if self.age_checks:
            lines.append(f"  age check at {self.age_threshold:g}: "
                         + ", ".join(f"{name} {self.age_checks[name]}" for name in AGE_CHECKS))
        lines += [f"  error: {reason} ({n})" for reason, n in self.errors.most_common()]
        lines += [f"  note: {note}" for note in notes]
        if out is not None:
            lines.append(f"results: {out}")
        return "\n".join(lines)
