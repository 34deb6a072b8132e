// The standing program link, /program#t=<token>: today's sessions (joining the open one through
// the usual join page) and "Talk to someone now", an on-demand check-in with the care team.
// The token is read from the fragment, removed from the address bar and sent as a bearer.

import { $, el, fillSelect, paragraphs, showStage } from "./dom.js";
import { readToken } from "./link.js";

/** A waiting request is asked about with a long poll (the server answers at once on news, else
 * after LONG_POLL s); the day is refreshed every DAY_POLL ms otherwise. */
const LONG_POLL = 20;
const WAITING_POLL = 50;
const DAY_POLL = 30_000;
/** The join page joins at once when it finds its token here (a check-in that was picked up). */
const AUTOJOIN_KEY = "homeroom.autojoin";

const KIND_WORDS = { individual: "Individual session", couples: "Couples session", group: "Group session" };
const PURPOSE_WORDS = {
  therapy_group: "Group therapy", skills_workshop: "Skills workshop",
  family_education: "Family education", peer_support: "Peer support",
};
/** A session's line by where it stands now (its `timing`), the one to join being "Open now". */
function stateText(s) {
  if (s.joinable) { return "Open now"; }
  if (s.timing === "upcoming") { return "Later today"; }
  if (s.timing === "open") { return "In progress"; }
  return s.status === "ended" ? "Finished" : "Over";  // its time is past; nobody ended it
}

const PROBLEMS = {
  token_revoked: ["This program link was withdrawn.", "Ask your care team for a new one."],
  token_expired: ["This program link has expired.", "Ask your care team for a new one."],
  token_invalid: ["This link is not valid. It may have been copied only in part.",
    "Open the link from your message again, or ask your care team for a new one."],
  not_authenticated: ["This page needs the link from your invitation message."],
  unreachable: ["We could not reach Homeroom. Check your connection, then try again."],
};
const RETRY = new Set(["unreachable", "store_unavailable", "busy", "internal_error"]);

let token = null;
let day = null;
let checkin = null;
let timer = null;

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: "Bearer " + token };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; }
  let resp;
  try {
    resp = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (_) {
    return { ok: false, error: "unreachable", detail: "" };
  }
  const data = await resp.json().catch(() => ({}));
  return resp.ok ? { ok: true, data } : { ok: false, error: data.error || "http_" + resp.status, detail: data.detail || "" };
}

function problem(error) {
  paragraphs($("problem-text"), PROBLEMS[error] || ["Something went wrong (" + error + "). Please try again later."]);
  $("problem-retry").hidden = !RETRY.has(error);
  showStage("problem");
}

async function load() {
  const answer = await api("/api/program");
  if (!answer.ok) { problem(answer.error); return; }
  day = answer.data;
  showDay();
  showStage("today");
  showCheckin(day.checkin);
  schedule();
}

/** A time of day in the program's time zone, named when this device keeps another zone (as
 * the waiting room names its own), so the two pages never seem to disagree. */
function timeText(iso) {
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return new Date(iso).toLocaleTimeString([], {
    hour: "numeric", minute: "2-digit", timeZone: day.timezone,
    timeZoneName: here === day.timezone ? undefined : "short",
  });
}

function showDay() {
  $("sessions").replaceChildren(...day.today.map((s) => el("li", { dataset: { status: s.status, timing: s.timing, session: s.session } },
    el("span", { class: "time", text: timeText(s.starts_at) }),
    el("span", { class: "what", text: (s.purpose ? PURPOSE_WORDS[s.purpose] : KIND_WORDS[s.kind]) + (s.clinician ? " with " + s.clinician : "") }),
    el("span", { class: "state", text: stateText(s) }))));
  $("no-sessions").hidden = day.today.length > 0;
  const open = day.today.find((s) => s.joinable);
  $("join-now").hidden = !open;
  if (open) {
    $("join-now-text").textContent = "Your " + (open.purpose ? PURPOSE_WORDS[open.purpose] : KIND_WORDS[open.kind]).toLowerCase() +
      " at " + timeText(open.starts_at) + (open.clinician ? " with " + open.clinician : "") + " is open.";
    $("join-now-button").dataset.session = open.session;
  }
  fillSelect($("reason"), [{ value: "", label: "Choose if you like" },
    ...Object.entries(day.reasons).map(([value, label]) => ({ value, label }))], $("reason").value);
  $("together-field").hidden = !day.can_ask_together;
  $("crisis").textContent = day.crisis_line;
  showDuty();
}

