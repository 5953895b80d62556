"""Which tool of a leaflet-draw toolbar is on, in the kernel.

ipyleaflet's ``DrawControl`` tells the kernel what was created, edited or deleted, but
not that a tool is on: while the user places a polygon's vertices, or clicks shapes
away in delete mode, the browser reports those clicks as plain map clicks.
:class:`DrawModeWatcher` is a tiny anywidget shown (invisible) in a ``WidgetControl`` of
the map: in the browser it watches the draw toolbar of its own map (leaflet-draw marks
the active tool's button ``leaflet-draw-toolbar-button-enabled``) and syncs ``mode``:
``"draw"``, ``"edit"``, ``"delete"`` or ``""``.  The change is sent when the tool's
button is pressed, so it reaches the kernel before the clicks made with that tool.
"""

from __future__ import annotations

import anywidget
import traitlets

_ESM = r"""
function render({ model, el }) {
  el.style.display = "none";
  let observer = null, tries = 0, stopped = false;
  const modeOf = (container) => {
    const on = container.querySelector(".leaflet-draw-toolbar-button-enabled");
    if (!on) return "";
    if (on.classList.contains("leaflet-draw-edit-remove")) return "delete";
    if (on.classList.contains("leaflet-draw-edit-edit")) return "edit";
    return "draw";
  };
  const attach = () => {
    if (stopped) return;
    const container = el.closest(".leaflet-container");
    if (!container) { if (tries++ < 600) setTimeout(attach, 100); return; }
    const report = () => {
      const mode = modeOf(container);
      if (model.get("mode") !== mode) { model.set("mode", mode); model.save_changes(); }
    };
    observer = new MutationObserver(report);
    observer.observe(container, { subtree: true, attributes: true, attributeFilter: ["class"], childList: true });
    report();
  };
  attach();
  return () => { stopped = true; if (observer) observer.disconnect(); };
}
export default { render };
"""


class DrawModeWatcher(anywidget.AnyWidget):
    """``mode``: the draw tool on in the browser (``"draw"``, ``"edit"``, ``"delete"``,
    or ``""`` for none); set by the browser, read by the kernel."""

    _esm = _ESM
    mode = traitlets.Unicode("").tag(sync=True)
