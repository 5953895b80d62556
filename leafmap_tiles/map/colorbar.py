"""Colorbars and categorical legends drawn with matplotlib, shown as an image control.

A colorbar made from a layer takes the colormap and the stretch the tile server
actually uses, so the legend and the tiles agree.  With a scale/offset (the layer's
``scale``/``offset`` from STAC, or the file's tags) the ticks are in physical units:
a uint8 layer stretched over DN 0..250 with scale 0.004, offset -0.08 is labelled
-0.08 .. 0.92.
"""

from __future__ import annotations

import io
import json

import ipywidgets
import numpy as np
from ipyleaflet import WidgetControl

from leafmap_tiles.errors import StyleError

N_TICKS = 6


def _tick_text(v: float) -> str:
    v = round(float(v), 10)
    if v == 0:
        v = 0.0  # no "-0"
    return f"{v:.6g}"


def resolve_colormap(colormap):
    """(``Colormap`` or None, categories ``{value: colour}`` or None) from what a user
    or a layer style gives: a matplotlib name, a ``Colormap``, a list of colours, a
    ``{value: colour}`` dict, or their JSON form as found in a tile URL."""
    import matplotlib
    from matplotlib.colors import Colormap, ListedColormap

    if colormap is None:
        return matplotlib.colormaps["gray"], None
    if isinstance(colormap, Colormap):
        return colormap, None
    if isinstance(colormap, str):
        s = colormap.strip()
        if s.startswith(("{", "[")):
            return resolve_colormap(json.loads(s))
        try:
            return matplotlib.colormaps[s], None
        except KeyError:
            raise StyleError(f"unknown colormap {colormap!r}") from None
    if isinstance(colormap, dict):
        return None, {_num(k): _colour(c) for k, c in colormap.items()}
    if isinstance(colormap, (list, tuple)):
        colours = [_colour(c) for c in colormap]
        if len(colours) == 256:  # the tiles use 256 colours as they are
            return ListedColormap(colours), None
        from matplotlib.colors import LinearSegmentedColormap

        # as the tiles: other lists are interpolated linearly into 256 colours
        return LinearSegmentedColormap.from_list("custom", colours, N=256), None
    raise StyleError(f"unsupported colormap {colormap!r}")


def _num(k):
    try:
        f = float(k)
    except (TypeError, ValueError):
        return k
    return int(f) if f.is_integer() else f


def _colour(c):
    from matplotlib.colors import to_rgba

    if isinstance(c, (list, tuple)) and any(float(v) > 1 for v in c):
        c = [float(v) / 255.0 for v in c]
    return to_rgba(c)


