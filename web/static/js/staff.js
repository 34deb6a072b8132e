// What the staff pages (/console, /admin) share: the staff token and sign-in, the REST API with
// its bearer header, downloads, dates in the reader's own time zone, and accessible tables.
//
// The token arrives in the URL fragment (never sent to a server or in a Referer), moves to
// sessionStorage (this tab only, so /console and /admin share it) and leaves the address bar.

import { $, el, paragraphs, showStage } from "./dom.js";
import { tokenFromText } from "./link.js";

const STORAGE_KEY = "homeroom.staff";
const STAFF_AUDIENCE = "homeroom:staff";
/** Refusals that mean "sign in again" rather than "this request was wrong". */
const SIGN_IN_CODES = new Set(["not_authenticated", "token_invalid", "token_expired", "token_revoked"]);

const SIGN_IN_WORDS = {
  missing: ["Paste your staff token to sign in.",
    "Your administrator gives you one (homeroom token --role clinician --subject YOUR-ID)."],
  missing_admin: ["Paste an administrator's staff token to sign in.",
    "Whoever runs Homeroom makes one (homeroom token --role admin --subject YOUR-ID)."],
  signed_out: ["You are signed out. Paste a staff token to sign in again."],
  token_invalid: ["That staff token is not valid. It may have been copied only in part.",
    "Paste the whole token, or ask your administrator for a new one."],
  session_link: ["That is a session link, not a staff token. Session links open /join or /host.",
    "Paste your staff token here."],
  token_expired: ["Your staff token has expired. Ask your administrator for a new one, then paste it here."],
  token_revoked: ["That staff token was withdrawn. Ask your administrator for a new one, then paste it here."],
  not_authenticated: ["Please sign in with your staff token."],
  admin_only: ["This page is for administrators, and your token is a clinician's.",
    "Your sessions are on the Sessions page; or paste an administrator's token here."],
};

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail || "";
    /** True when the page went back to its sign-in box: nothing more to say. */
    this.signIn = false;
  }
}

/** The signed-in staff member of one page: token, claims, API calls, and the sign-in box. */
export class Staff {
  /** needAdmin: the page is for admins only. onReady(claims): called after each sign-in. */
  constructor({ needAdmin = false, onReady }) {
    this.needAdmin = needAdmin;
    this.onReady = onReady;
    this.token = null;
    this.claims = null;
  }

  start() {
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = tokenFromText($("signin-token").value);
      $("signin-token").value = "";
      this._use(token, "token_invalid");
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(STORAGE_KEY);
      this.signIn("signed_out");
    });
    // A new token opened in this tab changes only the fragment: start over with it.
    window.addEventListener("hashchange", () => {
      if (new URLSearchParams(location.hash.slice(1)).get("t")) { location.reload(); }
    });
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("t");
    if (fromHash) { history.replaceState(null, "", location.pathname + location.search); }
    this._use(fromHash || sessionStorage.getItem(STORAGE_KEY), this.needAdmin ? "missing_admin" : "missing");
  }

  /** Show the sign-in box with the reason (a key of SIGN_IN_WORDS or a refusal code). */
  signIn(reason) {
    this.token = this.claims = null;
    $("who").textContent = "";
    $("sign-out").hidden = true;
    paragraphs($("signin-why"), SIGN_IN_WORDS[reason] || SIGN_IN_WORDS.token_invalid);
    showStage("signin");
  }

  _use(token, reasonIfNone) {
    if (!token) { this.signIn(reasonIfNone); return; }
    const claims = readClaims(token);
    const refusal = !claims ? "token_invalid"
      : claims.aud !== STAFF_AUDIENCE ? (claims.aud ? "session_link" : "token_invalid")
      : claims.exp * 1000 <= Date.now() ? "token_expired"
      : this.needAdmin && claims.role !== "admin" ? "admin_only" : null;
    if (refusal) {
      // A clinician's token stays kept for this tab's other staff page.
      if (refusal !== "admin_only") { sessionStorage.removeItem(STORAGE_KEY); }
      this.signIn(refusal);
      return;
    }
    sessionStorage.setItem(STORAGE_KEY, token);
    this.token = token;
    this.claims = { subject: claims.sub, role: claims.role };
    $("who").textContent = "Signed in as " + claims.sub + " (" + claims.role + ")";
    $("sign-out").hidden = false;
    for (const node of document.querySelectorAll("[data-admin-only]")) { node.hidden = claims.role !== "admin"; }
    showStage("app");
    this.onReady(this.claims);
  }

  /** A REST call: the parsed JSON body (or the Response itself with raw), or an ApiError.
   * A refused token sends the page back to its sign-in box. */
  async api(path, { method = "GET", body, raw = false } = {}) {
    const headers = { Authorization: "Bearer " + this.token };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    let resp;
    try {
      resp = await fetch(path, {
        method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new ApiError(0, "unreachable", "We could not reach Homeroom. Check the connection, then try again.");
    }
    if (resp.ok) { return raw ? resp : resp.json(); }
    const refusal = await resp.json().catch(() => ({}));
    const error = new ApiError(resp.status, refusal.error || "http_" + resp.status, refusal.detail || resp.statusText);
    if (SIGN_IN_CODES.has(error.code)) {
      sessionStorage.removeItem(STORAGE_KEY);
      this.signIn(error.code);
      error.signIn = true;
    } else if (error.code === "not_authorized" && this.needAdmin) {
      this.signIn("admin_only");
      error.signIn = true;
    }
    throw error;
  }

  /** Download what ``path`` answers as a file, under the name the server gives it. The bytes
   * are the server's own: fetched with the bearer header, handed over as a Blob. */
  async download(path) {
    const resp = await this.api(path, { raw: true });
    const disposition = resp.headers.get("Content-Disposition") || "";
    const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || "homeroom-download";
    const url = URL.createObjectURL(await resp.blob());
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    // Revoked later: revoking at once can cancel a download that has not started reading.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return name;
  }
}

/** The payload of a JWT, unverified: only to greet the reader and catch an expired or wrong
 * token before asking the server, which alone decides. */
function readClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
    return claims && typeof claims === "object" && typeof claims.exp === "number" ? claims : null;
  } catch (_) {
    return null;
  }
}

