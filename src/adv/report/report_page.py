"""The inline CSS and JavaScript of the scan report (kept apart from the Python that fills it in).

The script reads the one JSON blob of the page (``<script type="application/json" id="report-data">``),
builds the file table with textContent only, and handles sorting, filtering and opening a file's
detail section (the server-rendered ``#file-N`` element is moved into a row under the file). It
records what it saw in ``#report-check`` (rows shown, images and audio decoded) so that a headless
browser's DOM dump can be checked; script errors are written into ``#js-errors``.
"""

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:20px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:22px 0 8px}
h3{font-size:15px;margin:0 0 6px;word-break:break-all}
.meta,.media-note{color:#555;font-size:13px;margin:4px 0}
.media-note.warn{color:#8a5a00}
.cards{display:flex;gap:10px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 14px;min-width:80px;text-align:left;
 font:inherit;font-size:13px;cursor:pointer}
.card:hover{border-color:#888} .card b{display:block;font-size:20px}
.controls{display:flex;gap:10px;flex-wrap:wrap;align-items:end;background:#fff;border:1px solid #ddd;
 border-radius:6px;padding:8px 10px;margin:8px 0;font-size:13px}
.controls label{display:flex;flex-direction:column;gap:2px;color:#555}
.controls input,.controls select,.controls button{font:inherit;font-size:13px;padding:2px 4px}
.controls input[type=number]{width:80px} .controls input[type=search]{width:200px}
#shown{color:#333;margin-left:auto;align-self:center}
.table-wrap{max-height:78vh;overflow:auto;border:1px solid #ddd;background:#fff}
table{border-collapse:collapse;font-size:12.5px}
th,td{border:1px solid #e2e2e2;padding:3px 6px;text-align:left;vertical-align:top}
#files th{background:#eef0f3;position:sticky;top:0;z-index:2;cursor:pointer;user-select:none;white-space:nowrap}
#files th .unit{display:block;font-weight:normal;color:#666;font-size:11px}
#files th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
#files th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{word-break:break-all;min-width:180px;max-width:340px}
td.notes{min-width:220px;max-width:340px;color:#8a5a00}
tr.row{cursor:pointer} tr.row:hover td{background:#f3f6fb}
tr.v-damaged td{background:#fff4ec} tr.v-error td{background:#f2f2f2;color:#555}
tr.open td{border-bottom-color:#999}
tr.detail-row>td{background:#fcfcfc;padding:0}
button.toggle{border:none;background:none;cursor:pointer;font-size:13px;padding:0 4px 0 0}
.tag{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px;margin:1px;white-space:nowrap}
.detail{background:#fff;border:1px solid #ccc;border-radius:6px;padding:10px 12px;margin:6px;
 position:sticky;left:6px;max-width:calc(100vw - 80px);box-sizing:border-box}
.detail .verdict{font-size:14px;margin-bottom:6px}
.detail .cols{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start}
.detail table{font-size:12.5px}
.detail img{max-width:100%;height:auto;display:block;margin-top:8px;border:1px solid #eee}
.detail .notes div{color:#8a5a00;font-size:13px}
.detail audio{display:block;margin-top:6px;width:420px;max-width:100%}
.detail .excerpt,.detail .link{color:#333;font-size:13px;margin-top:4px}
.detail .nofig{color:#777;font-style:italic;font-size:13px}
.legend{font-size:12px;margin:4px 0}
#js-errors{color:#fff;background:#b00020;padding:6px;white-space:pre-wrap}
#details-holder>h2{display:block}
"""

#: installed first, so that an error anywhere later is shown on the page
ERROR_TRAP = r"""(function(){
function rep(m){var e=document.getElementById("js-errors");if(e){e.hidden=false;e.textContent+=m+"\n";}}
window.addEventListener("error",function(ev){var t=ev.target;
 if(t&&t!==window&&t.tagName){rep("failed to load a "+t.tagName.toLowerCase()+" element");}
 else{rep("script error: "+(ev.message||"?")+" (line "+(ev.lineno||"?")+":"+(ev.colno||"?")+")");}},true);
window.addEventListener("unhandledrejection",function(ev){var r=ev.reason;
 rep("unhandled rejection: "+(r&&r.message?r.message:String(r)));});
})();"""

SCRIPT = r"""(function () {
"use strict";
var D = JSON.parse(document.getElementById("report-data").textContent);
var R = D.results, ROWS = D.rows, N = R.length;
var COLOURS = D.colours || {};
var DASH = "\u2013";
var RANK = {damaged: 0, error: 1, ok: 2};
var check = document.getElementById("report-check");
var holder = document.getElementById("details-holder");
var tbody = document.getElementById("files-body");
var theadRow = document.getElementById("files-head");

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
function fixed(v, d) { v = num(v); return v === null ? DASH : v.toFixed(d); }
function isErr(i) { return ROWS[i].verdict === "error"; }
function meas(i, k) {
  var m = R[i].measurements;
  return m && typeof m === "object" ? num(m[k]) : null;
}
function tag(kind) {
  var s = el("span", "tag", kind);
  s.style.background = COLOURS[kind] || "#555";
  return s;
}
function duration(v) {
  v = num(v);
  if (v === null) return DASH;
  if (v <= 120) return v.toFixed(1);
  var m = Math.floor(v / 60), s = Math.round(v - 60 * m);
  if (s === 60) { m += 1; s = 0; }
  return m + ":" + (s < 10 ? "0" : "") + s;
}
function severity(i) { return !isErr(i) && R[i].has_distortion ? num(R[i].severity) : null; }

var COLS = [
  {id: "idx", label: "#", num: true, val: function (i) { return i + 1; },
   cell: function (i, td) {
     var b = el("button", "toggle", "\u25B8");
     b.type = "button";
     b.setAttribute("aria-expanded", "false");
     b.setAttribute("aria-label", "show details");
     td.appendChild(b);
     td.appendChild(document.createTextNode(String(i + 1)));
   }},
  {id: "name", label: "file", val: function (i) { return ROWS[i].name.toLowerCase(); },
   cell: function (i, td) { td.className = "name"; td.textContent = ROWS[i].name; td.title = String(R[i].path || ""); }},
  {id: "verdict", label: "verdict", val: function (i) { return RANK[ROWS[i].verdict]; },
   cell: function (i, td) { td.textContent = ROWS[i].verdict === "damaged" ? "DAMAGED" : ROWS[i].verdict; }},
  {id: "type", label: "type",
   val: function (i) { return isErr(i) ? String(R[i].error_type || "error") : String(R[i].distortion_type || ""); },
   cell: function (i, td) {
     if (isErr(i)) td.appendChild(tag("error")).title = String(R[i].error_type || "");
     else td.appendChild(tag(String(R[i].distortion_type || "?")));
   }},
  {id: "severity", label: "severity", num: true, val: severity},
  {id: "worst", label: "worst", unit: "window", num: true,
   val: function (i) { return !isErr(i) && R[i].has_distortion ? num(R[i].worst_severity) : null; }},
  {id: "confidence", label: "conf.", num: true, digits: 2,
   val: function (i) { return isErr(i) ? null : num(R[i].confidence); }},
  {id: "detected", label: "detected",
   val: function (i) { return (Array.isArray(R[i].detected_types) ? R[i].detected_types : []).join(" "); },
   cell: function (i, td) {
     (Array.isArray(R[i].detected_types) ? R[i].detected_types : []).forEach(function (k) {
       td.appendChild(tag(String(k)));
     });
   }},
  {id: "duration", label: "duration", unit: "s / m:s", num: true, val: function (i) { return num(R[i].duration); },
   text: function (i) { return duration(R[i].duration); }},
  {id: "rate", label: "rate", unit: "kHz", num: true, val: function (i) { return num(R[i].sample_rate); },
   text: function (i) { var v = num(R[i].sample_rate); return v === null ? DASH : String(v / 1000); }}
];
(D.columns || []).forEach(function (c) {
  COLS.push({id: "m." + c.key, label: c.label, unit: c.unit, num: true,
    val: function (i) { return meas(i, c.key); },
    text: function (i) { var t = ROWS[i].t || {}; return t[c.key] === undefined || t[c.key] === null ? DASH : t[c.key]; }});
});
COLS.push({id: "notes", label: "notes",
  val: function (i) { return ROWS[i].notes || ""; },
  cell: function (i, td) {
    var t = ROWS[i].notes || "";
    td.className = "notes";
    td.textContent = t.length > 90 ? t.slice(0, 88) + "\u2026" : t;
    td.title = t;
  }});
var BY_ID = {};
COLS.forEach(function (c) { BY_ID[c.id] = c; });

var FILTERS = {};
(D.filters || []).forEach(function (f) { FILTERS[f.key] = f; });

var state = {sort: "verdict", desc: false};
var trs = [], open = {}, detailTr = {};

function buildHead() {
  COLS.forEach(function (c) {
    var th = el("th", null, c.label);
    if (c.unit) th.appendChild(el("span", "unit", c.unit));
    th.tabIndex = 0;
    th.dataset.col = c.id;
    th.title = "sort by " + c.label;
    th.addEventListener("click", function () { setSort(c.id); });
    th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); setSort(c.id); } });
    theadRow.appendChild(th);
  });
}

function buildRow(i) {
  var tr = el("tr", "row v-" + ROWS[i].verdict);
  tr.dataset.index = String(i);
  COLS.forEach(function (c) {
    var td = el("td");
    if (c.num) td.className = "num";
    if (c.cell) c.cell(i, td);
    else if (c.text) td.textContent = c.text(i);
    else if (c.num) td.textContent = fixed(c.val(i), c.digits === undefined ? 1 : c.digits);
    else td.textContent = String(c.val(i) || "");
    tr.appendChild(td);
  });
  tr.addEventListener("click", function () { setOpen(i, !open[i]); });
  return tr;
}

function setSort(id) {
  if (state.sort === id) state.desc = !state.desc;
  else { state.sort = id; state.desc = BY_ID[id] && BY_ID[id].num && id !== "idx" ? true : false; }
  render();
}

function cmpVal(x, y, desc) {
  var xn = x === null || x === undefined || x === "", yn = y === null || y === undefined || y === "";
  if (xn || yn) return xn === yn ? 0 : (xn ? 1 : -1);
  var r = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
  return desc ? -r : r;
}
function compare(a, b) {
  var c = BY_ID[state.sort] || BY_ID.verdict;
  return cmpVal(c.val(a), c.val(b), state.desc) || cmpVal(severity(a), severity(b), true) || a - b;
}

function field(id) { return document.getElementById(id); }
function numberOf(id) {
  var v = field(id).value.trim();
  if (v === "") return null;
  v = Number(v);
  return isFinite(v) ? v : null;
}
function readFilters() {
  return {q: field("f-q").value.trim().toLowerCase(), verdict: field("f-verdict").value, kind: field("f-kind").value,
          minsev: numberOf("f-minsev"), m: field("f-m").value, mmin: numberOf("f-mmin"), mmax: numberOf("f-mmax")};
}
function passes(i, f) {
  var r = R[i], row = ROWS[i];
  if (f.q && row.name.toLowerCase().indexOf(f.q) < 0) return false;
  if (f.verdict && row.verdict !== f.verdict) return false;
  if (f.kind) {
    if (isErr(i)) return false;
    if (f.kind === "clean") { if (r.has_distortion) return false; }
    else if ((Array.isArray(r.detected_types) ? r.detected_types : []).indexOf(f.kind) < 0 && r.distortion_type !== f.kind) return false;
  }
  if (f.minsev !== null) {
    var s = isErr(i) ? null : num(r.severity);
    if (s === null || s < f.minsev) return false;
  }
  if (f.m && (f.mmin !== null || f.mmax !== null)) {
    var v = meas(i, f.m);
    if (v === null) return false;
    v *= (FILTERS[f.m] && FILTERS[f.m].scale) || 1;
    if (f.mmin !== null && v < f.mmin) return false;
    if (f.mmax !== null && v > f.mmax) return false;
  }
  return true;
}

function render() {
  var f = readFilters(), order = [];
  for (var i = 0; i < N; i++) if (passes(i, f)) order.push(i);
  order.sort(compare);
  var frag = document.createDocumentFragment();
  order.forEach(function (j) {
    frag.appendChild(trs[j]);
    if (open[j] && detailTr[j]) frag.appendChild(detailTr[j]);
  });
  while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
  tbody.appendChild(frag);
  Array.prototype.forEach.call(theadRow.children, function (th) {
    if (th.dataset.col === state.sort) th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  });
  field("shown").textContent = "showing " + order.length + " of " + N + " files";
  check.dataset.rows = String(order.length);
  check.dataset.order = order.join(",");
  saveQuery(f);
}

function detailOf(i) { return document.getElementById("file-" + (i + 1)); }
function setOpen(i, on) {
  var d = detailOf(i), btn = trs[i].querySelector("button.toggle");
  if (!d) return;
  if (on) {
    if (!detailTr[i]) {
      var tr = el("tr", "detail-row"), td = el("td");
      td.colSpan = COLS.length;
      tr.appendChild(td);
      detailTr[i] = tr;
    }
    detailTr[i].firstChild.appendChild(d);
    if (trs[i].parentNode) trs[i].parentNode.insertBefore(detailTr[i], trs[i].nextSibling);
    open[i] = true;
  } else {
    holder.appendChild(d);
    if (detailTr[i] && detailTr[i].parentNode) detailTr[i].parentNode.removeChild(detailTr[i]);
    delete open[i];
  }
  trs[i].classList.toggle("open", !!on);
  if (btn) {
    btn.textContent = on ? "\u25BE" : "\u25B8";
    btn.setAttribute("aria-expanded", on ? "true" : "false");
  }
  check.dataset.open = Object.keys(open).join(",");
}

var QUERY = {q: "f-q", verdict: "f-verdict", kind: "f-kind", minsev: "f-minsev", m: "f-m", mmin: "f-mmin", mmax: "f-mmax"};
function loadQuery() {
  var p;
  try { p = new URLSearchParams(window.location.search); } catch (e) { return; }
  Object.keys(QUERY).forEach(function (k) { if (p.has(k)) field(QUERY[k]).value = p.get(k); });
  if (p.has("sort") && BY_ID[p.get("sort")]) state.sort = p.get("sort");
  if (p.has("desc")) state.desc = p.get("desc") === "1";
}
function saveQuery() {
  var p = new URLSearchParams();
  Object.keys(QUERY).forEach(function (k) { var v = field(QUERY[k]).value; if (v !== "") p.set(k, v); });
  if (state.sort !== "verdict" || state.desc) { p.set("sort", state.sort); p.set("desc", state.desc ? "1" : "0"); }
  var s = p.toString();
  try { window.history.replaceState(null, "", (s ? "?" + s : window.location.pathname) + window.location.hash); }
  catch (e) { /* some browsers refuse history changes on file: pages; the view still works */ }
}

function openFromHash() {
  var m = /^#file-(\d+)$/.exec(window.location.hash || "");
  if (!m) return;
  var i = Number(m[1]) - 1;
  if (!(i >= 0 && i < N)) return;
  if (!trs[i].parentNode) { resetFilters(); render(); }
  setOpen(i, true);
  trs[i].scrollIntoView({block: "start"});
}

function resetFilters() {
  Object.keys(QUERY).forEach(function (k) { field(QUERY[k]).value = ""; });
}

function watchMedia() {
  var imgs = Array.prototype.slice.call(document.images), iok = 0, ibad = 0;
  var auds = Array.prototype.slice.call(document.getElementsByTagName("audio")), aok = 0, abad = 0;
  function show() {
    check.dataset.imagesTotal = String(imgs.length);
    check.dataset.imagesDecoded = String(iok);
    check.dataset.imagesFailed = String(ibad);
    check.dataset.audioTotal = String(auds.length);
    check.dataset.audioOk = String(aok);
    check.dataset.audioFailed = String(abad);
  }
  imgs.forEach(function (img) {
    var seen = false;
    function settle() { if (seen) return; seen = true; if (img.naturalWidth > 0) iok++; else ibad++; show(); }
    if (img.complete) settle();
    else { img.addEventListener("load", settle); img.addEventListener("error", settle); }
  });
  auds.forEach(function (a) {
    var seen = false;
    function settle(good) { if (seen) return; seen = true; if (good && a.duration > 0) aok++; else abad++; show(); }
    if (a.readyState >= 1) settle(true);
    else {
      a.addEventListener("loadedmetadata", function () { settle(true); });
      a.addEventListener("error", function () { settle(false); });
    }
  });
  show();
}

function wire() {
  ["f-q", "f-minsev", "f-mmin", "f-mmax"].forEach(function (id) { field(id).addEventListener("input", render); });
  ["f-verdict", "f-kind", "f-m"].forEach(function (id) { field(id).addEventListener("change", render); });
  field("f-reset").addEventListener("click", function () { resetFilters(); render(); });
  field("expand-all").addEventListener("click", function () {
    Array.prototype.forEach.call(tbody.querySelectorAll("tr.row"), function (tr) { setOpen(Number(tr.dataset.index), true); });
  });
  field("collapse-all").addEventListener("click", function () {
    Object.keys(open).forEach(function (k) { setOpen(Number(k), false); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.card"), function (b) {
    b.addEventListener("click", function () {
      resetFilters();
      if (b.dataset.verdict) field("f-verdict").value = b.dataset.verdict;
      if (b.dataset.kind) field("f-kind").value = b.dataset.kind;
      render();
    });
  });
  window.addEventListener("hashchange", openFromHash);
}

buildHead();
for (var i = 0; i < N; i++) trs.push(buildRow(i));
holder.hidden = true;
loadQuery();
wire();
render();
openFromHash();
watchMedia();
check.dataset.total = String(N);
check.dataset.ready = "1";
})();"""
