"""``TimeSlider``: step through dated rasters on a map.

Every frame is its own tile layer with its own URL; nothing is overwritten, so any
frame can be shown again.  The frames live in one ``FrameGroup`` (a LayerGroup: one
entry in the layer control).  The current frame is drawn on top at the group's
opacity; the frames before and after it stay in the group at opacity 0 so that the
browser has their tiles before they are shown.  Play/pause drive one
:class:`~leafmap_tiles.map.ticker.Ticker` thread.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import re
import threading
import time

import ipyleaflet
import ipywidgets
from ipyleaflet import WidgetControl
from traitlets import Bool, Float

from leafmap_tiles.map import values as _values
from leafmap_tiles.map.ticker import Ticker
from leafmap_tiles.errors import StyleError

# a 1 x 1 transparent PNG (grey + alpha 0): the URL of the frames a playing time slider
# does not show soon (see TimeSlider._park)
PARKED_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

_DATE_PATTERNS = [
    (re.compile(r"(?<!\d)(\d{4})[-_.](\d{2})[-_.](\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{4})(?!\d)"), "y"),
]


def label_from_name(name) -> str | None:
    """``"YYYY-MM-DD"`` (or ``"YYYY"``) found in a file name or layer name, else None.
    Accepts ``YYYYMMDD``, ``YYYY-MM-DD`` (also ``_`` or ``.`` as separator) and ``YYYY``
    (years 1900-2199) not glued to other digits."""
    if name is None:
        return None
    text = os.path.basename(os.fspath(name)) if isinstance(name, (str, os.PathLike)) else str(name)
    for pattern, kind in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            y = int(m.group(1))
            if not 1900 <= y < 2200:
                continue
            if kind == "y":
                return f"{y:04d}"
            try:
                d = _dt.date(y, int(m.group(2)), int(m.group(3)))
            except ValueError:
                continue
            return d.isoformat()
    return None


def parse_date(label):
    """A ``datetime.date`` for a label like ``2020-08-31``, ``20200831`` or ``2020``."""
    if isinstance(label, _dt.datetime):
        return label.date()
    if isinstance(label, _dt.date):
        return label
    s = label_from_name(str(label))
    if s is None:
        return None
    if len(s) == 4:
        return _dt.date(int(s), 1, 1)
    return _dt.date.fromisoformat(s)


class FrameGroup(ipyleaflet.LayerGroup):
    """The slider's layers.  ``opacity``/``visible`` apply to the frame shown."""

    opacity = Float(1.0, min=0.0, max=1.0)
    visible = Bool(True)


def _is_layer(obj) -> bool:
    return isinstance(obj, ipyleaflet.Layer)


#: Frames registered with the tile server at once by ``add_time_slider``.
REGISTER_CONCURRENCY = 4


def build_frames(m, layers, labels=None, style=None):
    """([labels], [layers], [created by us]) from what ``add_time_slider`` accepts.
    Creates a layer for every source (released again if a later one fails)."""
    style = dict(style or {})
    if hasattr(layers, "to_time_sources"):  # e.g. a leafmap_tiles.collections.Collection
        return _collection_frames(m, layers, labels, style)
    if isinstance(layers, dict):
        items = list(layers.items())
        keys = [str(k) for k, _ in items]
        objs = [v for _, v in items]
    elif isinstance(layers, (list, tuple)):
        objs = list(layers)
        keys = None
    else:
        raise TypeError("layers must be a dict {label: layer or source} or a list of layers or sources")
    if not objs:
        raise StyleError("add_time_slider needs at least one layer or source")
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != len(objs):
            raise StyleError(f"{len(labels)} labels for {len(objs)} frames")
    elif keys is not None:
        labels = keys
    else:
        labels = []
        for i, obj in enumerate(objs):
            name = getattr(obj, "name", None) if _is_layer(obj) else (obj if isinstance(obj, (str, os.PathLike)) else None)
            labels.append(label_from_name(name) or (str(name) if _is_layer(obj) and name else f"{i + 1}"))
    if style and any(_is_layer(o) for o in objs):
        raise TypeError(f"style arguments ({', '.join(sorted(style))}) apply to sources, not to ready-made layers")
    for obj in objs:
        if _is_layer(obj) and not (obj.has_trait("opacity") and obj.has_trait("visible")):
            raise TypeError(f"{type(obj).__name__} has no opacity/visible: a frame must be a tile layer")
    created = [not _is_layer(obj) for obj in objs]
    todo = [k for k, c in enumerate(created) if c]
    made: dict = {}
    errors: dict = {}

    def make(k):
        try:
            made[k] = m.create_raster_layer(objs[k], layer_name=labels[k], **style)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in frame order
            errors[k] = exc

    # the server registers (opens, checks, describes) several files at once on its
    # threads: REGISTER_CONCURRENCY requests in flight, the layers in frame order
    if len(todo) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(REGISTER_CONCURRENCY, len(todo)),
                                thread_name_prefix="leafmap_tiles-frames") as pool:
            list(pool.map(make, todo))
    else:
        for k in todo:
            make(k)
    if errors:
        for f in made.values():
            f.release()
        raise errors[min(errors)]
    frames = [made[k] if c else obj for k, (obj, c) in enumerate(zip(objs, created))]
    if style.get("vmin") is None and style.get("vmax") is None:
        common_stretch([f for f, c in zip(frames, created) if c])
    return labels, frames, created