class Colorbar:
    """A rendered colorbar (or categorical legend).

    After construction: ``png`` (the image bytes), ``ticks`` (physical values at the
    drawn ticks, read back from the rendered axis), ``tick_labels`` (their drawn text),
    ``entries`` (``[(name, rgba), ...]`` for a legend), ``widget`` (ipywidgets.Image)
    and ``control`` (the WidgetControl once on a map).
    """

    def __init__(self, colormap=None, vmin=None, vmax=None, label=None, orientation="horizontal",
                 scale=None, offset=None, class_names=None, n_ticks: int = N_TICKS, width=None, height=None):
        if orientation not in ("horizontal", "vertical"):
            raise StyleError(f"orientation must be 'horizontal' or 'vertical', got {orientation!r}")
        self.cmap, self.categories = resolve_colormap(colormap)
        self.label = label
        self.orientation = orientation
        self.scale = 1.0 if scale is None else float(scale)
        self.offset = 0.0 if offset is None else float(offset)
        if self.scale == 0 or not np.isfinite(self.scale) or not np.isfinite(self.offset):
            raise StyleError(f"scale must be finite and non-zero and offset finite, got scale={scale}, offset={offset}")
        self.class_names = dict(class_names or {})
        self.ticks: list[float] = []
        self.tick_labels: list[str] = []
        self.entries: list[tuple[str, tuple]] = []
        if self.categories is None:
            if vmin is None or vmax is None:
                raise StyleError("a colorbar needs vmin and vmax (or a layer to take them from)")
            self.vmin, self.vmax = float(vmin), float(vmax)
            if not (np.isfinite(self.vmin) and np.isfinite(self.vmax)):
                raise StyleError(f"vmin and vmax must be finite, got {vmin}, {vmax}")
            if not self.vmin < self.vmax:
                raise StyleError(f"vmin must be < vmax, got {vmin} >= {vmax}")
        else:
            self.vmin = self.vmax = None
        self.n_ticks = int(n_ticks)
        self.png = self._render(width, height)
        w, h = self.size_px
        self.widget = ipywidgets.Image(value=self.png, format="png", width=w, height=h)
        self.control: WidgetControl | None = None

    # physical range
    @property
    def range(self) -> tuple[float, float]:
        return self.vmin * self.scale + self.offset, self.vmax * self.scale + self.offset

    def _render(self, width, height) -> bytes:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        dpi = 100
        if self.categories is not None:
            return self._render_legend(Figure, FigureCanvasAgg, dpi)
        horizontal = self.orientation == "horizontal"
        w = (width or (320 if horizontal else 90)) / dpi
        h = (height or ((70 if self.label else 50) if horizontal else 260)) / dpi
        fig = Figure(figsize=(w, h), dpi=dpi)
        FigureCanvasAgg(fig)
        fig.patch.set_facecolor((1, 1, 1, 0.85))
        if horizontal:
            ax = fig.add_axes([0.08, 0.55 if self.label else 0.5, 0.84, 0.3 if self.label else 0.4])
        else:
            ax = fig.add_axes([0.1, 0.06, 0.25, 0.88])
        lo, hi = self.range
        from matplotlib.colorbar import Colorbar as MplColorbar
        from matplotlib.colors import Normalize

        # physical units increase with DN only for a positive scale
        cmap = self.cmap if lo <= hi else self.cmap.reversed()
        lo, hi = min(lo, hi), max(lo, hi)
        cb = MplColorbar(ax, cmap=cmap, norm=Normalize(lo, hi), orientation=self.orientation)
        n = max(self.n_ticks, 2)
        while True:  # fewer ticks while their labels would overlap (measured, not guessed)
            ticks = np.linspace(lo, hi, n)
            cb.set_ticks(ticks, labels=[_tick_text(t) for t in ticks])
            if not horizontal or n == 2:
                break
            fig.canvas.draw()
            boxes = [t.get_window_extent() for t in ax.xaxis.get_ticklabels()]
            if all(a.x1 + 6 <= b.x0 for a, b in zip(boxes, boxes[1:])):
                break
            n -= 1
        if self.label:
            cb.set_label(self.label)
        fig.canvas.draw()
        axis = ax.xaxis if horizontal else ax.yaxis
        self.ticks = [float(t) for t in axis.get_ticklocs()]
        self.tick_labels = [t.get_text() for t in axis.get_ticklabels()]
        return self._png(fig)

    def _render_legend(self, Figure, FigureCanvasAgg, dpi) -> bytes:
        from matplotlib.patches import Patch

        entries = []
        for value, rgba in self.categories.items():
            name = str(self.class_names.get(value, self.class_names.get(str(value), str(value))))
            entries.append((name if len(name) <= 40 else name[:39] + "\u2026", rgba))
        self.entries = entries
        longest = max((len(n) for n, _ in entries), default=4)
        cols = 1 + (len(entries) - 1) // 20
        w = cols * max(1.2, 0.45 + 0.09 * longest)
        h = 0.3 + 0.22 * min(len(entries), 20) + (0.25 if self.label else 0)
        fig = Figure(figsize=(w, h), dpi=dpi)
        FigureCanvasAgg(fig)
        fig.patch.set_facecolor((1, 1, 1, 0.85))
        handles = [Patch(facecolor=c, edgecolor="0.3", label=n) for n, c in entries]
        leg = fig.legend(handles=handles, loc="center", frameon=False, title=self.label,
                         ncols=1 + (len(entries) - 1) // 20)
        fig.canvas.draw()
        self.tick_labels = [t.get_text() for t in leg.get_texts()]
        return self._png(fig)

    def _png(self, fig) -> bytes:
        """PNG of ``fig`` cropped/grown to everything drawn (no clipped labels);
        ``size_px`` is its size in pixels."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", facecolor=fig.get_facecolor(), bbox_inches="tight", pad_inches=0.06)
        png = buf.getvalue()
        import struct

        self.size_px = struct.unpack(">II", png[16:24])  # IHDR width, height
        return png


def style_of_layer(layer) -> dict:
    """Colormap, vmin, vmax, scale, offset of a raster layer (what its tiles use)."""
    style = getattr(layer, "style", None) or {}
    info = getattr(layer, "info", None) or {}
    colormap = getattr(layer, "colormap", None) or style.get("colormap")
    if colormap is None and getattr(layer, "palette", False):
        raise StyleError("this layer uses the file's own colour table; pass colormap= ({value: colour}) to draw its legend")
    indexes = str(style.get("indexes", "")).split(",") if style.get("indexes") else None
    single = bool(style.get("expression")) or (indexes is not None and len(indexes) == 1) or \
        (indexes is None and info.get("visible_count", info.get("count", 1)) == 1)
    if not single and colormap is None:
        raise StyleError("a colorbar needs a single-band layer (or an expression); this layer shows several bands as RGB")
    stretch = getattr(layer, "stretch", None) or {}
    vmin = (stretch.get("vmin") or [None])[0]
    vmax = (stretch.get("vmax") or [None])[0]
    if vmin is None and style.get("vmin") is not None:
        vmin = float(str(style["vmin"]).split(",")[0])
    if vmax is None and style.get("vmax") is not None:
        vmax = float(str(style["vmax"]).split(",")[0])
    scale, offset = getattr(layer, "scale", None), getattr(layer, "offset", None)
    if scale is None and offset is None and not style.get("expression"):
        band = int(indexes[0]) - 1 if indexes else 0
        scales, offsets = info.get("scales") or [], info.get("offsets") or []
        if band < len(scales) and scales[band] not in (None, 1.0):
            scale = scales[band]
        if band < len(offsets) and offsets[band] not in (None, 0.0):
            offset = offsets[band]
    return {"colormap": colormap, "vmin": vmin, "vmax": vmax, "scale": scale, "offset": offset}


def add_colorbar(m, layer=None, colormap=None, vmin=None, vmax=None, label=None, position="bottomright",
                 orientation="horizontal", scale=None, offset=None, class_names=None, **kwargs) -> Colorbar:
    """Body of :meth:`Map.add_colorbar` (see there)."""
    explicit_colormap, explicit, explicit_scale = colormap, (vmin, vmax), scale is not None or offset is not None
    owner = None
    if layer is not None and hasattr(layer, "frames_for_colorbar"):
        owner = layer
        layer = layer.frames_for_colorbar()
    if layer is not None and class_names is None and getattr(layer, "class_names", None):
        from leafmap_tiles.map.legend import class_names_of

        class_names = class_names_of(layer)
    if layer is not None and colormap is None and getattr(layer, "palette", False) \
            and getattr(layer, "colormap", None) is None:
        from leafmap_tiles.map.legend import palette_entries

        colormap = palette_entries(layer)  # the file's colour table: a legend of the classes present
    if layer is not None and isinstance(colormap, dict):
        derived = {"colormap": colormap, "vmin": None, "vmax": None, "scale": None, "offset": None}
    elif layer is not None:
        derived = style_of_layer(layer)
    if layer is not None:
        colormap = derived["colormap"] if colormap is None else colormap
        vmin = derived["vmin"] if vmin is None else vmin
        vmax = derived["vmax"] if vmax is None else vmax
        if scale is None and offset is None:
            scale, offset = derived["scale"], derived["offset"]
        if label is None and owner is None:
            label = getattr(layer, "name", None)
    cb = Colorbar(colormap=colormap, vmin=vmin, vmax=vmax, label=label, orientation=orientation,
                  scale=scale, offset=offset, class_names=class_names, **kwargs)
    cb.control = WidgetControl(widget=cb.widget, position=position, transparent_bg=True)
    m.add(cb.control)
    if owner is not None:
        owner.attach_control(cb.control)
        if label and not getattr(owner, "value_label", None):
            owner.value_label = label  # the series plot's y axis says the same
    elif layer is not None and hasattr(layer, "colorbars"):
        # redrawn by layer.restyle(); arguments given here stay, the rest follows the layer
        cb.bound = dict(colormap=explicit_colormap, vmin=explicit[0], vmax=explicit[1], label=label,
                        orientation=orientation, scale=scale if explicit_scale else None,
                        offset=offset if explicit_scale else None, class_names=class_names, **kwargs)
        layer.colorbars.append(cb)
    return cb
