"""Server-side SVG charts for the leaderboard (pure: no Django imports).

Model names are untrusted text: every label goes through `html.escape`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

LABEL_WIDTH = 190
ROW_HEIGHT = 22
PALETTE = ("#1f6feb", "#d73a49", "#2da44e", "#bf8700", "#8250df", "#0a7ea4", "#cf222e", "#57606a")


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="chart">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def ci_whiskers(rows: Sequence[Mapping[str, Any]], *, width: int = 720) -> str:
    """Rating with its 95% interval per model, best first."""
    usable = [r for r in rows if r.get("lower") is not None and r.get("upper") is not None]
    if not usable:
        return ""
    low = min(r["lower"] for r in usable)
    high = max(r["upper"] for r in usable)
    span = max(high - low, 1.0)
    plot = width - LABEL_WIDTH - 60
    height = ROW_HEIGHT * len(usable) + 30

    def x(value: float) -> float:
        return LABEL_WIDTH + (value - low) / span * plot

    body = []
    for i, row in enumerate(usable):
        y = 20 + i * ROW_HEIGHT
        body.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 4}" text-anchor="end" font-size="12">'
            f"{escape(str(row['model']))}</text>"
            f'<line x1="{x(row["lower"]):.1f}" x2="{x(row["upper"]):.1f}" y1="{y}" y2="{y}" '
            f'stroke="#57606a" stroke-width="2"/>'
            f'<circle cx="{x(row["rating"]):.1f}" cy="{y}" r="4" fill="#1f6feb"/>'
            f'<text x="{x(row["upper"]) + 6:.1f}" y="{y + 4}" font-size="11" fill="#57606a">'
            f"{row['rating']:.0f}</text>"
        )
    return _svg(width, height, body, "Ratings with 95% confidence intervals")


def _heat_colour(value: float | None) -> str:
    if value is None:
        return "#eeeeee"
    # Blue for wins above one half, red below.
    strength = min(abs(value - 0.5) * 2, 1.0)
    channel = int(255 - 150 * strength)
    return f"rgb({channel},{channel},255)" if value >= 0.5 else f"rgb(255,{channel},{channel})"


def win_rate_heatmap(
    models: Sequence[str], matrix: Sequence[Sequence[float | None]], *, cell: int = 34
) -> str:
    """Row model's win rate against the column model (ties count half)."""
    if not models or not matrix:
        return ""
    n = len(models)
    left, top = LABEL_WIDTH, 120
    width, height = left + n * cell + 10, top + n * cell + 10
    body = []
    for j, name in enumerate(models):
        cx = left + j * cell + cell / 2
        body.append(
            f'<text transform="translate({cx:.1f},{top - 6}) rotate(-60)" font-size="11">'
            f"{escape(name)}</text>"
        )
    for i, name in enumerate(models):
        y = top + i * cell
        body.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(name)}</text>"
        )
        for j in range(n):
            value = matrix[i][j] if i != j else None
            label = "" if value is None else f"{value:.2f}"
            body.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{_heat_colour(value)}" stroke="#fff"/>'
                f'<text x="{left + j * cell + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                f'text-anchor="middle" font-size="10">{label}</text>'
            )
    return _svg(width, height, body, "Win rate of the row model against the column model")


def rating_history(
    history: Mapping[str, Sequence[tuple[str, float]]], *, width: int = 720, height: int = 260
) -> str:
    """Each model's rating over the stored snapshots (x: snapshot order)."""
    series = {name: points for name, points in history.items() if points}
    longest = max((len(points) for points in series.values()), default=0)
    if longest < 2:
        return ""
    values = [rating for points in series.values() for _, rating in points]
    low, high = min(values), max(values)
    span = max(high - low, 1.0)
    left, right, top, bottom = 50, LABEL_WIDTH, 10, 20
    plot_w, plot_h = width - left - right, height - top - bottom

    def point(index: int, rating: float) -> str:
        x = left + index / (longest - 1) * plot_w
        y = top + (high - rating) / span * plot_h
        return f"{x:.1f},{y:.1f}"

    body = [
        f'<text x="4" y="{top + 10}" font-size="10">{high:.0f}</text>'
        f'<text x="4" y="{top + plot_h}" font-size="10">{low:.0f}</text>'
    ]
    for k, (name, points) in enumerate(sorted(series.items())):
        colour = PALETTE[k % len(PALETTE)]
        offset = longest - len(points)
        path = " ".join(point(offset + i, rating) for i, (_, rating) in enumerate(points))
        last_y = path.rsplit(",", 1)[1]
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
            f'<text x="{left + plot_w + 6}" y="{last_y}" font-size="11" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    return _svg(width, height, body, "Rating history")


CHOICE_COLOURS = {
    "left": "#1f6feb",
    "right": "#d73a49",
    "tie": "#bf8700",
    "both_bad": "#57606a",
    "unsided": "#8250df",  # A or B, side not recorded (an import)
}


def vote_timeline(
    points: Sequence[tuple[float, float | None, str]], *, width: int = 720, height: int = 180
) -> str:
    """Each vote as a dot: when it was cast (x) against seconds taken (y, log scale).

    ``points`` are (Unix time, seconds to vote or None, choice); the dot's colour is the
    choice, so a bot's monotone stripe of fast left votes shows at a glance.
    """
    timed = [(t, s, c) for t, s, c in points if s is not None]
    if not timed:
        return ""
    import math  # noqa: PLC0415 - local to the one chart that needs it

    first = min(t for t, _, _ in timed)
    span = max(max(t for t, _, _ in timed) - first, 1.0)
    top = math.log10(max(*(s for _, s, _ in timed), 10.0))
    bottom = -1.0  # 0.1 s
    left, plot_w, plot_h = 40, width - 50, height - 30

    def y(seconds: float) -> float:
        value = math.log10(max(seconds, 0.1))
        return 10 + plot_h * (1 - (value - bottom) / (top - bottom))

    body = []
    for label, seconds in (("1 s", 1), ("10 s", 10), ("100 s", 100)):
        if math.log10(seconds) <= top:
            body.append(
                f'<line x1="{left}" x2="{width - 10}" y1="{y(seconds):.1f}" y2="{y(seconds):.1f}" '
                f'stroke="#d0d7de"/><text x="{left - 4}" y="{y(seconds) + 4:.1f}" font-size="10" '
                f'text-anchor="end">{label}</text>'
            )
    for t, seconds, choice in timed:
        x = left + (t - first) / span * plot_w
        colour = CHOICE_COLOURS.get(choice, "#57606a")
        body.append(f'<circle cx="{x:.1f}" cy="{y(seconds):.1f}" r="2.5" fill="{colour}"/>')
    return _svg(width, height, body, "Votes over time against seconds taken")