/** A sentence for an API error, for the page's alert boxes. */
export function problemText(error, lead = "That did not work") {
  if (error.code === "unreachable") { return error.detail; }
  return lead + ": " + (error.detail || error.code) + (error.code ? " (" + error.code + ")" : "");
}

// --- dates, in the reader's own time zone ----------------------------------------------

/** YYYY-MM-DD of a local date, as <input type="date"> and the API's from/to want it. */
export function dayText(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
}

export function addDays(date, days) {
  const copy = new Date(date);
  copy.setDate(copy.getDate() + days);
  return copy;
}

/** Monday and Sunday of the ISO week holding ``date``. */
export function isoWeek(date) {
  const monday = addDays(date, -((date.getDay() + 6) % 7));
  return [monday, addDays(monday, 6)];
}

/** Days from ``first`` to ``last`` (YYYY-MM-DD), inclusive; NaN when either is missing. */
export function daysBetween(first, last) {
  return Math.round((Date.parse(last) - Date.parse(first)) / 86_400_000) + 1;
}

export function dateTime(iso, { seconds = false } = {}) {
  if (!iso) { return "—"; }
  return new Date(iso).toLocaleString(undefined, {
    weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
    second: seconds ? "2-digit" : undefined,
  });
}

export function clock(iso) {
  if (!iso) { return "—"; }
  return new Date(iso).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });
}

/** 185 -> "3 h 05 min"; 45 -> "45 min". */
export function hours(minutes) {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h ? h + " h " + String(m).padStart(2, "0") + " min" : m + " min";
}

// --- sessions, in words -----------------------------------------------------------------

export const KIND_WORDS = { individual: "Individual", couples: "Couples", group: "Group" };
export const PURPOSE_WORDS = {
  therapy_group: "therapy group", skills_workshop: "skills workshop",
  family_education: "family education", peer_support: "peer support",
};
export const STATUS_WORDS = { scheduled: "Scheduled", open: "Open: waiting room", live: "Live", ended: "Ended" };
export const ADMISSION_WORDS = {
  not_joined: "not joined", waiting: "waiting", admitted: "in the session",
  absent: "marked absent", left: "left", removed: "removed",
};

export function kindText(s) {
  const kind = KIND_WORDS[s.kind] + (s.purpose ? " (" + PURPOSE_WORDS[s.purpose] + ")" : "");
  return s.check ? kind + ", deployment check (not billed)" : kind;
}

/** One line per roster member: id, role, and where they stand. */
export function roster(members) {
  return el("ul", { class: "plain roster" }, members.map((m) => el("li", { dataset: { attendee: m.attendee } },
    el("span", { class: "id", text: m.attendee }), " ",
    el("span", { class: "hint", text: m.role }), " ",
    el("span", { class: "badge admission-" + m.admission, text: ADMISSION_WORDS[m.admission] || m.admission }))));
}

// --- tables ----------------------------------------------------------------------------

let tableCount = 0;

/**
 * An accessible table under its own title, inside a box that scrolls sideways on a narrow
 * screen (the title stays put). A focusable, labelled region: keyboard users can scroll it
 * with the arrow keys.
 * columns: [{label, cell(row) -> text or Node, head?: true (a row header), num?: true,
 *   wrap?: true (long text that may take several lines: the table then fits a laptop)}]
 */
export function table({ caption, columns, rows, empty = "Nothing to show.", name = "", heading = "h3" }) {
  const id = "table-" + ++tableCount;
  const title = el(heading, { class: "table-title", id, text: caption });
  if (!rows.length) { return el("div", { class: "table-block", dataset: { table: name } }, title, el("p", { class: "hint empty", text: empty })); }
  const kind = (c) => [c.num ? "num" : "", c.extra ? "extra" : "", c.wrap ? "wrap" : ""].join(" ").trim() || null;
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col", class: kind(c), text: c.label })));
  const body = rows.map((row) => el("tr", {}, columns.map((c) => {
    const value = c.cell(row);
    const props = { class: kind(c), scope: c.head ? "row" : null };
    return el(c.head ? "th" : "td", props, value === null || value === undefined ? "—" : value);
  })));
  return el("div", { class: "table-block", dataset: { table: name } }, title,
    el("div", { class: "table-wrap", role: "region", tabindex: 0, "aria-labelledby": id },
      el("table", { "aria-labelledby": id }, el("thead", {}, head), el("tbody", {}, body))));
}

/** A status line for aria-live regions: ``kind`` is "", "ok", "busy" or "problem". */
export function say(node, text, kind = "") {
  node.textContent = text;
  node.dataset.kind = kind;
}