function showDuty() {
  const off = !day.on_duty && !checkin;
  $("talk-off").hidden = !off;
  $("talk-ask").hidden = off || Boolean(checkin);
  if (off) {
    paragraphs($("talk-off-text"), ["Nobody is on duty for check-ins right now (hours: " + day.hours + ").", day.crisis_line]);
  }
}

function minutesText(seconds) {
  const minutes = Math.floor(seconds / 60);
  return minutes < 1 ? "less than a minute" : minutes === 1 ? "1 minute" : minutes + " minutes";
}

function showCheckin(request) {
  checkin = request && request.status === "waiting" ? request : null;
  $("talk-waiting").hidden = !checkin;
  if (checkin) {
    checkin.seenAt = Date.now();
    $("talk-place").textContent = checkin.place === 1 ? "You are next. Someone from your care team will be with you soon."
      : "You are number " + checkin.place + " in line.";
    $("talk-wait").textContent = "Waiting for " + minutesText(checkin.waited_seconds) + ". Keep this page open.";
  }
  showDuty();
  if (request && request.status === "taken" && request.url) { enter(request.url); }
}

/** Into a session's join page; ``now``: join without a second tap (a picked-up check-in). */
function enter(url, now = true) {
  const joinToken = new URLSearchParams(url.split("#")[1] || "").get("t");
  if (now && joinToken) { sessionStorage.setItem(AUTOJOIN_KEY, joinToken); }
  location.assign(url);
}

/** The wait, counted on between answers of the long poll. */
function tickWait() {
  if (!checkin) { return; }
  const waited = checkin.waited_seconds + (Date.now() - checkin.seenAt) / 1000;
  $("talk-wait").textContent = "Waiting for " + minutesText(waited) + ". Keep this page open.";
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(poll, checkin ? WAITING_POLL : DAY_POLL);
}

async function poll() {
  if (checkin) {
    const answer = await api("/api/program/checkins/" + checkin.id + "?wait=" + LONG_POLL + "&place=" + checkin.place);
    if (!answer.ok) { timer = setTimeout(poll, 2000); return; }  // not a busy loop while it fails
    if (answer.data.status === "cancelled") { say("Your request was cancelled."); }
    showCheckin(answer.data);
  } else {
    const answer = await api("/api/program");
    if (answer.ok) { day = answer.data; showDay(); showCheckin(day.checkin); }
  }
  schedule();
}

function say(text) { $("talk-message").textContent = text; }

const ASK_WORDS = {
  not_on_duty: "Nobody is on duty for check-ins right now.",
  no_care_team: "Your care team has nobody who can take a check-in. Please call the program.",
  not_authorized: "That is not possible with your program link.",
};

async function ask() {
  $("talk-now").disabled = true;
  const body = { together: $("together").checked };
  if ($("reason").value) { body.reason = $("reason").value; }
  const answer = await api("/api/program/checkins", { method: "POST", body });
  $("talk-now").disabled = false;
  if (!answer.ok) {
    if (PROBLEMS[answer.error] && !RETRY.has(answer.error)) { problem(answer.error); return; }
    say(ASK_WORDS[answer.error] || "Your request could not be sent. Please try again.");
    if (answer.error === "not_on_duty") { day.on_duty = false; showDuty(); }
    return;
  }
  say("");
  showCheckin(answer.data);
  schedule();
}

async function cancel() {
  if (!checkin) { return; }
  const answer = await api("/api/program/checkins/" + checkin.id + "/cancel", { method: "POST" });
  if (answer.ok) { say("Your request was cancelled."); showCheckin(answer.data); }
  else if (answer.error === "checkin_taken") { poll(); }
  else { say("That did not work. Please try again."); }
}

async function joinNow() {
  const session = $("join-now-button").dataset.session;
  const answer = await api("/api/program/sessions/" + session + "/link", { method: "POST" });
  if (!answer.ok) { say("This session cannot be joined now. Please reload the page."); return; }
  enter(answer.data.url, false);
}

function start() {
  setInterval(tickWait, 5000);
  $("problem-retry").addEventListener("click", () => { showStage("check"); load(); });
  $("talk-now").addEventListener("click", ask);
  $("talk-cancel").addEventListener("click", cancel);
  $("join-now-button").addEventListener("click", joinNow);
  token = readToken("program");
  if (!token) { problem("not_authenticated"); return; }
  load();
}

start();
