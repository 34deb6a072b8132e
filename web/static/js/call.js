// The call's pictures: one tile per other endpoint of the call, laid out for 1, 2 or many by
// CSS (data-count on the grid), and this device's own picture (self-view). From four remote
// tiles on (a group) the active speaker is large and the others are small tiles in pages, so
// a group of 14 fits a phone: whoever feeds media (mesh.js, or forwarded.js in a group through
// the forwarder) calls stream() and setActive(), and onLayers hears which size each tile shows.

import { el } from "./dom.js";

/** Small tiles per page: two columns of three on a phone, four columns of three wider. */
function pageSize() { return window.matchMedia("(min-width: 48rem)").matches ? 12 : 6; }

/** Simulcast layers a tile asks for: the large one high, two or three side by side middle,
 * small (or off-page) tiles low. */
export const LAYER = { low: 0, middle: 1, high: 2 };

export class CallView {
  /** label(endpointView) -> the words under a tile (the page decides what it may show). */
  constructor(grid, label) {
    this.grid = grid;
    this.label = label;
    this.tiles = new Map();
    this.streams = new Map();
    this.active = null;
    this.page = 0;
    this.pager = this._pager();
    /** onLayers({endpoint: LAYER}) after every layout change (a media feed may follow it). */
    this.onLayers = () => {};
    grid.after(this.pager.nav);
    window.matchMedia("(min-width: 48rem)").addEventListener("change", () => this._layout());
  }

  /** The endpoint whose picture is large in a group (the one speaking). */
  setActive(endpoint) {
    if (endpoint === this.active || !this.tiles.has(endpoint)) { return; }
    this.active = endpoint;
    this._layout();
  }

  /** Tiles for the other admitted endpoints of this room view. */
  sync(room) {
    const others = room.admitted ? room.endpoints.filter((e) => e.endpoint !== room.you) : [];
    const wanted = new Set(others.map((e) => e.endpoint));
    for (const [endpoint, tile] of this.tiles) {
      if (!wanted.has(endpoint)) { this._remove(endpoint, tile); }
    }
    for (const view of others) {
      const tile = this.tiles.get(view.endpoint) || this._add(view.endpoint);
      tile.caption.textContent = this.label(view);
      const muted = view.attendees.length > 0 && view.attendees.every((a) => a.muted);
      tile.muted.hidden = !muted;
      tile.away.hidden = view.connected;
      tile.figure.dataset.connected = String(view.connected);
    }
    this.grid.dataset.count = String(Math.min(this.tiles.size, 3));
    this.grid.dataset.empty = String(this.tiles.size === 0);
    this._layout();
  }

  /** Groups: the active tile large, the others paged; fewer tiles share the grid equally. */
  _layout() {
    const group = this.tiles.size > 3;
    this.grid.dataset.layout = group ? "speaker" : "grid";
    if (!this.tiles.has(this.active)) { this.active = this.tiles.keys().next().value ?? null; }
    const small = [...this.tiles.keys()].filter((e) => !group || e !== this.active);
    const size = group ? pageSize() : small.length || 1;
    const pages = Math.max(1, Math.ceil(small.length / size));
    this.page = Math.min(this.page, pages - 1);
    const shown = new Set(small.slice(this.page * size, (this.page + 1) * size));
    for (const [endpoint, tile] of this.tiles) {
      const speaker = group && endpoint === this.active;
      tile.figure.classList.toggle("speaker", speaker);
      tile.figure.hidden = !speaker && !shown.has(endpoint);
    }
    const { nav, status, previous, next } = this.pager;
    nav.hidden = pages < 2;
    status.textContent = "Page " + (this.page + 1) + " of " + pages + " (" + this.tiles.size + " others)";
    previous.disabled = this.page === 0;
    next.disabled = this.page >= pages - 1;
    const layers = {};
    for (const endpoint of this.tiles.keys()) {
      if (group) { layers[endpoint] = endpoint === this.active ? LAYER.high : LAYER.low; }
      else { layers[endpoint] = this.tiles.size === 1 ? LAYER.high : LAYER.middle; }
    }
    this.onLayers(layers);
  }

  _pager() {
    const previous = el("button", { type: "button", text: "Previous" });
    const next = el("button", { type: "button", text: "Next" });
    const status = el("span", { class: "pager-status", "aria-live": "polite" });
    const nav = el("nav", { class: "pager", "aria-label": "More people", hidden: true }, previous, status, next);
    previous.addEventListener("click", () => { this.page -= 1; this._layout(); });
    next.addEventListener("click", () => { this.page += 1; this._layout(); });
    return { nav, status, previous, next };
  }

  /** A remote endpoint's media arrived (or went: null). */
  stream(endpoint, stream) {
    this.streams.set(endpoint, stream);
    const tile = this.tiles.get(endpoint);
    if (tile) { this._play(tile, stream); }
  }

  clear() {
    for (const [endpoint, tile] of this.tiles) { this._remove(endpoint, tile); }
    this.streams.clear();
    this.grid.dataset.count = "0";
    this._layout();
  }

  _add(endpoint) {
    const video = el("video", { autoplay: true, playsinline: true });
    const caption = el("span", { class: "who" });
    const muted = el("span", { class: "badge", text: "muted", hidden: true });
    const away = el("span", { class: "badge warn", text: "reconnecting", hidden: true });
    const figure = el("figure", { class: "tile", dataset: { endpoint } },
      video, el("figcaption", {}, caption, " ", muted, " ", away));
    const tile = { figure, video, caption, muted, away };
    this.tiles.set(endpoint, tile);
    this.grid.append(figure);
    const stream = this.streams.get(endpoint);
    if (stream) { this._play(tile, stream); }
    return tile;
  }

  _remove(endpoint, tile) {
    tile.video.srcObject = null;
    tile.figure.remove();
    this.tiles.delete(endpoint);
  }

  _play(tile, stream) {
    if (tile.video.srcObject === stream) { return; }
    tile.video.srcObject = stream;
    if (stream) { tile.video.play().catch(() => {}); }
  }
}

/** Show this device's camera in a <video> (muted: nobody wants to hear themselves). */
export function showSelf(video, stream) {
  video.muted = true;
  if (video.srcObject !== stream) { video.srcObject = stream; }
  video.play().catch(() => {});
}
