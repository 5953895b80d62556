"""The time slider driven like a user: slider values, Play/Pause/close buttons."""

from __future__ import annotations

import threading

import pytest

from tests.map.helpers import NDVI, naip_files

STYLE = dict(expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)


def _slider_threads():
    return [t for t in threading.enumerate() if t.name == "leafmap_tiles-time-slider"]


def _wait_for_index(ts, wanted, timeout=120):
    """Block until the slider shows frame ``wanted`` (driven by its own timer)."""
    reached = threading.Event()

    def seen(change):
        if change["new"] == wanted:
            reached.set()

    ts.slider.observe(seen, names="value")
    try:
        if ts.slider.value != wanted:
            assert reached.wait(timeout), f"frame {wanted} never shown"
    finally:
        ts.slider.unobserve(seen, names="value")


@pytest.fixture
def frames(m):
    files = naip_files()[:4]
    return {f"date{i}": m.create_raster_layer(f, **STYLE) for i, f in enumerate(files)}


def test_back_to_frame_zero_and_callers_dict_unchanged(m, frames):
    before = dict(frames)
    urls = {k: v.url for k, v in frames.items()}
    ts = m.add_time_slider(frames)
    assert ts.labels == ["date0", "date1", "date2", "date3"]
    first = ts.visible_layers
    assert len(first) == 1 and first[0] is frames["date0"]
    assert first[0].url == urls["date0"] and first[0].opacity == 1.0

    ts.slider.value = 2
    assert [l.url for l in ts.visible_layers] == [urls["date2"]]
    assert ts.label.value == "date2"
    ts.slider.value = 0
    shown = ts.visible_layers
    assert len(shown) == 1 and shown[0] is frames["date0"]
    assert shown[0].url == urls["date0"] and shown[0].opacity == 1.0
    assert ts.label.value == "date0"
    # every other frame on the map is transparent
    assert all(l.opacity == 0.0 for l in ts.group.layers if l is not frames["date0"])

    # the caller's dict: same keys, same layer objects, same URLs
    assert frames == before and list(frames) == list(before)
    assert {k: v.url for k, v in frames.items()} == urls
    # sources stay registered while they are frames
    assert all(l.source_id in m.server.source_ids for l in frames.values())


def test_frames_stay_in_the_group_in_one_order(m, frames):
    """The whole (short) series is in the group, in frame order, whatever frame is
    shown: the browser keeps a layer only while its position is unchanged, so a step
    must not reorder them (it used to put (prev, next, current) in, rebuilding all)."""
    ts = m.add_time_slider(frames)
    order = [l.model_id for l in ts.group.layers]
    assert order == [f.model_id for f in frames.values()]
    for k in (1, 3, 0, 2):
        ts.slider.value = k
        assert [l.model_id for l in ts.group.layers] == order
        assert {l.name: l.opacity for l in ts.group.layers} == {
            f.name: (1.0 if i == k else 0.0) for i, f in enumerate(frames.values())}


def _browser_loaded(layer):
    """What the browser sends when a tile layer's tiles have loaded."""
    layer.set_trait("loading", False)
    layer._handle_leaflet_event(None, {"event": "load"}, [])


def _browser_loading(layer):
    layer.set_trait("loading", True)


def test_old_frame_stays_until_the_new_one_is_drawn(m, frames):
    ts = m.add_time_slider(frames)
    f = list(frames.values())
    assert not ts.browser_reports_loads  # headless: frames switch at once
    _browser_loaded(f[0])
    assert ts.browser_reports_loads and ts.drawn_index == 0
    # frame 1 has not loaded yet: frame 0 stays drawn under/over it
    ts.slider.value = 1
    assert ts.index == 1 and ts.drawn_index == 0
    assert f[1].opacity == 1.0 and f[0].opacity == 1.0
    assert f[2].opacity == 0.0 and f[3].opacity == 0.0
    assert not ts.wait_drawn(timeout=0.05)
    _browser_loaded(f[1])
    assert ts.drawn_index == 1 and f[0].opacity == 0.0 and f[1].opacity == 1.0
    assert ts.wait_drawn(timeout=0)
    # frames loaded ahead (at opacity 0) switch at once
    _browser_loaded(f[3])
    ts.slider.value = 3
    assert ts.drawn_index == 3 and [l.opacity for l in f] == [0.0, 0.0, 0.0, 1.0]
    # a new view (pan/zoom): tiles of every frame load again; 3 stays until 2 is in
    for layer in f:
        _browser_loading(layer)
    ts.slider.value = 2
    assert [l.opacity for l in f] == [0.0, 0.0, 1.0, 1.0]
    # quick steps while loading: only the last frame drawn and the one asked for are shown
    ts.slider.value = 0
    assert [l.opacity for l in f] == [1.0, 0.0, 0.0, 1.0] and ts.drawn_index == 3
    _browser_loaded(f[2])  # too late: frame 2 is not shown any more
    assert [l.opacity for l in f] == [1.0, 0.0, 0.0, 1.0]
    _browser_loaded(f[0])
    assert [l.opacity for l in f] == [1.0, 0.0, 0.0, 0.0] and ts.drawn_index == 0


