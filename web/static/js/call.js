// The call's pictures: one tile per other endpoint of the call, laid out for 1, 2 or many by
// CSS (data-count on the grid), and this device's own picture (self-view).

import { el } from "./dom.js";

export class CallView {
  /** label(endpointView) -> the words under a tile (the page decides what it may show). */
  constructor(grid, label) {
    this.grid = grid;
    this.label = label;
    this.tiles = new Map();
    this.streams = new Map();
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