def _collection_frames(m, collection, labels, style):
    """One frame per date of a collection's index (``style["asset"]`` picks the asset;
    all items of a date as one mosaic, with the index's nodata/scale/offset)."""
    from leafmap_tiles.map.layers import make_raster_layer

    sources = collection.to_time_sources(style.pop("asset", None))
    if labels is not None and len(labels) != len(sources):
        raise StyleError(f"{len(labels)} labels for {len(sources)} frames")
    labels = [str(x) for x in labels] if labels is not None else list(sources)
    frames = []
    try:
        for label, src in zip(labels, sources.values()):
            urls = src["urls"]
            kw = {"nodata": src["nodata"], "scale": src["scale"], "offset": src["offset"],
                  "protected": src["protected"], **style}
            frames.append(make_raster_layer(m.server, urls if len(urls) > 1 else urls[0],
                                            name=m._unique_name(label), **kw))
    except Exception:
        for f in frames:
            f.release()
        raise
    if style.get("vmin") is None and style.get("vmax") is None:
        common_stretch(frames)
    return labels, frames, [True] * len(frames)


def common_stretch(frames) -> None:
    """Give frames styled with default (per-file percentile) stretches one common
    range, the widest of theirs, so that a colour means the same value in every
    frame and one colorbar fits them all.  Frames not yet on a map only."""
    frames = [f for f in frames if getattr(f, "stretch", None) and not getattr(f, "palette", False)
              and not isinstance(getattr(f, "colormap", None), dict)
              and not str((f.style or {}).get("colormap", "")).startswith("{")]
    if len(frames) < 2 or len({len(f.stretch.get("vmin", [])) for f in frames}) != 1:
        return
    n = len(frames[0].stretch["vmin"])
    if n == 0:
        return
    vmin = [min(f.stretch["vmin"][i] for f in frames) for i in range(n)]
    vmax = [max(f.stretch["vmax"][i] for f in frames) for i in range(n)]
    for f in frames:
        f.stretch = {"vmin": list(vmin), "vmax": list(vmax)}
        f.style = {**f.style, "vmin": ",".join(repr(float(v)) for v in vmin),
                   "vmax": ",".join(repr(float(v)) for v in vmax)}
        f.refresh_url()


