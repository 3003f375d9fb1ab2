"""The data docs' PNG charts: the date × version status calendar and the trends over the history.

Pictures, not tables: at ten years of daily bundles a chart costs the same few kilobytes as at ten.
matplotlib is imported here only, when charts are drawn.
"""

from __future__ import annotations

import datetime as dt
import re

STATUS_CODES = {"ok": 1, "failed_validation": 2, "failed_processing": 3}  # anything else: 3 as well
CALENDAR_COLOURS = ["#eeeeee", "#4caf50", "#f5a623", "#b42318"]  # no bundle, ok, failed validation, failed
WINDOW_SHADE = "#1f6feb"


def as_date(text):
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        return None


def _x(day: dt.date, offset_days: float = 0.0) -> dt.datetime:
    """A date as matplotlib's x value; datetimes, because date + 12 hours is still the same date."""
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(days=offset_days)


def version_key(version: str):
    """v2 before v10: numbers in a version compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", version) if part]


def _records(b: dict):
    return (b.get("counts") or {}).get("records_out")


def _quality(b: dict):
    return (b.get("quality") or {}).get("mean_score")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never a display, never a GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path) -> None:
    figure.savefig(path, metadata={"Software": None})  # no version stamp: same data, same file
    _pyplot().close(figure)


def _dates(bundles):
    return [d for d in (as_date(b.get("date")) for b in bundles) if d]


def _date_axis(axes, bundles: list[dict]) -> None:
    """The x axis spans exactly the bundles' dates; day ticks for short spans, calendar ticks else."""
    import matplotlib.dates as mdates

    dates = _dates(bundles)
    short = (max(dates) - min(dates)).days < 10
    locator = mdates.DayLocator() if short else mdates.AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.set_xlim(_x(min(dates), -0.5), _x(max(dates), 0.5))  # the first and last day, and no day more


def _shade_window(axes, window_dates: list[dt.date]) -> None:
    if window_dates:
        axes.axvspan(_x(min(window_dates), -0.5), _x(max(window_dates), 0.5), color=WINDOW_SHADE, alpha=0.08, lw=0)


def _line(axes, bundles, versions, value) -> None:
    many = len(bundles) > 200  # markers turn a long history into a smear
    for version in versions:
        points = [
            (_x(as_date(b["date"])), value(b))
            for b in bundles
            if b.get("version") == version and value(b) is not None and as_date(b.get("date"))
        ]
        if points:
            axes.plot(*zip(*points), marker=None if many else "o", markersize=3, lw=1, label=version)


def _failures(axes, bundles, versions) -> None:
    """Failed expectations per bundle (bars); failed-to-process bundles as hatched red bars."""
    width = 0.8 / max(len(versions), 1)
    for i, version in enumerate(versions):
        mine = [b for b in bundles if b.get("version") == version and as_date(b.get("date"))]
        offset = (i - (len(versions) - 1) / 2) * width
        failed = [
            (_x(as_date(b["date"]), offset), (b.get("validation") or {}).get("failed") or 0)
            for b in mine
            if b["status"] == "failed_validation"
        ]
        if failed:
            axes.bar(*zip(*failed), width=width, label=f"{version}: failed expectations")
        broken = [_x(as_date(b["date"]), offset) for b in mine if b["status"] not in ("ok", "failed_validation")]
        if broken:
            label = f"{version}: failed to process"
            axes.bar(broken, [1] * len(broken), width=width, color="none", edgecolor="#b42318", hatch="//", label=label)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylim(0, max(1.0, axes.get_ylim()[1]))


TRENDS = [
    ("records.png", "Records out", "Refined records per bundle, one line per version.", _records),
    (
        "quality.png",
        "Mean quality score",
        "Mean record quality score per bundle (0 to 1), one line per version.",
        _quality,
    ),
]


