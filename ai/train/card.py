"""model.json and MODEL_CARD.md writers shared by the shipped models."""

from __future__ import annotations

import datetime
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ai.train import common

INTENDED_USE = (
    "Research use only - not for diagnostic use. Not a medical device; not validated "
    "clinically. Outputs must not guide the care of any patient."
)


def command_line() -> str:
    """The command that is running, as `python -m ai ...` (for the training record)."""
    args = sys.argv[1:]
    prog = "python -m ai" if sys.argv and sys.argv[0].endswith(("ai/__main__.py", "-m")) else (
        "python " + shlex.quote(sys.argv[0]) if sys.argv else "python")
    return " ".join([prog, *map(shlex.quote, args)])


def today() -> str:
    return datetime.date.today().isoformat()


def fmt_ci(value: Sequence[float], digits: int = 3) -> str:
    """[point, low, high] -> "0.912 (95% CI 0.890-0.931)"."""
    v, lo, hi = value
    return f"{v:.{digits}f} (95% CI {lo:.{digits}f}-{hi:.{digits}f})"


def rounded(value, digits: int = 4):
    """`value` with every float (in nested dicts/lists) rounded to `digits` decimals."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def write_spec(model_dir: Path, spec: dict) -> dict:
    """Fill in the weights' sha256 and write model.json; returns the spec written.

    Metrics are rounded to 4 decimals (the CIs are far wider than that).
    """
    weights = model_dir / spec["weights"]["file"]
    spec["weights"]["sha256"] = common.sha256(weights)
    spec["metrics"] = rounded(spec["metrics"])
    common.write_json(model_dir / "model.json", spec)
    return spec


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_card(model_dir: Path, title: str, sections: Mapping[str, str]) -> None:
    """MODEL_CARD.md: a title, the intended-use warning, then the sections in order."""
    parts = [f"# {title}", "", f"**{INTENDED_USE}**", ""]
    for heading, body in sections.items():
        parts += [f"## {heading}", "", body.strip(), ""]
    (model_dir / "MODEL_CARD.md").write_text("\n".join(parts))
