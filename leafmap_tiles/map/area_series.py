"""Time series over an area: ``slider.series(geometry)`` and the draw control that plots it.

One request per frame to the tile server (``POST /statistics/{id}``), sent from a few
kernel threads at once so that the server reads the frames concurrently on its render
threads; a tqdm bar for long series.  The plot and the CSV link go in the slider's series
panel.  Only this module and ``time_slider`` know about the widgets of the area series.
"""

from __future__ import annotations

import base64
import html
import io
import re
from concurrent.futures import ThreadPoolExecutor

from leafmap_tiles.errors import BadRequestError

BASE_STATS = ("count", "mean", "median", "min", "max", "std")
#: Frames at which a progress bar appears by default (``progress=None``).
PROGRESS_FROM = 20
#: Requests in flight at once from the kernel (the server runs them on its render threads).
CONCURRENT_REQUESTS = 8

_PCT = re.compile(r"^p(\d+(?:\.\d+)?)$")


def check_stats(stats) -> tuple[list[str], list[float]]:
    """(names, percentiles) for ``stats`` (one name, or a list of them): names from
    :data:`BASE_STATS` or ``"p<q>"`` (0 <= q <= 100, e.g. ``"p10"``, ``"p2.5"``; any
    spelling of the number, ``"p90.0"`` and ``"p090"`` are ``"p90"``: see
    :func:`stat_key`); :class:`BadRequestError` otherwise."""
    if isinstance(stats, str):
        stats = (stats,)
    try:
        names = [str(s) for s in stats]
    except TypeError:
        raise BadRequestError(f"stats must be a list of names such as ('mean', 'median', 'p90'), got {stats!r}") from None
    if not names:
        raise BadRequestError("stats is empty: give e.g. ('mean', 'median')")
    pct = []
    for n in names:
        m = _PCT.match(n)
        if m:
            q = float(m.group(1))
            if q > 100:
                raise BadRequestError(f"percentile {n!r} is above 100")
            pct.append(q)
        elif n not in BASE_STATS:
            raise BadRequestError(f"unknown statistic {n!r}: use {', '.join(BASE_STATS)} or p<q> (e.g. 'p90')")
    return list(dict.fromkeys(names)), list(dict.fromkeys(pct))


def _percentile_key(q: float) -> str:
    return f"p{int(q)}" if float(q).is_integer() else f"p{q:g}"


def stat_key(name: str) -> str:
    """The key of statistic ``name`` in the server's answer: a percentile in its
    canonical form (``"p90.0"``, ``"p090"`` -> ``"p90"``; ``"p2.50"`` -> ``"p2.5"``),
    any other name as it is."""
    m = _PCT.match(name)
    return _percentile_key(float(m.group(1))) if m else name


def frame_statistics(layers, geometry: dict, percentiles, progress=None, desc="area series",
                     stats=None) -> list[dict | None]:
    """Statistics of the first output band of each layer over ``geometry`` (GeoJSON dict,
    EPSG:4326), one request per layer, :data:`CONCURRENT_REQUESTS` at a time; None for a
    layer that is not one of ours.  ``stats``: the names of :data:`BASE_STATS` the
    server computes (None: all; ``count`` and the percentiles always).  Raises the
    first error (e.g. ``BadRequestError``)."""
    jobs = [(i, layer) for i, layer in enumerate(layers)
            if getattr(layer, "source_id", None) is not None and getattr(layer, "server", None) is not None]
    out: list[dict | None] = [None] * len(layers)
    if not jobs:
        return out
    # the first request alone: a bad geometry fails once, before the others are sent
    i0, first = jobs[0]

    def ask(layer):
        r = layer.server.statistics(layer.source_id, geometry, layer.style, percentiles,
                                    scale=getattr(layer, "scale", None), offset=getattr(layer, "offset", None),
                                    stats=stats)
        return {**r["statistics"][0], "pixels": r["pixels"]}

    show = progress if progress is not None else len(jobs) >= PROGRESS_FROM
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="frame")
    try:
        out[i0] = ask(first)
        if bar is not None:
            bar.update(1)
        rest = jobs[1:]
        if rest:
            with ThreadPoolExecutor(max_workers=min(CONCURRENT_REQUESTS, len(rest)),
                                    thread_name_prefix="leafmap_tiles-series") as pool:
                futures = [(i, pool.submit(ask, layer)) for i, layer in rest]
                for i, fut in futures:
                    out[i] = fut.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def area_series(slider, geometry, stats=("mean", "median"), progress=None):
    """Body of :meth:`TimeSlider.series` (see there)."""
    import pandas as pd

    from leafmap_tiles.map.layers import geometry_json
    from leafmap_tiles.map.time_slider import parse_date

    names, pct = check_stats(stats)
    geom = geometry_json(geometry)
    # only what the DataFrame shows is computed (e.g. no std nor min/max for mean, median)
    wanted = [n for n in names if n in BASE_STATS and n != "count"]
    results = frame_statistics(slider.layers, geom, pct, progress=progress, desc=f"{slider.name}: series",
                               stats=wanted)
    columns = list(names) + (["count"] if "count" not in names else [])
    rows = []
    keys = {n: stat_key(n) for n in columns}  # the column keeps the name asked ("p90.0")
    for res in results:
        rows.append({n: (None if res is None else res.get(keys[n])) for n in columns})
    dates = [parse_date(label) for label in slider.labels]
    if all(d is not None for d in dates):
        index = pd.DatetimeIndex(pd.to_datetime(dates), name="date")
    else:
        index = pd.Index(list(slider.labels), name="frame")
    df = pd.DataFrame(rows, index=index, columns=columns)
    for c in columns:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["count"] = df["count"].fillna(0).astype("int64")
    df.insert(0, "label", list(slider.labels))
    df.attrs["quantity"] = slider.quantity
    df.attrs["geometry"] = geom
    return df