def draw_trends(bundles: list[dict], window: set[str], out) -> list[dict]:
    """Trend charts over the history in out; [{"file", "title", "caption"}]; failures only if any."""
    plt = _pyplot()
    versions = sorted({b.get("version") or "" for b in bundles}, key=version_key)
    window_dates = _dates([b for b in bundles if b["bundle"] in window])
    shaded = " The shaded span is the last run's window." if window_dates else ""
    charts = []
    failing = any(b["failed"] for b in bundles)
    plots = [
        (name, title, caption, lambda a, v=value: _line(a, bundles, versions, v))
        for name, title, caption, value in TRENDS
    ]
    if failing:
        caption = "Failed expectations per failing bundle; hatched: the bundle could not be processed."
        plots.append(("failures.png", "Failures", caption, lambda a: _failures(a, bundles, versions)))
    for name, title, caption, draw in plots:
        figure, axes = plt.subplots(figsize=(9, 2.6), dpi=100)
        draw(axes)
        _date_axis(axes, bundles)
        _shade_window(axes, window_dates)
        axes.tick_params(labelsize=8)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        figure.tight_layout()
        _save(figure, out / name)
        charts.append({"file": f"charts/{name}", "title": title, "caption": caption + shaded})
    return charts


def calendar_grid(bundles: list[dict]) -> tuple[list[str], list[list[int]]]:
    """Rows "year version" (newest year first) × 366 day-of-year columns of status codes (0: none)."""
    versions = sorted({b.get("version") or "" for b in bundles}, key=version_key)
    years = sorted({d.year for d in _dates(bundles)}, reverse=True)
    index = {(y, v): i for i, (y, v) in enumerate((y, v) for y in years for v in versions)}
    grid = [[0] * 366 for _ in index]
    for b in bundles:
        day = as_date(b.get("date"))
        if day:
            code = STATUS_CODES.get(b["status"], 3)
            row = grid[index[(day.year, b.get("version") or "")]]
            row[day.timetuple().tm_yday - 1] = max(row[day.timetuple().tm_yday - 1], code)
    return [f"{y} {v}" for y, v in index], grid


def _calendar_axis(axes, bundles: list[dict]) -> None:
    """Month ticks over whole years; a history within one year of under two months shows its days."""
    dates = _dates(bundles)
    first, last = min(dates).timetuple().tm_yday - 1, max(dates).timetuple().tm_yday - 1
    if min(dates).year == max(dates).year and last - first < 62:
        step = max(1, (last - first + 1) // 15)
        days = [min(dates) + dt.timedelta(days=n) for n in range(0, last - first + 1, step)]
        axes.set_xticks([d.timetuple().tm_yday - 1 for d in days], [d.strftime("%d %b") for d in days], fontsize=7)
        axes.set_xlim(first - 0.5, last + 0.5)
        return
    starts = [dt.date(2001, m, 1).timetuple().tm_yday - 1 for m in range(1, 13)]  # a common year's month starts
    axes.set_xticks(starts, [dt.date(2001, m, 1).strftime("%b") for m in range(1, 13)], fontsize=7)


def draw_calendar(bundles: list[dict], window: set[str], out) -> dict:
    """The status of every bundle as one coloured cell per date and version; the window outlined."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Rectangle

    plt = _pyplot()
    labels, grid = calendar_grid(bundles)
    figure, axes = plt.subplots(figsize=(11, 0.9 + 0.22 * len(labels)), dpi=100)
    axes.imshow(grid, cmap=ListedColormap(CALENDAR_COLOURS), vmin=0, vmax=3, aspect="auto", interpolation="nearest")
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    _calendar_axis(axes, bundles)
    rows = {label: i for i, label in enumerate(labels)}
    for b in bundles:
        day = as_date(b.get("date"))
        if b["bundle"] in window and day:
            row = rows[f"{day.year} {b.get('version') or ''}"]
            day_index = day.timetuple().tm_yday - 1
            axes.add_patch(Rectangle((day_index - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=WINDOW_SHADE, lw=1))
    figure.tight_layout()
    _save(figure, out / "calendar.png")
    return {
        "file": "charts/calendar.png",
        "title": "Status calendar",
        "caption": "One cell per date and version: green ok, orange failed validation, red failed to process, "
        "grey no bundle" + ("; blue outline: the last run's window." if window else "."),
    }
