"""What the training doctor hands back: each problem as a :class:`Finding`, all of them as a :class:`Diagnosis`.

The rules (``rules``, ``loss_curve``) and the probes (``probes``) return
findings; ``doctor`` gathers them. Nothing here measures anything.
"""

from __future__ import annotations


class DoctorWarning(UserWarning):
    """A finding of the training doctor, raised as a warning during ``fit`` by ``DoctorCallback``."""


class Finding:
    """One problem found: a short code, what was measured, and how to fix it.

    Attributes
    ----------
    code : str
        e.g. ``"dead_relu"``; the codes and their thresholds are listed in
        ``help(dialnet.doctor)``.
    title : str
        One line.
    detail : str
        The measured numbers and what they mean.
    fix : str
        A concrete change to make.
    numbers : dict
        The measurements, as plain Python numbers.
    """

    def __init__(self, code, title, detail, fix, **numbers):
        self.code = code
        self.title = title
        self.detail = detail
        self.fix = fix
        self.numbers = numbers

    def __str__(self):
        return f"[{self.code}] {self.title}\n    {self.detail}\n    fix: {self.fix}"

    def __repr__(self):
        return f"Finding({self.code!r}, {self.title!r})"


class Diagnosis:
    """The doctor's report: ``findings`` (problems), ``checks`` (what was measured), ``skipped`` (what was not).

    ``diagnosis.healthy`` is True when nothing was found; ``"dead_relu" in
    diagnosis`` tests for one finding; ``str(diagnosis)`` is the report.
    """

    def __init__(self, findings, checks, skipped=()):
        self.findings = list(findings)
        self.checks = list(checks)
        self.skipped = list(skipped)

    @property
    def healthy(self) -> bool:
        return not self.findings

    @property
    def codes(self):
        return [f.code for f in self.findings]

    def __contains__(self, code):
        return code in self.codes

    def __iter__(self):
        return iter(self.findings)

    def __len__(self):
        return len(self.findings)

    def report(self) -> str:
        if self.healthy:
            lines = ["Clean bill of health: no problem found."]
        else:
            n = len(self.findings)
            lines = [f"{n} problem{'s' if n != 1 else ''} found:"]
            lines += [str(f) for f in self.findings]
        lines.append("Checked:")
        lines += [f"  {c}" for c in self.checks]
        lines += [f"  not checked: {s}" for s in self.skipped]
        return "\n".join(lines)

    def __str__(self):
        return self.report()

    def __repr__(self):
        return f"Diagnosis(findings={self.codes})"