def test_play_moves_on_once_the_next_frame_is_loaded(m, frames):
    """Play shows the next frame only once the browser has its tiles (they load behind
    the shown frame's), so the swap is instant and the frame on screen stays whole."""
    import time

    ts = m.add_time_slider(frames, time_interval=0.01)
    f = list(frames.values())
    _browser_loaded(f[0])
    for layer in f[1:]:
        _browser_loading(layer)
    ts.play()
    time.sleep(0.3)  # 30 intervals: frame 1's tiles are not in, frame 0 stays on screen
    assert ts.slider.value == 0 and ts.drawn_index == 0
    _browser_loaded(f[1])
    _wait_for_index(ts, 1)
    assert ts.drawn_index == 1  # drawn at once: its tiles were in
    time.sleep(0.3)
    assert ts.slider.value == 1  # frame 2 is still loading
    _browser_loaded(f[2])
    _wait_for_index(ts, 2)
    ts.pause()
    time.sleep(0.05)
    assert ts.slider.value == 2
    ts.close()
    assert _slider_threads() == []


def test_play_still_waits_for_a_frame_that_reloads_after_it_was_loaded(m, frames):
    """A view change between the next frame's load and its showing: the old frame stays
    drawn until the new one's tiles are in again, and Play waits for that."""
    import time

    ts = m.add_time_slider(frames, time_interval=0.01)
    f = list(frames.values())
    for layer in f:
        _browser_loaded(layer)
    for layer in f[2:]:
        _browser_loading(layer)
    ts.play()
    _wait_for_index(ts, 1)
    _browser_loading(f[1])  # a zoom: frame 1 (shown) loads again, frame 2 not in yet
    time.sleep(0.3)
    assert ts.slider.value == 1
    _browser_loaded(f[2])  # frame 2 in, frame 1 still loading: Play shows 2 (it is whole)
    _wait_for_index(ts, 2)
    assert ts.drawn_index == 2
    ts.pause()
    ts.close()
    assert _slider_threads() == []


def test_long_series_keeps_a_window_appended_never_reordered(m):
    from leafmap_tiles.map.time_slider import TimeSlider

    files = naip_files()
    ts = m.add_time_slider(files, preload=4, **STYLE)  # 10 frames > 4: a window
    w = TimeSlider.WINDOW
    n = len(files)

    def in_group():
        return [ts.layers.index(l) for l in ts.group.layers]

    first = in_group()
    assert sorted(first) == sorted({0, *range(1, w + 1), *(n - d for d in range(1, w + 1))})
    seen = list(first)
    for k in (1, 2, 5, 6):
        ts.slider.value = k
        now = in_group()
        assert now[:len(seen)] == seen  # the frames already in the browser keep their place
        assert {k, (k + 1) % n, (k - 1) % n} <= set(now)
        assert [ts.layers[j].opacity for j in now] == [1.0 if j == k else 0.0 for j in now]
        seen = now
    assert len(seen) <= TimeSlider.MAX_IN_GROUP


def test_group_opacity_and_visibility_apply_to_the_frame_shown(m, frames):
    ts = m.add_time_slider(frames)
    ts.group.opacity = 0.5
    assert ts.current_layer.opacity == 0.5
    ts.slider.value = 2
    assert frames["date2"].opacity == 0.5 and frames["date0"].opacity == 0.0
    ts.group.visible = False
    assert frames["date2"].visible is False
    ts.slider.value = 1
    assert frames["date1"].visible is False and ts.visible_layers == []


def test_sources_styled_and_labelled_from_file_names(m):
    files = naip_files()
    ts = m.add_time_slider(files, zoom_to_layer=True, **STYLE)
    assert ts.labels == ["2009-08-18", "2010-06-29", "2012-07-31", "2014-07-20", "2015-09-26",
                         "2016-08-16", "2017-08-27", "2018-07-16", "2019-09-04", "2020-08-31"]
    assert all(l.style["expression"] == NDVI and l.style["colormap"] == "RdYlGn" for l in ts.layers)
    assert len({l.url for l in ts.layers}) == 10
    assert m.zoom >= 14  # fitted to a 1.3 km window


