/*
 * The one-file HTML report: the process tree (ppid links) with each
 * process's connections, DNS names and file touches, denials highlighted,
 * filterable by step. Self-contained: inline CSS and JS, no fetches. The data
 * sits in a <script type="application/json"> block with <, > and & written as
 * \u escapes, and the page only ever puts it into the DOM as text.
 */
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>runwarden report</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f23;background:#fff}\n"
    "h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.2em 0 .4em}\n"
    "code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}\n"
    "table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #d0d7de;"
    "padding:2px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}\n"
    ".badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;"
    "background:#eaeef2;margin-left:4px}\n"
    ".deny,.block{color:#fff;background:#cf222e}.audit{background:#fff8c5}"
    ".allow{background:#dafbe1}\n"
    "#denials tr td{background:#ffebe9}.notes li{color:#9a6700}\n"
    ".headline{font-weight:600}.headline.bad{color:#cf222e}\n"
    "li.fold>details>summary{color:#57606a;cursor:pointer;font-style:italic}\n"
    "ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:1.2em;"
    "border-left:1px dotted #afb8c1}\nul.tree{padding-left:0;border:0}\n"
    "li.proc{margin:3px 0}li.proc>.ph{padding:1px 4px;border-radius:4px}\n"
    "li.proc.denied>.ph{background:#ffebe9;outline:1px solid #cf222e}\n"
    "li.proc.context>.ph{opacity:.45}li.proc.hidden{display:none}\n"
    "ul.acts{border-left:0!important;padding-left:1.6em!important}\n"
    "ul.acts li{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}\n"
    "li.act.denied{color:#cf222e;font-weight:600}\n"
    ".pid{color:#57606a}.exe{font-weight:600}.argv{color:#24292f}.step{background:#ddf4ff}\n"
    "#controls{margin:.6em 0;padding:.4em;background:#f6f8fa;border-radius:6px}\n"
    ".lockdown{background:#cf222e;color:#fff;padding:.5em;border-radius:6px;font-weight:600}\n"
    ".sev-critical,.sev-high{color:#fff;background:#cf222e}.sev-medium{background:#fff8c5}\n"
    "</style></head><body>\n<div id=\"lockdown\"></div>\n<h1>runwarden report</h1>\n"
    "<div id=\"summary\"></div>\n"
    "<ul class=\"notes\" id=\"notes\"></ul>\n"
    "<h2>Findings</h2><div id=\"findings-box\"></div>\n"
    "<h2>Denied</h2><div id=\"denials-box\"></div>\n"
    "<div id=\"controls\"><label for=\"step-filter\">Step: </label>"
    "<select id=\"step-filter\"></select> <span id=\"shown\"></span></div>\n"
    "<h2>Process tree</h2><ul class=\"tree\" id=\"tree\"></ul>\n"
    "<h2>Destinations</h2><div id=\"dests-box\"></div>\n"
    "<h2>Sensitive files</h2><div id=\"files-box\"></div>\n"
    "<script type=\"application/json\" id=\"rw-data\">";

