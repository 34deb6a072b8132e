// The link token: read from the URL fragment (browsers never send a fragment to a server or in
// a Referer), then removed from the address bar so it is not bookmarked or shared by accident,
// and kept in sessionStorage (this tab only) so a reload still works.

const STORAGE_PREFIX = "homeroom.link.";

export function readToken(page) {
  const key = STORAGE_PREFIX + page;
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("t");
  if (fromHash) {
    history.replaceState(null, "", location.pathname);
    sessionStorage.setItem(key, fromHash);
    return fromHash;
  }
  return sessionStorage.getItem(key);
}

/** A token from what a person pasted: a whole link (…#t=TOKEN), or the token itself. */
export function tokenFromText(text) {
  const trimmed = (text || "").trim();
  const hash = trimmed.indexOf("#");
  const fragment = hash >= 0 ? trimmed.slice(hash + 1) : trimmed;
  const fromParams = fragment.includes("t=") ? new URLSearchParams(fragment).get("t") : null;
  const token = (fromParams || fragment).replace(/\s+/g, "");
  return /^[A-Za-z0-9_.-]{16,4096}$/.test(token) ? token : null;
}

/** POST /api/links/verify: {ok: true, info} or {ok: false, error, body}. */
export async function verifyLink(token) {
  let resp;
  try {
    resp = await fetch("/api/links/verify", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
  } catch (_) {
    return { ok: false, error: "unreachable", body: {} };
  }
  const body = await resp.json().catch(() => ({}));
  return resp.ok ? { ok: true, info: body } : { ok: false, error: body.error || "unknown", body };
}

/** A moment in the reader's own time zone, e.g. "Tuesday, March 4, 3:00 PM EST". */
export function when(iso) {
  return new Date(iso).toLocaleString(undefined, {
    weekday: "long", month: "long", day: "numeric",
    hour: "numeric", minute: "2-digit", timeZoneName: "short",
  });
}

/** A time of day in the reader's own time zone, e.g. "4:00 PM". */
export function clock(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
}

const HELP = "If you need help, contact your care team.";

/** Plain-language lines for a refusal code (from the REST API, a connect_error or an ack). */
export function problemLines(code, body = {}) {
  const lines = {
    token_expired: [
      "This link has expired" + (body.starts_at ? " (it was for the session on " + when(body.starts_at) + ")" : "") + ".",
      "Ask your care team for a new link.",
    ],
    token_not_yet_valid: [
      "This link is not active yet.",
      body.starts_at ? "Your session starts " + when(body.starts_at) + "." : "",
      body.opens_at ? "You can use this link from " + when(body.opens_at) + "." : "",
    ],
    token_invalid: [
      "This link is not valid. It may have been copied only in part.",
      "Open the link from your message again, or ask your care team for a new one.",
    ],
    wrong_session: ["This link belongs to a different session.", HELP],
    token_revoked: ["This link has been withdrawn by your clinician.", HELP],
    session_ended: ["This session has ended. Thank you for attending.", HELP],
    session_locked: [
      "Your clinician has locked this session, so nobody new can come in right now.",
      "Try again in a moment, or contact your care team.",
    ],
    session_full: ["This session is full.", HELP],
    session_not_found: ["We could not find this session. It may have been cancelled.", HELP],
    not_on_roster: ["This link is not for this session.", HELP],
    unreachable: ["We could not reach Homeroom.", "Check your internet connection, then reload this page."],
  };
  return lines[code] || ["Something went wrong while checking your link.", HELP];
}
