// The shopper's page of a sale with a waiting room (ingest-api/API.md, "Waiting room").
// The page never holds a signing key: it calls its shop's backend (`loadtest shop`), which
// signs each call and forwards it to ingest-api, answering with ingest-api's status and
// JSON body (a problem's Retry-After as `retryAfter`; 502 when ingest-api is unreachable). Join, then poll as `refreshAfterMs` says: the pre-queue's countdown, the place in
// line with a progress bar and the estimate, the turn (claim the admission, then buy with
// it), or sold out.
"use strict";

const $ = (id) => document.getElementById(id);
const device = (() => {
  const saved = localStorage.getItem("device");
  if (saved) return saved;
  const made = "web-" + crypto.randomUUID();
  localStorage.setItem("device", made);
  return made;
})();
let product = "";
let user = "";
let ticket = "";
let admission = "";
let firstAhead = 0;
let countdown = 0;
// One order, one key: a retry after an unknown outcome learns what happened to it.
const orderKey = crypto.randomUUID();
// Answers that say "try again": the shop or ingest-api unreachable or busy.
const TRANSIENT = [0, 429, 502, 503];
const later = (a, fallback) => 1000 * (Number(a.json.retryAfter) || fallback);

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    const r = await fetch(path, init);
    return { status: r.status, json: await r.json().catch(() => ({})) };
  } catch (e) {
    return { status: 0, json: { title: "The shop cannot be reached", detail: String(e) } };
  }
}

function step(id) {
  for (const s of ["join-step", "wait-step", "turn-step", "result"]) $(s).hidden = s !== id;
}

function finish(kind, title, detail) {
  clearInterval(countdown);
  $("result").className = kind;
  $("result-title").textContent = title;
  $("result-detail").textContent = detail || "";
  step("result");
}

function refused(answer) {
  const p = answer.json;
  if (p.code === "SOLD_OUT") return finish("gone", "Sold out", "Every unit is taken.");
  finish("gone", p.title || `Error ${answer.status}`, p.detail || "");
}

function seconds(s) {
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  return `${Math.round(s / 60)} min`;
}

function show(wait) {
  $("message").hidden = !wait.message;
  $("message").textContent = wait.message || "";
  if (wait.state !== "prequeue") {
    clearInterval(countdown);
    $("countdown").hidden = true;
  }
  switch (wait.state) {
    case "prequeue": {
      step("wait-step");
      $("state").textContent = "You are in the line. The sale opens soon.";
      $("countdown").hidden = false;
      clearInterval(countdown);
      const tick = () => {
        const left = Math.max(0, wait.opensAt - Date.now()) / 1000;
        $("countdown").textContent = `Opens in ${Math.ceil(left)} s — everyone who joins before then has the same chance.`;
      };
      tick();
      countdown = setInterval(tick, 1000);
      break;
    }
    case "queued": {
      step("wait-step");
      $("state").textContent = "You are in the line.";
      firstAhead = Math.max(firstAhead, wait.ahead);
      $("progress").value = firstAhead ? 1 - wait.ahead / firstAhead : 0;
      $("position").textContent = String(wait.position);
      $("ahead").textContent = String(wait.ahead);
      $("eta").textContent =
        wait.etaSeconds === null ? "estimating…" : `about ${seconds(wait.etaSeconds)}`;
      break;
    }
    case "admitted":
      $("progress").value = 1;
      return claim();
    case "sold_out":
      return finish("gone", "Sold out", "Every unit is taken, and none is on its way back.");
    case "closed":
      return finish("gone", "The waiting room is closed", "");
    default:
      return finish("gone", `Unexpected state ${wait.state}`, "");
  }
  setTimeout(poll, wait.refreshAfterMs);
}

async function poll() {
  const a = await call("POST", `/shop/${product}/status`, { ticket, device });
  if (a.status === 200) return show(a.json.wait);
  if (TRANSIENT.includes(a.status)) return setTimeout(poll, later(a, 2));
  refused(a);
}

async function claim() {
  const a = await call("POST", `/shop/${product}/claim`, { userId: user, device, ticket });
  if (a.status === 200) {
    admission = a.json.admissionToken;
    $("turn-deadline").textContent = `Buy before ${new Date(a.json.expiresAt).toLocaleTimeString()}.`;
    return step("turn-step");
  }
  if (a.json.code === "NOT_YET_ADMITTED") return setTimeout(poll, later(a, 1));
  if (TRANSIENT.includes(a.status)) return setTimeout(claim, later(a, 1));
  refused(a);
}

$("join-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  user = $("user").value.trim();
  $("join").disabled = true;
  const a = await call("POST", `/shop/${product}/join`, { userId: user, device });
  $("join").disabled = false;
  if (a.status === 200) {
    $("join-error").hidden = true;
    ticket = a.json.ticket;
    return show(a.json.wait);
  }
  // Not in line yet: say why and stay on the form (the room not open yet, a typo, a limit).
  $("join-error").hidden = false;
  $("join-error").textContent = `${a.json.title || `Error ${a.status}`}. ${a.json.detail || ""}`;
});

async function order() {
  const body = { userId: user, device, admission, key: orderKey };
  const a = await call("POST", `/shop/${product}/order`, body);
  if (a.status === 202) {
    return finish("ok", "Order placed", `Order ${a.json.orderId} is reserved for you.`);
  }
  if (TRANSIENT.includes(a.status) || a.json.code === "IDEMPOTENCY_IN_FLIGHT") {
    return setTimeout(order, later(a, 1));
  }
  refused(a);
}

$("order").addEventListener("click", () => {
  $("order").disabled = true;
  order();
});

(async () => {
  const a = await call("GET", "/shop/sale");
  product = a.json.productId || "";
  $("product").textContent = a.json.title || product;
  $("join").disabled = !product;
})();