static const char page_tail[] =
    "</script>\n<script>\n"
    "(function () {\n"
    "'use strict';\n"
    "var D = JSON.parse(document.getElementById('rw-data').textContent);\n"
    "function el(tag, cls, text) {\n"
    "  var e = document.createElement(tag);\n"
    "  if (cls) e.className = cls;\n"
    "  if (text !== undefined && text !== null) e.textContent = String(text);\n"
    "  return e;\n"
    "}\n"
    "function denied(v) { return v === 'deny' || v === 'block'; }\n"
    "function dest(d) {\n"
    "  var n = d.host || d.daddr || '?';\n"
    "  if (!d.host && d.family === 'ipv6') n = '[' + n + ']';\n"
    "  return (d.dport !== null && d.dport !== undefined) ? n + ':' + d.dport : n;\n"
    "}\n"
    "function verdict(v) { return el('span', 'badge ' + (/^[a-z]+$/.test(v || '') ? v : ''), v "
    "|| '-'); }\n"
    "function table(head, rows) {\n"
    "  var t = el('table'), tr = el('tr');\n"
    "  head.forEach(function (h) { tr.appendChild(el('th', null, h)); });\n"
    "  t.appendChild(tr);\n"
    "  rows.forEach(function (r) {\n"
    "    var row = el('tr');\n"
    "    r.forEach(function (c) { var td = el('td'); if (c instanceof Node) td.appendChild(c); "
    "else td.textContent = c === null || c === undefined ? '-' : String(c); "
    "row.appendChild(td); });\n"
    "    t.appendChild(row);\n"
    "  });\n"
    "  return t;\n"
    "}\n"
    "var S = D.summary || {};\n"
    "var sum = document.getElementById('summary');\n"
    "var line = function (k, v) { var p = el('div'); p.appendChild(el('b', null, k + ': ')); "
    "p.appendChild(el('span', 'mono', v)); sum.appendChild(p); };\n"
    "line('Run directory', D.dir);\n"
    "if (S.command) line('Command', S.command.join(' '));\n"
    "line('Mode', S.mode || '-');\n"
    "line('Exit status', S.exit_status === undefined ? '-' : S.exit_status);\n"
    "if (D.fails_run) line('runwarden exit status', '1 (policy violations)');\n"
    "line('Complete', S.complete === false ? 'NO' : 'yes');\n"
    "var c = D.counts;\n"
    "line('Events', Object.keys(c).map(function (k) { return k + ' ' + c[k]; }).join(', '));\n"
    "if (S.events_lost && S.events_lost.total > 0) line('Events lost', S.events_lost.total);\n"
    "if (S.ci && S.ci.provider) line('CI', [S.ci.provider, S.ci.repository, S.ci.workflow, "
    "S.ci.job, S.ci.run_id].filter(function (x) { return x; }).join(' / '));\n"
    "var notes = document.getElementById('notes');\n"
    "(D.notes || []).forEach(function (n) { notes.appendChild(el('li', null, n)); });\n"
    "(S.missing_hooks || []).forEach(function (h) { notes.appendChild(el('li', null, "
    "'missing hook ' + h.hook + ': ' + h.reason)); });\n"
    "if (D.lockdown_line) document.getElementById('lockdown').appendChild(el('p', 'lockdown', "
    "D.lockdown_line));\n"
    "var fb = document.getElementById('findings-box');\n"
    "fb.appendChild(el('p', D.findings.length ? 'headline bad' : 'headline', "
    "D.findings_headline));\n"
    "if (D.findings.length) fb.appendChild(table(['Severity', 'Finding', 'What', 'Process', "
    "'Step', 'Evidence (seq)'], D.findings.map(function (f) {\n"
    "  var sev = el('span', 'badge ' + (/^[a-z]+$/.test(f.severity || '') ? 'sev-' + f.severity : "
    "''), f.severity);\n"
    "  return [sev, f.kind, f.description, (f.exe || '?') + ' [pid ' + f.pid + ']', f.step, "
    "(f.evidence || []).slice(0, 16).join(' ') + ((f.evidence || []).length > 16 || "
    "f.evidence_unlisted > 0 ? ' ...' : '')];\n"
    "})));\n"
    "var db = document.getElementById('denials-box');\n"
    "db.appendChild(el('p', D.n_denials || D.fails_run ? 'headline bad' : 'headline', "
    "D.headline));\n"
    "var lastByPid = {};\n"
    "D.procs.forEach(function (p) { lastByPid[p.pid] = p; });\n"
    "function what(d) {\n"
    "  if (d.kind === 'dns') return 'dns ' + d.query + (d.qtype ? ' ' + d.qtype : '');\n"
    "  if (d.kind === 'socket') return 'socket family=' + d.family + ' type=' + d.type + "
    "' protocol=' + d.protocol;\n"
    "  return 'connect ' + (d.proto || '?') + ' ' + dest(d) + (d.host && d.daddr ? ' (' + "
    "d.daddr + ')' : '');\n"
    "}\n"
    "if (D.violations.length) {\n"
    "  var vs = D.violations.slice().sort(function (a, b) { return (denied(b.verdict) ? 1 : 0) "
    "- (denied(a.verdict) ? 1 : 0); });\n"
    "  var t = table(['Verdict', 'What', 'Count', 'Processes', 'Step'], vs.map(function (d) {\n"
    "    var who = el('span');\n"
    "    (d.processes || []).forEach(function (pp, i) {\n"
    "      if (i) who.appendChild(document.createTextNode(', '));\n"
    "      var a = el('a', null, (pp.exe || '?') + ' [pid ' + pp.pid + ']');\n"
    "      var q = lastByPid[pp.pid];\n"
    "      if (q) a.href = '#p' + q.id;\n"
    "      who.appendChild(a);\n"
    "    });\n"
    "    if (d.processes_unlisted > 0) who.appendChild(document.createTextNode(' and ' + "
    "d.processes_unlisted + ' more'));\n"
    "    return [verdict(d.verdict), what(d), d.count, who, d.step];\n"
    "  }));\n"
    "  t.id = 'denials';\n"
    "  db.appendChild(t);\n"
    "  if (D.n_violation_rows > D.violations.length) db.appendChild(el('p', null, '... and ' + "
    "(D.n_violation_rows - D.violations.length) + ' more rows in summary.json'));\n"
    "}\n"
    "var byId = {}, kids = {}, roots = [];\n"
    "D.procs.forEach(function (p) { byId[p.id] = p; kids[p.id] = []; p.steps = {}; });\n"
    "D.procs.forEach(function (p) {\n"
    "  if (p.parent !== null && p.parent !== p.id && byId[p.parent]) kids[p.parent].push(p); "
    "else roots.push(p);\n"
    "});\n"
    "/* A parent may be linked after its children were first seen (a fork that only shows\n"
    "   up at its exit), so walk the tree: pre-order, then backwards for the subtree facts:\n"
    "   steps present, whether anything happened below, how many processes it holds. */\n"
    "var order = [], st = roots.slice().reverse();\n"
    "while (st.length) { var q = st.pop(); order.push(q); for (var j = kids[q.id].length - 1; "
    "j >= 0; j--) st.push(kids[q.id][j]); }\n"
    "for (var i = order.length - 1; i >= 0; i--) {\n"
    "  var p = order[i];\n"
    "  p.steps[p.step === null ? '\\u0000none' : p.step] = true;\n"
    "  p.busy = !!(p.denied || p.net.length || p.dns.length || p.files.length || "
    "(p.socks && p.socks.length) || p.dropped > 0);\n"
    "  p.size = 1;\n"
    "  kids[p.id].forEach(function (c) { for (var s in c.steps) p.steps[s] = true; "
    "if (c.busy) p.busy = true; p.size += c.size; });\n"
    "}\n"
    "function node(p) {\n"
    "  var li = el('li', 'proc' + (p.denied ? ' denied' : ''));\n"
    "  li.id = 'p' + p.id;\n"
    "  li.setAttribute('data-step', p.step === null ? '' : p.step);\n"
    "  var h = el('div', 'ph');\n"
    "  h.appendChild(el('span', 'pid', '[' + p.pid + '] '));\n"
    "  h.appendChild(el('span', 'exe', p.exe || p.comm || '?'));\n"
    "  if (p.argv && p.argv.length) h.appendChild(el('span', 'argv mono', ' ' + "
    "p.argv.join(' ')));\n"
    "  if (p.step !== null) h.appendChild(el('span', 'badge step', p.step));\n"
    "  if (p.status !== null) h.appendChild(el('span', 'badge status', 'exit ' + p.status));\n"
    "  li.appendChild(h);\n"
    "  var acts = el('ul', 'acts');\n"
    "  p.net.forEach(function (n) {\n"
    "    var a = el('li', 'act net' + (denied(n.verdict) ? ' denied' : ''), (n.proto || '') + "
    "' ' + dest(n) + (n.host && n.daddr ? ' (' + n.daddr + ')' : '') + (n.count > 1 ? ' x' + "
    "n.count : '') + ' ');\n"
    "    a.appendChild(verdict(n.verdict));\n"
    "    acts.appendChild(a);\n"
    "  });\n"
    "  p.dns.forEach(function (n) {\n"
    "    var a = el('li', 'act dns' + (denied(n.verdict) ? ' denied' : ''), 'dns ' + n.query + "
    "' ' + (n.qtype || '') + (n.answers && n.answers.length ? ' -> ' + n.answers.join(', ') : "
    "'') + ' ');\n"
    "    if (n.verdict) a.appendChild(verdict(n.verdict));\n"
    "    acts.appendChild(a);\n"
    "  });\n"
    "  (p.socks || []).forEach(function (n) {\n"
    "    var a = el('li', 'act sock' + (denied(n.verdict) ? ' denied' : ''), 'socket ' + "
    "n.family + ' ' + n.type + ' protocol ' + n.protocol + ' ');\n"
    "    a.appendChild(verdict(n.verdict));\n"
    "    acts.appendChild(a);\n"
    "  });\n"
    "  p.files.forEach(function (f) { acts.appendChild(el('li', 'act file', (f.result && "
    "f.result !== 'ok' ? 'file open attempt (' + f.result + ') ' : 'file ') + f.path)); });\n"
    "  if (p.dropped > 0) acts.appendChild(el('li', 'act more', '... ' + p.dropped + ' more'));\n"
    "  if (acts.childNodes.length) li.appendChild(acts);\n"
    "  return li;\n"
    "}\n"
    "/* iterative, so a very deep chain of processes cannot overflow the stack; children\n"
    "   that did nothing but run (no network, file or denial anywhere below) are folded\n"
    "   into one closed group per parent, so the interesting part comes first */\n"
    "var tree = document.getElementById('tree'), work = [];\n"
    "function place(list, ul, folded) {\n"
    "  var busy = folded ? list : list.filter(function (c) { return c.busy; });\n"
    "  var quiet = folded ? [] : list.filter(function (c) { return !c.busy; });\n"
    "  if (quiet.length) work.push({fold: quiet, ul: ul});\n"
    "  for (var j = busy.length - 1; j >= 0; j--) work.push({p: busy[j], ul: ul, folded: "
    "folded});\n"
    "}\n"
    "place(roots, tree, false);\n"
    "while (work.length) {\n"
    "  var w = work.pop();\n"
    "  if (w.fold) {\n"
    "    var n = w.fold.reduce(function (a, c) { return a + c.size; }, 0);\n"
    "    var fl = el('li', 'fold'), det = el('details');\n"
    "    det.appendChild(el('summary', null, n + (n === 1 ? ' process' : ' processes') + "
    "' that only ran (no network, files or denials)'));\n"
    "    var inner = el('ul', 'children');\n"
    "    det.appendChild(inner);\n"
    "    fl.appendChild(det);\n"
    "    w.ul.appendChild(fl);\n"
    "    place(w.fold, inner, true);\n"
    "    continue;\n"
    "  }\n"
    "  var li = node(w.p);\n"
    "  w.ul.appendChild(li);\n"
    "  var ch = kids[w.p.id];\n"
    "  if (ch.length) {\n"
    "    var ul = el('ul', 'children');\n"
    "    li.appendChild(ul);\n"
    "    place(ch, ul, w.folded);\n"
    "  }\n"
    "}\n"
    "var sel = document.getElementById('step-filter');\n"
    "function opt(v, label) { var o = el('option', null, label); o.value = v; "
    "sel.appendChild(o); }\n"
    "opt('\\u0001all', '(all steps)');\n"
    "D.steps.forEach(function (s) { opt(s, s); });\n"
    "if (D.procs.some(function (p) { return p.step === null; })) opt('\\u0000none', '(no step)');\n"
    "function apply() {\n"
    "  var v = sel.value, shown = 0;\n"
    "  D.procs.forEach(function (p) {\n"
    "    var li = document.getElementById('p' + p.id);\n"
    "    if (!li) return;\n"
    "    var own = v === '\\u0001all' || (p.step === null ? v === '\\u0000none' : p.step === v);\n"
    "    li.classList.toggle('hidden', !own && !p.steps[v] && v !== '\\u0001all');\n"
    "    li.classList.toggle('context', !own && !!p.steps[v]);\n"
    "    li.classList.toggle('match', own);\n"
    "    if (own) shown++;\n"
    "  });\n"
    "  document.getElementById('shown').textContent = shown + ' of ' + D.procs.length + ' "
    "processes';\n"
    "}\n"
    "sel.addEventListener('change', function () {\n"
    "  history.replaceState(null, '', '#step=' + encodeURIComponent(sel.value));\n"
    "  apply();\n"
    "});\n"
    "var m = /^#step=(.*)$/.exec(location.hash);\n"
    "if (m) { try { var want = decodeURIComponent(m[1]); if "
    "(Array.prototype.some.call(sel.options, "
    "function (o) { return o.value === want; })) sel.value = want; } catch (e) {} }\n"
    "apply();\n"
    "var ds = D.dests.slice().sort(function (a, b) { return (denied(b.verdict) ? 1 : 0) - "
    "(denied(a.verdict) ? 1 : 0); });\n"
    "document.getElementById('dests-box').appendChild(table(['Verdict', 'Destination', "
    "'Address', 'Proto', 'Step', 'Count'], ds.map(function (d) { return [verdict(d.verdict), "
    "dest(d), d.daddr, d.proto, d.step, d.count]; })));\n"
    "document.getElementById('files-box').appendChild(D.files.length ? table(['File', "
    "'Result', 'Count', 'Processes'], D.files.map(function (f) { return [f.path, f.result && "
    "f.result !== 'ok' ? 'attempt: ' + f.result : 'opened', f.count, (f.processes || "
    "[]).map(function (p) { return (p.exe || '?') + ' [' + p.pid + ']'; }).join(', ') + "
    "(f.processes_unlisted > 0 ? ' and ' + f.processes_unlisted + ' more' : '')]; })) : "
    "el('p', null, 'None.'));\n"
    "document.body.setAttribute('data-ready', '1');\n"
    "})();\n"
    "</script>\n</body></html>\n";