def test_play_three_times_starts_one_timer_and_close_stops_it(m, frames):
    assert _slider_threads() == []
    ts = m.add_time_slider(frames, time_interval=0.05)
    assert ts.timer_thread is None  # no thread before Play
    for _ in range(3):
        ts.play_button.click()
    assert ts.playing
    assert len(_slider_threads()) == 1
    _wait_for_index(ts, 2)
    _wait_for_index(ts, 0)  # it loops past the last frame
    assert len(_slider_threads()) == 1
    # pause, play again: still the same thread
    ts.pause_button.click()
    assert not ts.playing
    thread = ts.timer_thread
    ts.play_button.click()
    assert ts.timer_thread is thread and len(_slider_threads()) == 1

    m.close()
    assert not thread.is_alive() and _slider_threads() == []
    assert ts.closed and not ts.playing
    index = ts.slider.value
    thread.join()  # already ended
    ts.play()  # no effect once closed
    assert ts.timer_thread is thread and not thread.is_alive() and ts.slider.value == index


def test_close_button_removes_layers_controls_and_timer(m):
    ts = m.add_time_slider(naip_files()[:3], time_interval=0.05, **STYLE)
    ids = [l.source_id for l in ts.layers]
    cb = m.add_colorbar(ts, label="NDVI")
    ts.play_button.click()
    _wait_for_index(ts, 1)
    ts.close_button.click()
    assert _slider_threads() == []
    assert ts.group not in m.layers and ts.control not in m.controls and cb.control not in m.controls
    assert not any(i in m.server.source_ids for i in ids)  # frames made from sources are released
    assert m.time_sliders == []


def test_removing_the_control_closes_the_slider_and_restores_given_layers(m, frames):
    on_map = m.add_raster(naip_files()[5], **STYLE)
    given = dict(frames, extra=on_map)
    ts = m.add_time_slider(given)
    assert on_map not in m.layers  # taken into the slider's group
    assert on_map.source_id in m.server.source_ids
    ts.slider.value = 1
    m.remove(ts.control)
    assert ts.closed and ts.group not in m.layers
    # layers given by the caller get their opacity back; like any layer leaving the map they are released
    assert [l.opacity for l in given.values()] == [1.0] * 5
    assert all(l.release_on_remove for l in given.values())
    assert not any(l.source_id in m.server.source_ids for l in given.values())


def test_map_close_releases_frames_and_leaves_no_thread():
    from leafmap_tiles import Map

    m = Map(basemap=None)
    ts = m.add_time_slider(naip_files()[:3], time_interval=0.05, **STYLE)
    server = m.server
    ts.play()
    _wait_for_index(ts, 1)
    m.close()
    assert ts.closed and _slider_threads() == []
    assert server.source_ids == [] and server.closed


def test_bad_input(m):
    with pytest.raises(ValueError):
        m.add_time_slider([])
    with pytest.raises(ValueError):
        m.add_time_slider(naip_files()[:2], labels=["one"], **STYLE)
    with pytest.raises(FileNotFoundError):
        m.add_time_slider([naip_files()[0], "/nonexistent/x_20200101.tif"], **STYLE)
    assert m.time_sliders == [] and m.server.source_ids == []  # the first source was released again


