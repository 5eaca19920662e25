// The labeling page: one item at a time, a key per class, every label stored at once.
// The server is the truth: the page keeps the label id it last saw per item and sends it
// with each label (compare-and-set), so a change by another labeler is never overwritten
// unknowingly; polling /api/state tells this page about such changes.
"use strict";

const POLL_MS = 4000;
const JOB_POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

let S = null;          // the last /api/state
let pos = 0;           // position of the shown item in S.items
let busy = false;      // one write at a time: keys pressed meanwhile are ignored
const known = new Map(); // index -> label id this page last saw (null: unlabeled)
const mine = [];         // ids of the labels this page gave, newest last: what undo takes back
let jobTimer = null;

function me() {
  return $("annotator").value.trim() || null;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = { error: `HTTP ${resp.status}` }; }
  return { ok: resp.ok, status: resp.status, data };
}

function notice(text, kind) {
  const el = $("notice");
  el.textContent = text;
  el.className = kind || "info";
  el.hidden = !text;
}

function labelId(item) {
  return item.label ? item.label.id : null;
}

function pending(item) {
  return !item.label && !item.flag;
}

function firstPending(from) {
  const items = S.items;
  for (let k = 0; k < items.length; k++) {
    const i = (from + k) % items.length;
    if (pending(items[i])) return i;
  }
  return -1;
}

// ------------------------------------------------------------------ state
async function loadState(first) {
  const r = await api("GET", "api/state");
  if (!r.ok) { notice(r.data.error, "error"); return; }
  const prevRound = S ? S.round : undefined;
  S = r.data;
  if (first && S.annotator && !$("annotator").value) $("annotator").value = S.annotator;
  if (first || prevRound !== S.round) {
    known.clear();
    mine.length = 0;  // a new round: the last round's labels trained its model and are not undone
    S.items.forEach((it) => known.set(it.index, labelId(it)));
    const p = firstPending(0);
    pos = p < 0 ? Math.max(0, S.items.length - 1) : p;
  } else {
    const changed = [];
    S.items.forEach((it) => {
      if (known.has(it.index) && known.get(it.index) !== labelId(it)) changed.push(it);
      known.set(it.index, labelId(it));
    });
    if (changed.length) {
      const what = changed.slice(0, 3).map((it) => it.label
        ? `#${it.rank + 1} now '${it.label.class_name}' by ${it.label.annotator || it.label.source}`
        : `#${it.rank + 1} unlabeled again`).join("; ");
      notice(`Another labeler changed ${changed.length} item(s): ${what}`, "warn");
    }
  }
  if (!$("budget").value) $("budget").value = S.n_selected || 20;
  render();
  if (S.job.state === "running") watchJob();
}

// ------------------------------------------------------------------ render
function render() {
  $("project").textContent = S.project;
  $("round-name").textContent = S.round === null ? "no round yet" : `round ${S.round}`;
  const n = S.items.length;
  const done = S.items.filter((it) => it.label).length;
  $("progress-fill").style.width = n ? `${(100 * done) / n}%` : "0%";
  $("progress-text").textContent = `${done} / ${n} labeled` +
    (S.items.some((it) => it.flag) ? ` (${S.items.filter((it) => !it.label && it.flag).length} skipped or not sure)` : "");
  renderCounts(S.counts);
  renderQueue();
  renderItem();
  const allDone = n > 0 && firstPending(0) < 0;
  $("done-msg").hidden = !allDone;
  $("btn-round").classList.toggle("primary", allDone || n === 0);
}

function renderCounts(counts) {
  const box = $("counts");
  box.replaceChildren();
  S.classes.forEach((name, k) => {
    const c = counts[name] || 0;
    const row = document.createElement("div");
    row.className = "count-row";
    const label = document.createElement("span");
    label.textContent = `${k < 10 ? (k + 1) % 10 : "·"} ${name}`;
    const bar = document.createElement("div");
    bar.className = "bar small";
    const fill = document.createElement("div");
    fill.style.width = `${Math.min(100, (100 * c) / Math.max(1, S.target))}%`;
    bar.append(fill);
    const num = document.createElement("span");
    num.className = "num";
    num.textContent = `${c} / ${S.target}`;
    row.append(label, bar, num);
    box.append(row);
  });
  $("target-text").textContent = `target: ${S.target} per class, an equal share once this selection is labeled`;
}

function renderQueue() {
  const q = $("queue");
  q.replaceChildren();
  S.items.forEach((it, i) => {
    const cell = document.createElement("button");
    cell.type = "button";
    cell.className = "cell" + (it.label ? " labeled" : it.flag ? ` ${it.flag}` : "") + (i === pos ? " current" : "");
    cell.title = `#${it.rank + 1} (index ${it.index})` + (it.label ? `: ${it.label.class_name}` : it.flag ? `: ${it.flag}` : "");
    cell.addEventListener("click", () => { pos = i; render(); });
    q.append(cell);
  });
}