def plot_area_series(df, stats, ylabel: str | None = None, title: str | None = None) -> bytes:
    """PNG (330 x 190 px) of the columns ``stats`` of an area-series DataFrame: dates on
    the x axis when the index is dates; frames without valid pixels are gaps."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.3, 1.9), dpi=100)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor((1, 1, 1, 0.9))
    ax = fig.add_subplot(111)
    dated = df.index.name == "date"
    xs = np.array(df.index.values, dtype="datetime64[D]") if dated else np.arange(len(df))
    for name in stats:
        if name == "count":
            continue
        ax.plot(xs, df[name].to_numpy(dtype="float64"), "-o", ms=3, label=name)
    if dated:
        import matplotlib.dates as mdates

        loc = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax.set_xlabel("date", fontsize=7)
    else:
        ax.set_xticks(xs, list(df["label"]), rotation=45, ha="right")
        ax.set_xlabel("frame", fontsize=7)
    if ylabel:
        ax.set_ylabel(ylabel if len(ylabel) <= 28 else ylabel[:27] + "…", fontsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    if len([s for s in stats if s != "count"]) > 1:
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
    return buf.getvalue()


def csv_link(df, filename: str = "area_series.csv") -> str:
    """HTML of a download button for ``df`` as CSV (a ``data:`` URL: the browser saves
    the file without another request to the kernel or the tile server)."""
    data = base64.b64encode(df.to_csv().encode("utf-8")).decode("ascii")
    name = html.escape(filename, quote=True)
    return (f"<a download='{name}' href='data:text/csv;base64,{data}' title='Download the series as CSV' "
            "style='font-size:11px;padding:1px 6px;border:1px solid #999;border-radius:3px;"
            "text-decoration:none;color:#222;background:#f3f3f3'>Download CSV</a>")


class AreaDraw:
    """An ipyleaflet ``DrawControl`` on the slider's map (polygons and rectangles only):
    each polygon drawn plots the area series of ``stats`` in the series panel, with a CSV
    download button; the DataFrame is ``slider.area_series`` (and ``last_series`` here).
    Editing a polygon (the edit tool, then Save) recomputes the series of its new shape;
    deleting the polygon whose series is shown clears the series panel.  While a draw,
    edit or delete tool is on (``mode``, reported by the browser through
    :class:`~leafmap_tiles.map.draw_mode.DrawModeWatcher`), map clicks are the tool's:
    the inspector shows no point and no pixel series for them."""

    def __init__(self, slider, stats=("mean", "median"), position: str = "topleft"):
        import ipyleaflet

        self.slider = slider
        self.stats, _ = check_stats(stats)
        self.last_series = None
        self.last_error: str | None = None
        self.geometry: dict | None = None  # the polygon (GeoJSON, as the browser sent it) of last_series
        shape = {"shapeOptions": {"color": "#e6194b", "weight": 2, "fillOpacity": 0.1}}
        self.control = ipyleaflet.DrawControl(polygon=shape, rectangle=shape, polyline={}, circlemarker={},
                                              circle={}, marker={}, position=position)
        self.control.on_draw(self._on_draw)
        self.watcher = None
        self.watcher_control = None
        try:
            from leafmap_tiles.map.draw_mode import DrawModeWatcher
        except ImportError:  # no anywidget: the vertex rule below still applies
            pass
        else:
            import ipywidgets

            self.watcher = DrawModeWatcher(layout=ipywidgets.Layout(width="0px", height="0px"))
            self.watcher_control = ipyleaflet.WidgetControl(widget=self.watcher, position="bottomleft",
                                                            transparent_bg=True)
        self._vertices: list = []
        self._created_at = -1e9
        insp = getattr(slider.map, "inspector", None)
        if insp is not None and hasattr(insp, "click_filters"):
            insp.click_filters.append(self)

    @property
    def mode(self) -> str:
        """The draw tool on in the browser: ``"draw"``, ``"edit"``, ``"delete"`` or ``""``."""
        return self.watcher.mode if self.watcher is not None else ""

    # The browser reports the clicks that place a polygon's vertices as map clicks too, and
    # they may reach the kernel after the polygon itself (each click's inspector query takes
    # its time): each vertex of a new polygon absorbs one click near it (the first vertex
    # two: it also closes the ring) within VERTEX_CLICK_SECONDS.
    VERTEX_CLICK_SECONDS = 10.0
    VERTEX_CLICK_PIXELS = 12

    def _near(self, lon: float, lat: float, x: float, y: float) -> bool:
        import math

        try:
            zoom = float(self.slider.map.zoom)
        except (TypeError, ValueError):
            zoom = 12.0
        tol = self.VERTEX_CLICK_PIXELS * 360.0 / (256.0 * 2 ** zoom)
        return abs(lon - x) <= tol and abs(lat - y) <= tol * max(math.cos(math.radians(lat)), 0.1)

    def _take_vertex(self, lon: float, lat: float) -> bool:
        for k, (x, y) in enumerate(self._vertices):
            if self._near(lon, lat, x, y):
                del self._vertices[k]
                return True
        return False

    def _is_vertex_click(self, lon: float, lat: float) -> bool:
        import time

        if time.monotonic() - self._created_at > self.VERTEX_CLICK_SECONDS:
            self._vertices = []
            return False
        return self._take_vertex(lon, lat)

    def __call__(self, lon: float, lat: float) -> bool:
        """The inspector's click filter: True for a click that is the draw tool's (made
        while a draw, edit or delete tool is on, or placing a new polygon's vertex)."""
        return bool(self.mode) or self._is_vertex_click(lon, lat)

    def undo_click(self, lon: float, lat: float) -> None:
        """The inspector showed a click that turns out to be a vertex of the polygon
        drawn meanwhile: hide its point and show the area series again."""
        if not self._is_vertex_click(lon, lat):
            return
        insp = getattr(self.slider.map, "inspector", None)
        if insp is not None:
            insp.dismiss()
        if self.last_series is not None and not self.slider.closed:
            self.slider.show_area_series(self.last_series, self.stats)

    def _on_draw(self, target, action, geo_json) -> None:
        """ipyleaflet's draw callback: ``action`` ``"created"``, ``"edited"`` or
        ``"deleted"``, ``geo_json`` the shape's GeoJSON ``Feature`` (one call per shape)."""
        if not isinstance(geo_json, dict):
            return
        geometry = geo_json.get("geometry") or geo_json
        if action == "created":
            self._on_created(geometry)
        elif action == "edited":
            self._show_or_say(geometry)
        elif action == "deleted":
            if self.geometry is not None and same_shape(geometry, self.geometry):
                self.clear()

    def _on_created(self, geometry) -> None:
        import time

        self._created_at = time.monotonic()
        try:
            import shapely.geometry

            self._vertices = [tuple(c[:2]) for c in shapely.geometry.shape(geometry).exterior.coords]
        except Exception:
            self._vertices = []
        insp = getattr(self.slider.map, "inspector", None)
        last = getattr(insp, "last", None)
        if last and self._take_vertex(last["lon"], last["lat"]):  # a vertex click shown as a point
            insp.dismiss()
        self._show_or_say(geometry)

    def _show_or_say(self, geometry) -> None:
        try:
            self.show(geometry)
        except BadRequestError as exc:  # e.g. a polygon of zero area: say so in the panel
            self.clear()
            self.last_error = str(exc)
            self.slider.series_panel.set_title(f"{self.slider.name}: {exc}"[:80])
            self.slider.series_panel.show(self.slider.map)

    def show(self, geometry):
        """Compute the series of ``geometry`` and show it in the series panel; returns the DataFrame."""
        s = self.slider
        df = s.series(geometry, stats=self.stats)
        self.last_series = df
        self.geometry = geometry if isinstance(geometry, dict) else None
        self.last_error = None
        s.show_area_series(df, self.stats)
        return df

    def clear(self) -> None:
        """Forget the polygon's series; the series panel is emptied and hidden when it
        shows that series (a pixel series shown since then stays)."""
        df, self.last_series, self.geometry, self.last_error = self.last_series, None, None, None
        if df is not None and self.slider.area_series is df:
            self.slider.clear_area_series()

    def close(self) -> None:
        m = self.slider.map
        for control in (self.control, self.watcher_control):
            if control is not None and control in m.controls:
                m.remove(control)
        self.control.on_draw(self._on_draw, remove=True)
        insp = getattr(m, "inspector", None)
        if insp is not None and self in getattr(insp, "click_filters", []):
            insp.click_filters.remove(self)


def same_shape(a: dict, b: dict, tolerance: float = 1e-9) -> bool:
    """Whether two GeoJSON geometries are the same shape (same vertices, in any ring
    order or starting vertex), to ``tolerance`` degrees."""
    import shapely.geometry

    try:
        ga, gb = shapely.geometry.shape(a).normalize(), shapely.geometry.shape(b).normalize()
    except Exception:
        return False
    return bool(ga.equals_exact(gb, tolerance))