def test_default_stretch_is_common_to_all_frames(m):
    files = naip_files()[:4]
    singles = [m.create_raster_layer(f, expression=NDVI, colormap="RdYlGn") for f in files]
    per_file = [(l.stretch["vmin"][0], l.stretch["vmax"][0]) for l in singles]
    assert len(set(per_file)) > 1  # the dates differ
    ts = m.add_time_slider(files, expression=NDVI, colormap="RdYlGn")
    lo, hi = min(v[0] for v in per_file), max(v[1] for v in per_file)
    for layer in ts.layers:
        assert layer.stretch == {"vmin": [lo], "vmax": [hi]}
        assert float(layer.style["vmin"]) == lo and float(layer.style["vmax"]) == hi
        assert f"vmin={lo!r}" in layer.url
    cb = m.add_colorbar(ts)
    assert float(cb.tick_labels[0]) == pytest.approx(lo, abs=1e-6)
    assert float(cb.tick_labels[-1]) == pytest.approx(hi, abs=1e-6)
    # explicit ranges are kept as given
    ts2 = m.add_time_slider(files[:2], expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    assert [l.stretch for l in ts2.layers] == [{"vmin": [-0.2], "vmax": [0.6]}] * 2
    for l in singles:
        l.release()


def test_hidden_frames_render_in_the_background_the_next_one_too_while_playing(m, frames, monkeypatch):
    """The tile server renders the frames a slider hides after everything else
    (``set_background``); while playing, the frame shown next is among them: a zoom or
    pan draws the frame on screen first, and Play waits for the next one's tiles."""
    calls = []
    real = m.server.set_background

    def record(owner, ids):
        calls.append(set(ids))
        return real(owner, ids)

    monkeypatch.setattr(m.server, "set_background", record)
    sid = {k: v.source_id for k, v in frames.items()}
    ts = m.add_time_slider(frames, time_interval=600)  # Play would advance only after 10 min
    assert calls[-1] == {sid["date1"], sid["date2"], sid["date3"]}
    ts.play()
    assert calls[-1] == {sid["date1"], sid["date2"], sid["date3"]}  # date1 (next) after date0
    ts.slider.value = 3  # a jump while playing
    assert calls[-1] == {sid["date0"], sid["date1"], sid["date2"]}
    ts.pause()
    assert calls[-1] == {sid["date0"], sid["date1"], sid["date2"]}
    ts.close()
    assert calls[-1] == set()


def test_layer_redraws_after_tiles_answered_late(m, monkeypatch):
    """A tile answered 503 (render past the deadline) is a hole Leaflet never fills by
    itself: on the browser's next ``load`` event the layer asks for a redraw, at most
    ``MAX_LATE_REDRAWS`` (5) times in a row while tiles keep missing the deadline."""
    layer = m.add_raster(naip_files()[0], **STYLE)
    counts = {layer.source_id: 0}
    monkeypatch.setattr(m.server, "late_tiles", lambda: dict(counts))
    monkeypatch.setattr(layer, "LATE_REDRAW_DELAYS", (0.0,))  # the back-off: next test
    redraws = []
    monkeypatch.setattr(layer, "redraw", lambda: redraws.append(1))

    def load():
        layer._handle_leaflet_event(None, {"event": "load"}, [])

    load()
    assert redraws == []  # nothing late
    for k in range(1, 8):
        counts[layer.source_id] = k  # late again, after every redraw
        load()
    assert len(redraws) == 5  # capped: the source stays too slow for the deadline
    load()  # a load with no new late tile: the view is whole, the cap resets
    counts[layer.source_id] = 8
    load()
    assert len(redraws) == 6


def test_late_redraws_back_off_and_stop_with_the_layer(m, monkeypatch):
    """The first redraw is at once, the next ones after ``LATE_REDRAW_DELAYS`` (from a
    one-shot timer thread); releasing the layer cancels a pending one."""
    import threading
    import time

    layer = m.add_raster(naip_files()[0], **STYLE)
    counts = {layer.source_id: 0}
    monkeypatch.setattr(m.server, "late_tiles", lambda: dict(counts))
    monkeypatch.setattr(layer, "LATE_REDRAW_DELAYS", (0.0, 0.3, 30.0))
    redraws = []
    monkeypatch.setattr(layer, "redraw", lambda: redraws.append(time.monotonic()))

    def load():
        layer._handle_leaflet_event(None, {"event": "load"}, [])

    counts[layer.source_id] = 1
    t0 = time.monotonic()
    load()
    assert len(redraws) == 1
    counts[layer.source_id] = 2
    load()
    assert len(redraws) == 1  # the second one waits 0.3 s
    deadline = time.monotonic() + 10
    while len(redraws) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(redraws) == 2 and redraws[1] - t0 >= 0.3
    counts[layer.source_id] = 3
    load()  # the third would come after 30 s
    assert [t.name for t in threading.enumerate()].count("leafmap_tiles-late-redraw") == 1
    layer.release()
    time.sleep(0.05)
    assert "leafmap_tiles-late-redraw" not in [t.name for t in threading.enumerate()]
    assert len(redraws) == 2


def test_playing_parks_the_frames_it_does_not_show_soon(m, frames):
    """While playing, only the frame shown, the one drawn before it and the next one
    load; the others point at a blank image, so that after a zoom the browser's few
    connections carry the shown frame's tiles (benchmarks/zoom_browser.py --play).
    Pause and close give every frame its own URL back; a split map of a parked date
    gets the frame's real URL."""
    from leafmap_tiles.map.time_slider import PARKED_URL

    f = list(frames.values())
    urls = [l.url for l in f]
    ts = m.add_time_slider(frames, time_interval=600)  # Play would advance only after 10 min
    assert [l.url for l in f] == urls  # paused: every frame preloads
    ts.play()
    assert [l.url for l in f] == [urls[0], urls[1], PARKED_URL, PARKED_URL]
    assert ts.frame_url(2) == urls[2]
    ts.slider.value = 2  # shown at once with its own URL; the next (3) unparked too
    assert f[2].url == urls[2] and f[3].url == urls[3] and f[2].opacity == 1.0
    assert f[1].url == PARKED_URL  # neither shown, nor drawn, nor next
    assert f[0].url == urls[0]  # still the drawn frame (headless: drawn at once) or next in the loop
    ts.pause()
    assert [l.url for l in f] == urls
    ts.play()
    ts.slider.value = 0
    assert PARKED_URL in [l.url for l in f]
    ts.close()
    assert [l.url for l in f] == urls