async function renderItem() {
  const img = $("item-image"), text = $("item-text"), table = $("item-table"), empty = $("empty-msg");
  const it = S.items[pos];
  [img, text, table, empty].forEach((el) => { el.hidden = true; });
  document.querySelectorAll(".class-btn").forEach((b) => b.remove());
  if (!it) {
    empty.hidden = false;
    empty.textContent = S.round === null ? "No round has run yet: run the first round to get a selection." : "The selection is empty.";
    $("item-meta").textContent = "";
    $("item-label").textContent = "";
    return;
  }
  $("item-meta").textContent = `#${it.rank + 1} of ${S.items.length} · index ${it.index} · model: ` +
    `${it.predicted_class} (${(100 * it.confidence).toFixed(1)}%) · score ${it.score.toFixed(3)}`;
  $("item-label").textContent = it.label
    ? `labeled '${it.label.class_name}' by ${it.label.annotator || it.label.source}`
    : it.flag ? (it.flag === "skip" ? "skipped" : "marked not sure") : "unlabeled";
  $("item-label").className = it.label ? "labeled" : "";
  const box = $("class-buttons");
  S.classes.forEach((name, k) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "class-btn" + (it.label && it.label.class === k ? " chosen" : "") +
      (name === it.predicted_class ? " predicted" : "");
    b.dataset.cls = name;
    if (S.keys[name] !== undefined) {
      const kbd = document.createElement("kbd");
      kbd.textContent = S.keys[name];
      b.append(kbd, " ");
    }
    b.append(name);
    b.addEventListener("click", () => label(name));
    box.append(b);
  });
  if (S.kind === "image") {
    img.src = `image/${it.index}`;
    img.hidden = false;
    const next = S.items[pos + 1];
    if (next) new Image().src = `image/${next.index}`;
  } else {
    const r = await api("GET", `api/item/${it.index}`);
    if (!r.ok) { notice(r.data.error, "error"); return; }
    if (S.items[pos] !== it) return;
    if (r.data.kind === "text" || r.data.kind === "listed") {  // listed: the item's file or id
      text.textContent = r.data.text + (r.data.cut ? " …" : "");
      text.hidden = false;
    } else {
      const body = table.querySelector("tbody");
      body.replaceChildren(...r.data.rows.map(([k, v]) => {
        const tr = document.createElement("tr");
        const a = document.createElement("th"); a.textContent = k;
        const b = document.createElement("td"); b.textContent = String(v);
        tr.append(a, b);
        return tr;
      }));
      table.hidden = false;
    }
  }
}

// ------------------------------------------------------------------ actions
function advance() {
  const p = firstPending(pos + 1);
  if (p >= 0) pos = p;
  render();
}

async function label(cls) {
  const it = S && S.items[pos];
  if (!it || busy) return;
  busy = true;
  try {
    const r = await api("POST", "api/label", { index: it.index, class: cls, expect_id: labelId(it), annotator: me() });
    if (r.ok) {
      it.label = r.data.row;
      known.set(it.index, r.data.row.id);
      mine.push(r.data.row.id);
      S.counts = r.data.counts;
      notice("");
      advance();
    } else if (r.status === 409) {
      it.label = r.data.current;
      known.set(it.index, labelId(it));
      notice(`${r.data.error}. Press a class again to change it.`, "warn");
      render();
    } else {
      notice(r.data.error, "error");
    }
  } finally {
    busy = false;
  }
}

async function flag(kind) {
  const it = S && S.items[pos];
  if (!it || busy) return;
  busy = true;
  try {
    const r = await api("POST", "api/flag", { index: it.index, flag: kind });
    if (!r.ok) { notice(r.data.error, "error"); return; }
    it.flag = kind;
    advance();
  } finally {
    busy = false;
  }
}

async function undo() {
  if (!S || busy) return;
  busy = true;
  try {
    if (!mine.length) { notice("Nothing of yours to undo.", "info"); return; }
    const r = await api("POST", "api/undo", { id: mine[mine.length - 1], annotator: me() });
    if (!r.ok) {
      if (r.status !== 400) mine.pop();  // changed since, another round's, or gone: not undoable any more
      notice(r.data.error, r.status === 409 ? "warn" : "error");
      if (r.status === 409) loadState(false);
      return;
    }
    mine.pop();
    S.counts = r.data.counts;
    const i = S.items.findIndex((it) => it.index === r.data.removed.item);
    if (i >= 0) {
      S.items[i].label = r.data.current;
      known.set(S.items[i].index, labelId(S.items[i]));
      pos = i;
    }
    notice(`Undid '${r.data.removed.class_name}' on index ${r.data.removed.item}.`, "info");
    render();
  } finally {
    busy = false;
  }
}

function move(step) {
  if (!S || !S.items.length) return;
  pos = Math.min(S.items.length - 1, Math.max(0, pos + step));
  render();
}

// ------------------------------------------------------------------ the next round
async function runRound() {
  const budget = parseInt($("budget").value, 10);
  const r = await api("POST", "api/round", { budget: Number.isFinite(budget) ? budget : null });
  if (!r.ok) { notice(r.data.error, "error"); return; }
  $("job-result").hidden = true;
  showJob(r.data);
  watchJob();
}

