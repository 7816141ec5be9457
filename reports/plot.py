"""The pool-occupancy plot of a failure: an SVG drawn here, no plotting library needed.

Input: the harness's pool samples (``Harness.pool_row``), one dict per sample with ``step``,
``phase`` ("step", "teardown", "violation") and, per pool the target declares, its
``<pool>_capacity``, ``_ring`` (free in the ring), ``_cached`` (in poll-group caches),
``_held`` (held by requests), plus ``in_flight`` (capsules the host has outstanding).

Each pool (data WRs ``wr``, data buffers ``buf``) gets one panel: ring, caches and held
stacked as areas under the capacity line, so a leak is the gap between the stack and the
line; in-flight capsules as a line; the samples taken at teardown and at a violation marked
and labelled.  The picture is self-contained (no fonts, scripts or links to fetch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

POOLS: tuple[tuple[str, str], ...] = (("wr", "data-WR pool"), ("buf", "data buffers"))
#: Stacked series, bottom first: (column suffix, legend, colour).
STACK: tuple[tuple[str, str, str], ...] = (
    ("ring", "free in ring", "#4e79a7"),
    ("cached", "in poll-group caches", "#59a14f"),
    ("held", "held by requests", "#f28e2b"),
)
CAPACITY_COLOUR = "#222222"
IN_FLIGHT_COLOUR = "#b07aa1"
VIOLATION_COLOUR = "#d62728"

WIDTH = 760
PANEL_HEIGHT = 250
LEFT, RIGHT, TOP, BOTTOM = 56, 200, 44, 40


def _num(row: Mapping[str, object], key: str) -> int | None:
    value = row.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def pools_in(rows: Sequence[Mapping[str, object]]) -> list[tuple[str, str]]:
    """The pools some sample has a capacity for."""
    return [(p, title) for p, title in POOLS if any(_num(r, f"{p}_capacity") is not None
                                                  for r in rows)]


def _label(row: Mapping[str, object]) -> str:
    phase = str(row.get("phase", "step"))
    step = row.get("step", "?")
    return f"step {step}" if phase == "step" else f"{phase} (step {step})"


def _panel(rows: Sequence[Mapping[str, object]], pool: str, title: str, top: int,
           violation: str) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = PANEL_HEIGHT - TOP - BOTTOM
    n = len(rows)
    caps = [_num(r, f"{pool}_capacity") for r in rows]
    flights = [_num(r, "in_flight") for r in rows]
    stacks = [[_num(r, f"{pool}_{suffix}") or 0 for suffix, _, _ in STACK] for r in rows]
    top_value = max([c or 0 for c in caps] + [sum(s) for s in stacks] + [f or 0 for f in flights]
                    + [1])

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + TOP + plot_h - plot_h * v / top_value

    out = [f'<g class="panel" data-pool="{pool}">']
    out.append(f'<text x="{LEFT}" y="{top + 16}" font-size="14" font-weight="bold">'
               f'{escape(title)}: occupancy over the example\'s steps</text>')
    out.append(f'<rect x="{LEFT}" y="{top + TOP}" width="{plot_w}" height="{plot_h}" '
               f'fill="#fafafa" stroke="#cccccc"/>')
    for frac in (0.0, 0.5, 1.0):   # y axis ticks
        v = round(top_value * frac)
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{v}</text>')
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#e5e5e5"/>')
    # stacked areas, drawn as one bar per sample (samples are states, not a continuum)
    bar = max(plot_w / n * 0.8, 1.0)
    for i, stack in enumerate(stacks):
        base = 0
        for (suffix, legend, colour), v in zip(STACK, stack):
            if v:
                out.append(f'<rect x="{x(i) - bar / 2:.1f}" y="{y(base + v):.1f}" '
                           f'width="{bar:.1f}" height="{y(base) - y(base + v):.1f}" '
                           f'fill="{colour}" fill-opacity="0.85">'
                           f'<title>{escape(_label(rows[i]))}: {v} {legend}</title></rect>')
            base += v
    # the capacity line, per sample, and the gap to it (objects nowhere) called out
    pts = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, c in enumerate(caps) if c is not None)
    if pts:
        out.append(f'<polyline class="capacity" points="{pts}" fill="none" '
                   f'stroke="{CAPACITY_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/>')
    gaps = []
    for i, (c, stack) in enumerate(zip(caps, stacks)):
        if c is not None and sum(stack) != c:   # objects nowhere (or counted twice)
            lo, hi = sorted((sum(stack), c))
            out.append(f'<rect class="gap" x="{x(i) - bar / 2:.1f}" y="{y(hi):.1f}" '
                       f'width="{bar:.1f}" height="{y(lo) - y(hi):.1f}" fill="none" '
                       f'stroke="{VIOLATION_COLOUR}" stroke-width="2">'
                       f'<title>{escape(_label(rows[i]))}: {sum(stack) - c:+d} vs capacity'
                       f'</title></rect>')
            gaps.append(f"{_label(rows[i])}: {sum(stack) - c:+d} vs capacity")
    pts = " ".join(f"{x(i):.1f},{y(f):.1f}" for i, f in enumerate(flights) if f is not None)
    if pts:
        out.append(f'<polyline class="in-flight" points="{pts}" fill="none" '
                   f'stroke="{IN_FLIGHT_COLOUR}" stroke-width="2"/>')
    # x axis: every sample's step; teardown and violation samples named
    every = max(1, n // 16)
    for i, r in enumerate(rows):
        phase = str(r.get("phase", "step"))
        if phase != "step":
            colour = VIOLATION_COLOUR if phase == "violation" else "#555555"
            out.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top + TOP}" '
                       f'y2="{top + TOP + plot_h}" stroke="{colour}" stroke-width="1.5" '
                       f'stroke-dasharray="3 2"/>')
            name = f"{violation} violation" if phase == "violation" and violation else phase
            out.append(f'<text class="phase" x="{x(i):.1f}" y="{top + TOP - 4}" '
                       f'font-size="11" text-anchor="middle" fill="{colour}">'
                       f'{escape(name)}</text>')
        if i % every == 0 or phase != "step":
            out.append(f'<text x="{x(i):.1f}" y="{top + TOP + plot_h + 14}" font-size="10" '
                       f'text-anchor="middle">{escape(str(r.get("step", "")))}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{top + PANEL_HEIGHT - 8}" '
               f'font-size="11" text-anchor="middle">step of the example (one bar per '
               f'sample)</text>')
    # legend
    lx, ly = LEFT + plot_w + 14, top + TOP + 4
    entries = [(legend, colour, "box") for _, legend, colour in STACK]
    entries += [("capacity", CAPACITY_COLOUR, "dash"), ("capsules in flight",
                                                        IN_FLIGHT_COLOUR, "line")]
    for k, (legend, colour, how) in enumerate(entries):
        yy = ly + 18 * k
        if how == "box":
            out.append(f'<rect x="{lx}" y="{yy}" width="12" height="12" fill="{colour}"/>')
        else:
            dash = ' stroke-dasharray="6 3"' if how == "dash" else ""
            out.append(f'<line x1="{lx}" x2="{lx + 12}" y1="{yy + 6}" y2="{yy + 6}" '
                       f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 18}" y="{yy + 10}" font-size="11">{escape(legend)}</text>')
    for k, gap in enumerate(gaps[-3:]):   # the last few samples off balance, in words
        out.append(f'<text class="gap-note" x="{lx}" y="{ly + 18 * len(entries) + 8 + 14 * k}" '
                   f'font-size="11" fill="{VIOLATION_COLOUR}">{escape(gap)}</text>')
    out.append("</g>")
    return out


def pool_occupancy_svg(rows: Sequence[Mapping[str, object]], violation: str = "") -> str:
    """The plot of ``rows`` as an SVG document; ``violation`` (a property ID) names the
    violation sample.  Raises ValueError when no sample has a pool to plot."""
    pools = pools_in(rows)
    if not rows or not pools:
        raise ValueError("no pool samples to plot (the target declares no pool counts, or "
                         "no sample was taken)")
    height = PANEL_HEIGHT * len(pools)
    caption = "pool occupancy over steps" + (f" at a {violation} violation" if violation
                                             else "")
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" role="img">')]
    parts.append(f"<title>{escape(caption)}</title>")
    parts.append(f'<rect width="{WIDTH}" height="{height}" fill="white"/>')
    for k, (pool, title) in enumerate(pools):
        parts += _panel(rows, pool, title, k * PANEL_HEIGHT, violation)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
