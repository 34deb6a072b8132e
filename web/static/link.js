// Reads the link token from the URL fragment, asks the server what it is worth, and says so
// in plain language. The fragment never reaches the server by itself (browsers do not send
// it), and it is removed from the address bar so it is not bookmarked or shared by accident.
(function () {
  "use strict";

  var STORAGE_KEY = "homeroom.link";
  var page = document.body.getAttribute("data-page");
  var box = document.getElementById("status");

  function readToken() {
    var fromHash = new URLSearchParams(location.hash.slice(1)).get("t");
    if (fromHash) {
      history.replaceState(null, "", location.pathname);
      // Kept for this tab only, so reloading the page still works after the hash is gone.
      sessionStorage.setItem(STORAGE_KEY, fromHash);
      return fromHash;
    }
    return sessionStorage.getItem(STORAGE_KEY);
  }

  function when(iso) {
    return new Date(iso).toLocaleString(undefined, {
      weekday: "long", month: "long", day: "numeric",
      hour: "numeric", minute: "2-digit", timeZoneName: "short"
    });
  }

  function show(kind, paragraphs) {
    box.className = kind;
    box.textContent = "";
    paragraphs.forEach(function (p) {
      var el = document.createElement("p");
      el.textContent = p.text;
      if (p.cls) { el.className = p.cls; }
      box.appendChild(el);
    });
  }

  var ROLE_WORDS = { patient: "a patient", guest: "a family guest", clinician: "the clinician" };
  var KIND_WORDS = { individual: "individual", couples: "couples", group: "group" };

  function welcome(info) {
    var opens = page === "host"
      ? "Your session controls will open on this page when the session starts."
      : "The video call will open on this page when the session starts. Nothing to install.";
    var lines = [
      { text: "This link is for " + ROLE_WORDS[info.role] + " at a " +
        KIND_WORDS[info.kind] + " session." },
      { text: "It starts " + when(info.starts_at) + ".", cls: "when" },
      { text: opens, cls: "note" }
    ];
    if (info.session_status === "open" || info.session_status === "live") {
      lines.splice(2, 0, { text: "The session is open now." });
    }
    show("ok", lines);
  }

  function problem(body) {
    var help = "If you need help, contact your care team.";
    var messages = {
      token_expired: ["This link has expired" +
        (body.starts_at ? " (it was for the session on " + when(body.starts_at) + ")" : "") +
        ".", "Ask your care team for a new link."],
      token_not_yet_valid: ["This link is not active yet.",
        body.starts_at ? "Your session starts " + when(body.starts_at) + "." : "",
        body.opens_at ? "You can use this link from " + when(body.opens_at) + "." : ""],
      token_invalid: ["This link is not valid. It may have been copied only in part.",
        "Open the link from your message again, or ask your care team for a new one."],
      token_revoked: ["This link has been withdrawn by your clinician.", help],
      session_ended: ["This session has ended. Thank you for attending.", help],
      session_not_found: ["We could not find this session. It may have been cancelled.", help]
    };
    var lines = messages[body.error] || ["Something went wrong while checking your link.", help];
    show("problem", lines.filter(Boolean).map(function (t) { return { text: t }; }));
  }

  var token = readToken();
  if (!token) {
    show("problem", [{ text: "This page needs the link from your invitation message." },
      { text: "Open that link again, or ask your care team to send a new one." }]);
    return;
  }
  fetch("/api/links/verify", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: token })
  }).then(function (resp) {
    return resp.json().then(function (body) {
      if (resp.ok) { welcome(body); } else { problem(body); }
    });
  }).catch(function () {
    show("problem", [{ text: "We could not reach Homeroom." },
      { text: "Check your internet connection, then reload this page." }]);
  });
})();