function fmt(x) {
  return x === null || x === undefined ? "n/a" : x.toFixed(3);
}

function showJob(job) {
  $("job").hidden = job.state === "idle";
  $("job-state").textContent = `${job.state}${job.elapsed_s !== null ? ` (${job.elapsed_s} s)` : ""}`;
  $("job-log").textContent = job.log.slice(-6).join("\n");
  $("job-fill").classList.toggle("indeterminate", job.state === "running");
  $("job-fill").classList.toggle("finished", job.state === "done");
  $("btn-round").disabled = job.state === "running";
  const res = $("job-result");
  if (job.state === "done" && job.result) {
    const x = job.result;
    const acc = x.after ? (x.before ? `accuracy ${fmt(x.before.accuracy)} → ${fmt(x.after.accuracy)}, ` +
      `macro-F1 ${fmt(x.before.macro_f1)} → ${fmt(x.after.macro_f1)}` : `accuracy ${fmt(x.after.accuracy)}`)
      : "no held-out split: accuracy not measured";
    res.textContent = `Round ${x.round}: ${acc} (${x.n_labeled_before ?? "?"} → ${x.n_labeled} labels); ` +
      `${x.selected} new items selected.`;
    res.hidden = false;
  } else if (job.state === "failed") {
    res.textContent = `The round failed: ${job.error}`;
    res.hidden = false;
  }
}

function watchJob() {
  if (jobTimer) return;
  jobTimer = setInterval(async () => {
    const r = await api("GET", "api/round");
    if (!r.ok) return;
    showJob(r.data);
    if (r.data.state !== "running") {
      clearInterval(jobTimer);
      jobTimer = null;
      await loadState(false);
    }
  }, JOB_POLL_MS);
}

// ------------------------------------------------------------------ status view
async function showStatus() {
  const r = await api("GET", "api/status");
  if (!r.ok) { notice(r.data.error, "error"); return; }
  const st = r.data;
  $("rounds-table").querySelector("tbody").replaceChildren(...st.rounds.map((x) => {
    const tr = document.createElement("tr");
    const ci = x.accuracy_ci ? `[${x.accuracy_ci[0].toFixed(2)}, ${x.accuracy_ci[1].toFixed(2)}]` : "-";
    const on = x.n_eval ? `${x.n_eval} ${x.evaluation}` : "-";
    [x.round, x.n_labeled, fmt(x.accuracy), ci, on, fmt(x.macro_f1), x.strategy].forEach((v) => {
      const td = document.createElement("td"); td.textContent = String(v); tr.append(td);
    });
    return tr;
  }));
  $("status-counts").querySelector("tbody").replaceChildren(...Object.entries(st.labels_per_class).map(([k, v]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("th"); a.textContent = k;
    const b = document.createElement("td"); b.textContent = String(v);
    tr.append(a, b);
    return tr;
  }));
  $("stopping").hidden = !st.stopping;
  $("stopping").textContent = st.stopping ? st.stopping.message : "";
  $("curve").hidden = !st.learning_curve;
  $("no-curve").hidden = !!st.learning_curve;
  if (st.learning_curve) $("curve").src = `${st.learning_curve}?t=${Date.now()}`;
}

function tab(which) {
  $("view-label").hidden = which !== "label";
  $("view-status").hidden = which !== "status";
  $("tab-label").classList.toggle("active", which === "label");
  $("tab-status").classList.toggle("active", which === "status");
  if (which === "status") showStatus();
}

// ------------------------------------------------------------------ wiring
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey || !S) return;
  if ($("view-label").hidden) return;
  if (/^[0-9]$/.test(e.key)) {
    // The server's key per class (a class named "7" is key 7), as shown on each button.
    const name = S.classes.find((c) => S.keys[c] === e.key);
    if (name !== undefined) { e.preventDefault(); label(name); }
  } else if (e.key === "s" || e.key === "S") { flag("skip"); }
  else if (e.key === "u" || e.key === "U") { flag("unsure"); }
  else if (e.key === "z" || e.key === "Z" || e.key === "Backspace") { e.preventDefault(); undo(); }
  else if (e.key === "ArrowLeft") { move(-1); }
  else if (e.key === "ArrowRight") { move(1); }
});

window.addEventListener("DOMContentLoaded", () => {
  $("annotator").addEventListener("change", () => localStorage.setItem("al-annotator", me() || ""));
  $("annotator").value = localStorage.getItem("al-annotator") || "";
  $("btn-skip").addEventListener("click", () => flag("skip"));
  $("btn-unsure").addEventListener("click", () => flag("unsure"));
  $("btn-undo").addEventListener("click", undo);
  $("btn-prev").addEventListener("click", () => move(-1));
  $("btn-next").addEventListener("click", () => move(1));
  $("btn-round").addEventListener("click", runRound);
  $("tab-label").addEventListener("click", () => tab("label"));
  $("tab-status").addEventListener("click", () => tab("status"));
  loadState(true);
  setInterval(() => { if (!busy && !jobTimer) loadState(false); }, POLL_MS);
});