/* JSON text made inert inside <script>: outside strings JSON never uses
 * these characters, so replacing them everywhere is exact. */
static void put_json_for_script(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("\\u003c", out);
			break;
		case '>':
			fputs("\\u003e", out);
			break;
		case '&':
			fputs("\\u0026", out);
			break;
		default:
			fputc(*s, out);
		}
	}
}

int report_html(const struct report *r, FILE *out)
{
	json_t *data = json_object(), *counts = json_object();
	char headline[300], lockdown[1200], fheadline[300];
	char *text;

	for (int k = 0; k < RK_COUNT; k++)
		json_object_set_new(counts, report_kind_names[k], json_integer(r->counts[k]));
	report_headline(r, headline, sizeof(headline));
	json_object_set_new(data, "dir", json_string(r->dir) ?: json_null());
	json_object_set(data, "summary", r->summary ? r->summary : json_null());
	json_object_set(data, "procs", r->procs);
	json_object_set(data, "dests", r->dests);
	json_object_set(data, "dns", r->dns);
	json_object_set(data, "files", r->files);
	json_object_set(data, "violations", r->violations);
	json_object_set(data, "steps", r->steps);
	json_object_set(data, "notes", r->notes);
	json_object_set_new(data, "counts", counts);
	json_object_set_new(data, "headline", json_string(headline) ?: json_null());
	report_lockdown_line(r, lockdown, sizeof(lockdown));
	report_findings_headline(r, fheadline, sizeof(fheadline));
	json_object_set_new(data, "lockdown_line",
			    lockdown[0] ? json_string(lockdown) : json_null());
	json_object_set_new(data, "findings_headline", json_string(fheadline) ?: json_null());
	json_object_set(data, "findings", r->findings);
	json_object_set_new(data, "fails_run", json_boolean(r->fails_run));
	json_object_set_new(data, "n_denials", json_integer(r->n_denials));
	json_object_set_new(data, "n_audits", json_integer(r->n_audits));
	json_object_set_new(data, "n_violation_rows", json_integer(r->n_violation_rows));
	/* ENSURE_ASCII also turns U+2028/U+2029 into escapes */
	text = json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(data);
	if (!text)
		return -1;
	fputs(page_head, out);
	put_json_for_script(out, text);
	fputs(page_tail, out);
	free(text);
	return ferror(out) ? -1 : 0;
}