class TimeSlider:
    """A time slider on a map (made by :meth:`Map.add_time_slider`).

    Widgets: ``slider`` (IntSlider, value = frame index), ``play_button``,
    ``pause_button``, ``close_button``, ``label`` (the current frame's label),
    ``control`` (the WidgetControl holding them).  ``layers``/``labels`` list the
    frames in order; ``group`` is the FrameGroup on the map; ``current_layer`` is the
    frame shown.  ``values_at(lon, lat)`` gives the pixel's series over all frames.

    How frames change without blanking the map: the frames stay in ``group`` in one
    fixed order (the browser keeps a layer only while its position in the group is
    unchanged); the frame shown has the group's opacity, the others opacity 0, so the
    browser loads their tiles ahead.  Series of up to ``preload`` frames are loaded
    whole; longer ones get the ``window`` frames on each side of the one shown (added
    at the end of the group as they are needed, never reordered).  Once the browser
    reports tile loads, the frame shown before stays drawn until the new one's tiles
    have loaded (``drawn_index``), and Play waits for that before counting
    ``time_interval``: it never outruns the tiles.  Play also moves on only once the
    next frame's tiles are in, and those render after the shown frame's (the server
    treats them as a preload), so that a zoom or pan while playing draws the frame on
    screen first and the swap to the next one is instant.

    While playing, only the frame shown, the one drawn before it and the
    ``PLAY_AHEAD`` frames after it load; the others point at a blank image
    (``PARKED_URL``) and get their own URL back when Play nears them or on Pause.  The
    reason: when the view changes (zoom, pan) the browser asks for every frame's tiles
    at once and sends at most 6 requests at a time to one server, in the group's order,
    so the shown frame's tiles waited behind those of the frames before it (measured:
    2.5-3.2 s for a zoom step of the playing 10-date NAIP series, 60 requests;
    ``benchmarks/zoom_browser.py --play``).  Paused, every frame preloads, so that
    scrubbing shows any of them at once.
    """

    PRELOAD = 24  # whole series up to this many frames
    WINDOW = 3  # frames on each side of the one shown, for longer series
    MAX_IN_GROUP = 48  # frames kept in the browser for long series
    MAX_WAIT = 15.0  # s that Play waits for a frame's tiles before moving on anyway
    PLAY_AHEAD = 1  # frames after the one shown that keep loading while playing

    def __init__(self, m, labels, frames, created, time_interval=1.0, position="bottomright",
                 slider_length="150px", name="Time slider", preload: int | None = None):
        self.map = m
        self.labels = list(labels)
        self.layers = list(frames)
        self._created = list(created)
        self.time_interval = float(time_interval)
        self.preload = self.PRELOAD if preload is None else int(preload)
        self._lock = threading.RLock()
        self._drawn_cond = threading.Condition(self._lock)
        self._closed = False
        self._extra_controls: list = []
        self.shown_series: list | None = None  # the pixel series shown in the panel
        self.series_point: tuple | None = None
        self.area_series = None  # DataFrame of the last area series shown (slider.series)
        self.draw = None  # AreaDraw, once add_draw_control() was called
        self.value_label: str | None = None
        self.units: str | None = None
        self._saved = [(l.opacity, l.visible, getattr(l, "release_on_remove", None)) if l.has_trait("opacity") else None
                       for l in self.layers]
        for layer in self.layers:
            if hasattr(layer, "release_on_remove"):
                layer.release_on_remove = False  # the slider owns their sources while they are frames
        for layer in self.layers:
            if layer in m.layers:
                m.remove(layer)
        self.name = name
        self.group = FrameGroup(name=name, layers=())
        # browser state: frames whose tiles for the current view have loaded, the frame
        # known to be drawn, and whether a browser reports loads at all (not headless)
        self._loaded: set[int] = set()
        self._parked: dict[int, str] = {}  # hidden frame -> its own URL, while parked
        self.drawn_index: int | None = None
        self.browser_reports_loads = False
        self._in_group: list[int] = []
        self._load_handlers = []
        for i, layer in enumerate(self.layers):
            self._watch_loads(i, layer)
        n = len(self.layers)
        self.slider = ipywidgets.IntSlider(value=0, min=0, max=n - 1, step=1, readout=False,
                                           continuous_update=True, layout=ipywidgets.Layout(width=slider_length))
        self.label = ipywidgets.Label(self.labels[0], layout=ipywidgets.Layout(min_width="80px"))
        btn = dict(layout=ipywidgets.Layout(width="34px", padding="0"))
        self.play_button = ipywidgets.Button(icon="play", tooltip="Play", **btn)
        self.pause_button = ipywidgets.Button(icon="pause", tooltip="Pause", **btn)
        self.close_button = ipywidgets.Button(icon="times", tooltip="Remove the time slider", **btn)
        self.widget = ipywidgets.HBox([self.play_button, self.pause_button, self.slider, self.label, self.close_button])
        self.control = WidgetControl(widget=self.widget, position=position)
        from leafmap_tiles.map.panel import Panel

        self.series_image = ipywidgets.Image(format="png", layout=ipywidgets.Layout(width="330px"))
        # the CSV download button of an area series (hidden for a pixel's series)
        self.series_download = ipywidgets.HTML("", layout=ipywidgets.Layout(display="none"))
        self.series_panel = Panel(f"{name}: time series", ipywidgets.VBox([self.series_image, self.series_download]),
                                  position="topright", on_close=self._on_series_closed)
        self.series_control = self.series_panel.control
        self._ticker = Ticker(self._advance, lambda: self.time_interval, name="leafmap_tiles-time-slider")
        self.index = -1
        self._owner = f"slider-{id(self):x}"
        self._show(0)
        self.slider.observe(self._on_value, names="value")
        self.group.observe(self._on_group_style, names=["opacity", "visible"])
        self.play_button.on_click(lambda _: self.play())
        self.pause_button.on_click(lambda _: self.pause())
        self.close_button.on_click(lambda _: self.close())
        m.add(self.group)
        m.add(self.control)
        m.observe(self._on_map_change, names=["layers", "controls"])

    # ------------------------------------------------------------ frames
    def __len__(self) -> int:
        return len(self.layers)

    @property
    def current_layer(self):
        return self.layers[self.index]

    @property
    def current_label(self) -> str:
        return self.labels[self.index]

    @property
    def visible_layers(self) -> list:
        """Frames drawn with a non-zero opacity: the current one while visible, and for
        a moment the one shown before it, until the browser has the new one's tiles."""
        return [l for l in self.group.layers if l.visible and l.opacity > 0]

    def _neighbours(self, k: int) -> list[int]:
        n = len(self.layers)
        return [j for j in dict.fromkeys([(k - 1) % n, (k + 1) % n]) if j != k]

    def _near(self, k: int) -> list[int]:
        """Frames to keep loaded in the browser while ``k`` is shown: all of a short
        series, else ``k`` and ``WINDOW`` frames on each side (looping)."""
        n = len(self.layers)
        if n <= self.preload:
            return list(range(n))
        w = self.WINDOW
        return list(dict.fromkeys([k] + [(k + d) % n for d in range(1, w + 1)] + [(k - d) % n for d in range(1, w + 1)]))

    def _update_group(self, k: int) -> None:
        """Put the frames near ``k`` in the group: appended, never reordered, so that the
        browser keeps every layer it already has.  A long series drops far frames from
        the end of the group only (removing from the end keeps the others too)."""
        near = self._near(k)
        order = list(self._in_group)
        if len(self.layers) <= self.preload:
            order = list(range(len(self.layers)))  # whole series, in frame order
        else:
            order += [j for j in near if j not in order]
            keep = set(near) | ({self.drawn_index} if self.drawn_index is not None else set())
            while len(order) > self.MAX_IN_GROUP and order[-1] not in keep:
                order.pop()
        if order != self._in_group:
            self._in_group = order
            self.group.layers = tuple(self.layers[j] for j in order)

    def _frame_ready(self, k: int) -> bool:
        return k in self._loaded

    def _show(self, k: int) -> None:
        with self._lock:
            if self._closed:
                return
            self._update_group(k)
            self._unpark([k])
            cur = self.layers[k]
            # show the new frame before hiding the old one: no blank map between them
            cur.visible = self.group.visible
            cur.opacity = self.group.opacity
            keep = {k}
            ready = not self.browser_reports_loads or self._frame_ready(k)
            old = self.drawn_index
            if not ready and old is not None and old != k and old in self._in_group:
                keep.add(old)  # the old frame stays drawn until the new one's tiles are in
            for j in self._in_group:
                if j not in keep:
                    self.layers[j].opacity = 0.0
            self.index = k
            self._park()
            self.label.value = self.labels[k]
            if ready:
                self.drawn_index = k
                self._drawn_cond.notify_all()
        self._prioritise(keep)

    def _prioritise(self, shown) -> None:
        """The hidden frames' tiles render after those of the frames shown (and of every
        other layer): a zoom or pan draws the current frame first, the rest preload."""
        hidden: dict = {}
        for j in self._in_group:
            layer = self.layers[j]
            srv, sid = getattr(layer, "server", None), getattr(layer, "source_id", None)
            if srv is not None and sid and j not in shown:
                hidden.setdefault(id(srv), (srv, []))[1].append(sid)
        servers = {id(getattr(l, "server", None)): getattr(l, "server", None) for l in self.layers}
        for key, srv in servers.items():
            if srv is not None and hasattr(srv, "set_background"):
                srv.set_background(self._owner, hidden.get(key, (srv, []))[1])

    # ------------------------------------------------------------ browser
    def _watch_loads(self, i: int, layer) -> None:
        """Follow the browser's ``loading``/``load`` reports of frame ``i``."""
        if not hasattr(layer, "on_load") or not layer.has_trait("loading"):
            return

        def on_load(**_):
            self._on_frame_loaded(i)

        def on_loading(change):
            if change["new"]:
                with self._lock:
                    if i not in self._parked:  # not the blank tiles of a parked frame
                        self._loaded.discard(i)

        layer.on_load(on_load)
        layer.observe(on_loading, names="loading")
        self._load_handlers.append((layer, on_load, on_loading))

    def _on_frame_loaded(self, i: int) -> None:
        with self._lock:
            if self._closed or i in self._parked:
                return
            self.browser_reports_loads = True
            self._loaded.add(i)
            if i == self.index and self.drawn_index != i:
                old = self.drawn_index
                self.drawn_index = i
                if old is not None and old != i:
                    self.layers[old].opacity = 0.0
            self._drawn_cond.notify_all()  # wait_drawn / wait_loaded

    def _park(self) -> None:
        """While playing, point the frames Play does not show soon at ``PARKED_URL``
        (see the class docstring); paused, every frame of the group has its own URL.
        Called with the lock held, after ``index`` changed."""
        if not self.playing:
            self._unpark(list(self._parked))
            return
        n = len(self.layers)
        keep = {self.index, self.drawn_index} | {(self.index + d) % n for d in range(1, self.PLAY_AHEAD + 1)}
        self._unpark([j for j in self._parked if j in keep])
        for j in self._in_group:
            layer = self.layers[j]
            if j in keep or j in self._parked or getattr(layer, "server", None) is None:
                continue  # only our server's frames: their requests queue with the shown frame's
            self._parked[j] = layer.url
            self._loaded.discard(j)
            layer.url = PARKED_URL

    def _unpark(self, frames) -> None:
        """Give ``frames`` their own URL back (a URL changed meanwhile, e.g. by a
        restyle, is kept); called with the lock held."""
        for j in frames:
            url = self._parked.pop(j, None)
            if url is not None and self.layers[j].url == PARKED_URL:
                self.layers[j].url = url

    def frame_url(self, k: int) -> str:
        """The tile URL of frame ``k`` (its own, also while it is parked)."""
        with self._lock:
            return self._parked.get(k) or self.layers[k].url

    def wait_drawn(self, timeout: float | None = None, while_playing: bool = False) -> bool:
        """Block until the browser has drawn the current frame's tiles (True), or
        ``timeout`` s passed / the slider closed / (with ``while_playing``) Play was
        paused (False).  Without a browser reporting tile loads (headless) it returns
        True at once."""
        return self._wait_for(lambda: self.drawn_index == self.index, timeout, while_playing)

    def _wait_for(self, done, timeout: float | None, while_playing: bool) -> bool:
        """Block until ``done()`` (checked under the lock) or no browser reports loads
        (True), or ``timeout`` s passed / the slider closed / (with ``while_playing``)
        Play was paused (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._drawn_cond:
            while not self._closed and (not while_playing or self._ticker.playing):
                if not self.browser_reports_loads or done():
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._drawn_cond.wait(0.1 if left is None else min(left, 0.1))
        return False

    def _on_value(self, change) -> None:
        self._show(int(change["new"]))

    def _on_group_style(self, change) -> None:
        with self._lock:
            if not self._closed:
                for j in {self.index, self.drawn_index} - {None}:
                    if j == self.index or self.layers[j].opacity > 0:
                        self.layers[j].visible = self.group.visible
                        self.layers[j].opacity = self.group.opacity

    def frames_for_colorbar(self):
        """The frame whose style the slider's one colorbar shows (all frames share it)."""
        return self.layers[0]

    def attach_control(self, control) -> None:
        """Remove ``control`` (e.g. the colorbar) together with the slider."""
        self._extra_controls.append(control)

    # ------------------------------------------------------------ playing
    @property
    def playing(self) -> bool:
        return self._ticker.playing

    @property
    def timer_thread(self):
        """The one thread that advances frames (None before the first Play)."""
        return self._ticker.thread

    def play(self) -> None:
        """Advance one frame every ``time_interval`` seconds, looping; idempotent."""
        if not self._closed:
            self._ticker.play()
            with self._lock:
                self._park()
            self._prioritise({self.index})

    def pause(self) -> None:
        self._ticker.pause()
        if not self._closed:
            with self._lock:
                self._park()  # paused: every frame preloads again (scrubbing shows them at once)
            self._prioritise({self.index})

    def _advance(self) -> None:
        """One Play step, in the timer thread: wait until the browser has loaded the
        next frame's tiles (they load behind the shown frame's, see :meth:`_show`), then
        show it, so that the swap is instant and a zoom or pan while playing draws the
        shown frame first; then wait until it is drawn, so that each frame is on screen
        ``time_interval`` s.  Each wait ends after ``MAX_WAIT`` s, on Pause or close."""
        if self._closed:
            return
        nxt = (self.slider.value + 1) % len(self.layers)
        self.wait_loaded(nxt, self.MAX_WAIT, while_playing=True)
        if self._closed or not self._ticker.playing:
            return
        self.slider.value = nxt
        self.wait_drawn(self.MAX_WAIT, while_playing=True)

    def wait_loaded(self, k: int, timeout: float | None = None, while_playing: bool = False) -> bool:
        """Block until the browser reports frame ``k``'s tiles of the current view
        loaded (True), or ``timeout`` s passed / the slider closed / (with
        ``while_playing``) Play was paused (False).  True at once without a browser
        reporting tile loads (headless)."""
        return self._wait_for(lambda: k in self._loaded, timeout, while_playing)

    # ------------------------------------------------------------ values
    def values_at(self, lon: float, lat: float) -> list[tuple[str, object]]:
        """``[(label, value), ...]`` of the pixel at (lon, lat) EPSG:4326 in every frame,
        in physical units when the frame has a scale/offset; ``None`` for nodata or
        outside a frame.  The first band (or the expression) of each frame.  One
        request to the tile server."""
        return self.series_from(_values.query(self.layers, lon, lat))

    def series_from(self, results) -> list[tuple[str, object]]:
        out = []
        for label, layer, res in zip(self.labels, self.layers, results):
            value = None
            if res is not None and res.get("inside", True):
                vals = _values.band_values(layer, res)
                value = vals[0][1] if vals else None
            out.append((label, value))
        return out

    @property
    def quantity(self) -> str:
        """What the series' values are, for the plot's y axis and the inspector: the
        ``value_label`` given (e.g. ``slider.value_label = "NDVI"``; a colorbar's
        ``label`` sets it too), else the expression or band of the frames; with
        ``units`` (``slider.units``, else the frames' ``units`` metadata) in brackets."""
        layer = self.layers[0]
        text = self.value_label
        if not text:
            style = getattr(layer, "style", None) or {}
            text = style.get("expression") or (f"band {style['indexes']}" if style.get("indexes") else "band 1")
        units = self.units or (getattr(layer, "metadata", None) or {}).get("units")
        return f"{text} [{units}]" if units else text

    def show_time_series(self, lon: float, lat: float, results=None) -> list[tuple[str, object]]:
        """Plot the pixel's series (dates on the x axis, gaps for nodata, values in
        physical units) in a closable, collapsible panel (top right, or where the
        inspector puts it) and return it.  ``results``: point answers already fetched."""
        series = self.series_from(results) if results is not None else self.values_at(lon, lat)
        self.shown_series, self.series_point = series, (lon, lat)
        self.area_series = None
        self.series_download.layout.display = "none"
        self.series_image.value = plot_series(series, ylabel=self.quantity)
        self.series_panel.set_title(f"{self.name} at lat {lat:.5f}, lon {lon:.5f}")
        if not self._closed:
            self.series_panel.show(self.map)
        return series

    def _on_series_closed(self) -> None:
        self.shown_series, self.series_point, self.area_series = None, None, None

    # ------------------------------------------------------------ areas
    def series(self, geometry, stats=("mean", "median"), progress=None):
        """The time series of statistics over a polygon: a ``pandas.DataFrame`` indexed
        by date (``DatetimeIndex`` named ``date``; a plain index named ``frame`` when a
        label is not a date), one row per frame in frame order, columns ``label``, the
        ``stats`` asked for and ``count`` (valid pixels); ``NaN`` where a frame has no
        valid pixel inside.  ``df.to_csv(path)`` writes it.

        Args:
            geometry: GeoJSON-like ``Polygon``/``MultiPolygon`` (or ``Feature``), or a
                shapely geometry, in EPSG:4326 degrees.
            stats: one name or a list of names among ``count``, ``mean``, ``median``,
                ``min``, ``max``, ``std`` and percentiles ``"p<q>"`` (e.g. ``"p10"``;
                ``"p90.0"`` is ``"p90"``, its column keeps the name given).
            progress: tqdm bar in the kernel (default: for 20 frames or more).

        Values are those of each frame's first band (or expression) in physical units,
        with the pixel rule of :meth:`RasterTileLayer.area_statistics` (pixel centres in
        the polygon, nodata left out; a same-date mosaic takes each pixel from its
        first file with data).  One request per frame, several at once: the tile
        server reads the frames concurrently.  Raises ``BadRequestError`` for a bad
        geometry or statistic name (before any frame is read), ``TileServerError``
        when the slider or its map was closed."""
        from leafmap_tiles.map.area_series import area_series

        self._check_open()
        return area_series(self, geometry, stats=stats, progress=progress)

    def show_area_series(self, df, stats=("mean", "median")) -> None:
        """Plot an area-series DataFrame (from :meth:`series`) in the series panel, with
        a CSV download button."""
        from leafmap_tiles.map.area_series import csv_link, plot_area_series

        names = [s for s in (stats if not isinstance(stats, str) else (stats,)) if s in df.columns]
        self.area_series, self.shown_series, self.series_point = df, None, None
        self.series_image.value = plot_area_series(df, names, ylabel=self.quantity)
        n = int(df["count"].max()) if len(df) else 0
        self.series_download.value = csv_link(df, filename=f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', self.name)}_area.csv")
        self.series_download.layout.display = None
        self.series_panel.set_title(f"{self.name} over the area ({n} px)")
        if not self._closed:
            self.series_panel.show(self.map)

    def clear_area_series(self) -> None:
        """Empty the series panel of an area series (its plot and CSV button) and hide it."""
        self.area_series = None
        self.series_image.value = b""
        self.series_download.value = ""
        self.series_download.layout.display = "none"
        self.series_panel.set_title(f"{self.name}: time series")
        self.series_panel.hide()

    def add_draw_control(self, stats=("mean", "median"), position: str = "topleft"):
        """Put an ipyleaflet ``DrawControl`` (polygon and rectangle tools) on the map:
        each polygon drawn plots its area series (:meth:`series` with ``stats``) in the
        series panel, with a CSV download button; editing it recomputes the series,
        deleting it clears the panel; clicks made with a draw, edit or delete tool do
        not reach the inspector.  Returns the
        :class:`~leafmap_tiles.map.area_series.AreaDraw` (``.control`` is the
        DrawControl, ``.last_series`` the DataFrame); removed with the slider.
        Raises ``TileServerError`` (nothing added) when the slider or its map was closed."""
        from leafmap_tiles.map.area_series import AreaDraw

        self._check_open()
        if position not in _POSITIONS:
            from leafmap_tiles.errors import StyleError

            raise StyleError(f"position must be one of {', '.join(_POSITIONS)}, got {position!r}")
        if self.draw is not None:
            self.draw.close()
        self.draw = AreaDraw(self, stats=stats, position=position)
        self.map.add(self.draw.control)
        if self.draw.watcher_control is not None:
            self.map.add(self.draw.watcher_control)
        return self.draw

    # ------------------------------------------------------------ lifecycle
    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        """:class:`~leafmap_tiles.errors.TileServerError` (as a closed ``Map`` raises) when
        this slider or its map was closed: nothing is added or requested then."""
        from leafmap_tiles.errors import TileServerError

        if getattr(self.map, "_closed", False):
            raise TileServerError("this Map was closed; create a new Map()")
        if self._closed:
            raise TileServerError(f"this time slider ({self.name}) was closed; add a new one with m.add_time_slider()")

    def _on_map_change(self, change) -> None:
        if self._closed:
            return
        if change["name"] == "layers" and self.group not in change["new"]:
            self.close()
        elif change["name"] == "controls" and self.control not in change["new"]:
            self.close()

    def close(self) -> None:
        """Stop playing (the timer thread ends), remove the slider's layers and
        controls, and release the sources of the frames it no longer shows."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._unpark(list(self._parked))  # frames go back to the user with their own URL
        self._ticker.stop()
        for srv in {id(getattr(l, "server", None)): getattr(l, "server", None) for l in self.layers}.values():
            if srv is not None and hasattr(srv, "set_background"):
                srv.set_background(self._owner, [])  # its frames are no longer preloads
        m = self.map
        try:
            m.unobserve(self._on_map_change, names=["layers", "controls"])
        except ValueError:
            pass
        if getattr(m, "inspector", None) is not None:
            m.inspector.forget(self.layers)  # no values box left for frames that are gone
        if self.draw is not None:
            self.draw.close()
        for control in [self.control, self.series_control, *self._extra_controls]:
            if control in m.controls:
                m.remove(control)
        if self.group in m.layers:
            m.remove(self.group)
        self.group.layers = ()
        for layer, saved, created in zip(self.layers, self._saved, self._created):
            if saved is not None and not created:
                layer.opacity, layer.visible = saved[0], saved[1]
                if saved[2] is not None:
                    layer.release_on_remove = saved[2]
            if getattr(layer, "release_on_remove", False) or created:
                if layer not in m.layers and hasattr(layer, "release"):
                    layer.release()
        for layer, on_load, on_loading in self._load_handlers:
            layer.on_load(on_load, remove=True)
            layer.unobserve(on_loading, names="loading")
        self._load_handlers = []
        with self._drawn_cond:
            self._drawn_cond.notify_all()
        for w in (self.slider, self.label, self.play_button, self.pause_button, self.close_button, self.widget):
            w.close()
        unregister = getattr(m, "_forget_time_slider", None)
        if unregister is not None:
            unregister(self)


def plot_series(series, title: str | None = None, ylabel: str | None = None) -> bytes:
    """PNG (330 x 190 px) of ``[(label, value), ...]``: dates on the x axis when every
    label is a date, else the labels; ``None`` values are gaps; ``ylabel`` names the
    values (with units)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [s[0] for s in series]
    ys = np.array([np.nan if v is None else float(v) for _, v in series], dtype="float64")
    dates = [parse_date(l) for l in labels]
    fig = Figure(figsize=(3.3, 1.9), dpi=100)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor((1, 1, 1, 0.9))
    ax = fig.add_subplot(111)
    if all(d is not None for d in dates):
        xs = np.array(dates, dtype="datetime64[D]")
        ax.plot(xs, ys, "-o", ms=3)
        import matplotlib.dates as mdates

        loc = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax.set_xlabel("date", fontsize=7)
    else:
        xs = np.arange(len(labels))
        ax.plot(xs, ys, "-o", ms=3)
        ax.set_xticks(xs, labels, rotation=45, ha="right")
        ax.set_xlabel("frame", fontsize=7)
    if ylabel:
        ax.set_ylabel(ylabel if len(ylabel) <= 28 else ylabel[:27] + "…", fontsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
    return buf.getvalue()


_POSITIONS = ("topleft", "topright", "bottomleft", "bottomright")


def _check_slider_args(time_interval, position, slider_length) -> None:
    from leafmap_tiles.errors import StyleError

    try:
        interval = float(time_interval)
    except (TypeError, ValueError):
        raise StyleError(f"time_interval must be a number of seconds, got {time_interval!r}") from None
    if not interval > 0 or interval != interval or interval == float("inf"):
        raise StyleError(f"time_interval must be a positive number of seconds, got {time_interval!r}")
    if position not in _POSITIONS:
        raise StyleError(f"position must be one of {', '.join(_POSITIONS)}, got {position!r}")
    if not isinstance(slider_length, str):
        raise StyleError(f"slider_length must be a CSS length such as '150px', got {slider_length!r}")


def add_time_slider(m, layers, labels=None, time_interval=1.0, position="bottomright", slider_length="150px",
                    zoom_to_layer=False, name="Time slider", preload=None, **style) -> TimeSlider:
    """Body of :meth:`Map.add_time_slider` (see there).  Arguments are checked before
    anything is registered or changed on the map; if building the slider fails, the
    frames it created are released and the layers it was given are put back."""
    _check_slider_args(time_interval, position, slider_length)
    labels, frames, created = build_frames(m, layers, labels, style)
    before = list(m.layers)
    controls_before = list(m.controls)
    view_before = (list(m.center), m.zoom)
    if zoom_to_layer:  # before the frames reach the browser: its first requests are for this view
        bounds = [f.info["bounds"] for f in frames if getattr(f, "info", None)]
        if bounds:
            m.zoom_to_bounds(union_bounds(bounds))
    saved = [(l, getattr(l, "release_on_remove", None)) for l in frames]
    try:
        ts = TimeSlider(m, labels, frames, created, time_interval=time_interval, position=position,
                        slider_length=slider_length, name=m._unique_name(name), preload=preload)
    except Exception:
        for layer, flag in saved:
            if flag is not None:
                layer.release_on_remove = flag
        m.layers = tuple(before)
        m.controls = tuple(controls_before)
        with m.hold_sync():
            m.center, m.zoom = view_before
        for layer, made in zip(frames, created):
            if made:  # the real error is re-raised below, whatever happens here
                try:
                    layer.release()
                except Exception:
                    pass
        raise
    return ts


def union_bounds(bounds) -> tuple[float, float, float, float]:
    """(west, south, east, north) EPSG:4326 covering every (w, s, e, n) of ``bounds``
    (west > east when a member crosses the antimeridian, and then the union too)."""
    s = min(b[1] for b in bounds)
    n = max(b[3] for b in bounds)
    # longitudes as intervals on [w, e] with e possibly > 180 (antimeridian)
    spans = [(b[0], b[2] + 360.0 if b[2] < b[0] else b[2]) for b in bounds]
    w = min(a for a, _ in spans)
    e = max(b for _, b in spans)
    if e - w >= 360.0:
        return (-180.0, s, 180.0, n)
    if e > 180.0:
        return (w, s, e - 360.0, n)
    return (w, s, e, n)
