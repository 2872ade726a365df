/* Builds the runtime-trace Statement from summary.json + the log, and reads one back. */
#include "evidence/statement.h"

#include <stdlib.h>
#include <string.h>

#include "evidence/codec.h"

/* ---- exact bytes of escaped strings ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int evlog_string_bytes(const char *raw, size_t len, const char *member, size_t index,
		       struct strbuf *out)
{
	struct strbuf sb = STRBUF_INIT;
	json_error_t jerr;
	json_t *o, *v;
	int rc = 1;

	/*
	 * jansson refuses lone surrogates, so \udcXX (byte XX, see jsonw.h)
	 * becomes \u0000 followed by the two hex digits: argv strings and paths
	 * are C strings and never hold a real NUL, so the marker is unambiguous.
	 */
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\\' && i + 1 < len) {
			if (raw[i + 1] == 'u' && i + 6 <= len && (raw[i + 2] | 0x20) == 'd' &&
			    (raw[i + 3] | 0x20) == 'c' && hexval(raw[i + 4]) >= 0 &&
			    hexval(raw[i + 5]) >= 0) {
				sb_add(&sb, "\\u0000", 6);
				sb_add(&sb, raw + i + 4, 2);
				i += 5;
				continue;
			}
			sb_add(&sb, raw + i, 2);
			i++;
			continue;
		}
		sb_addch(&sb, raw[i]);
	}
	o = json_loadb(sb_str(&sb), sb.len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
	sb_release(&sb);
	if (!o)
		return -1;
	v = json_object_get(o, member);
	if (json_is_array(v))
		v = json_array_get(v, index);
	else if (index)
		v = NULL;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);

		for (size_t i = 0; i < n; i++) {
			if (s[i] == 0 && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			    hexval(s[i + 2]) >= 0) {
				sb_addch(out, (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2])));
				i += 2;
			} else {
				sb_addch(out, s[i]);
			}
		}
		rc = 0;
	}
	json_decref(o);
	return rc;
}

/* ---- exec summary ---- */

void exec_summary_init(struct exec_summary *x)
{
	strmap_init(&x->seen);
	x->list = json_array();
	x->unlisted = 0;
}

void exec_summary_line(void *ctx, uint64_t seq, json_t *obj, const char *raw, size_t len)
{
	struct exec_summary *x = ctx;
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	json_t *exe = json_object_get(obj, "exe"), *argv = json_object_get(obj, "argv");
	json_t *digest = json_object_get(obj, "exe_sha256"), *dev = json_object_get(obj, "exe_dev");
	json_t *ino = json_object_get(obj, "exe_ino");
	struct strbuf key = STRBUF_INIT, arg = STRBUF_INIT;
	char hash[EVLOG_HASH_HEX] = "";
	struct strmap_entry *e;
	bool created;

	(void)seq;
	if (!kind || strcmp(kind, "exec"))
		return;
	if (json_is_array(argv) && json_array_size(argv) > 1) {
		/* Hash the argument's original bytes, not a lossy display form. */
		if (memmem(raw, len, "\\udc", 4) || memmem(raw, len, "\\uDC", 4)) {
			if (evlog_string_bytes(raw, len - 1, "argv", 1, &arg) == 0)
				sha256_hex(arg.buf ? arg.buf : "", arg.len, hash);
		} else if (json_is_string(json_array_get(argv, 1))) {
			json_t *a = json_array_get(argv, 1);

			sha256_hex(json_string_value(a), json_string_length(a), hash);
		}
	}
	sb_addstr(&key, json_is_string(exe) ? json_string_value(exe) : "");
	sb_addch(&key, '\n');
	sb_addstr(&key, hash);
	/* What ran, not what it was called: a payload under a trusted name is
	 * an entry of its own. */
	sb_addch(&key, '\n');
	sb_addstr(&key, json_is_string(digest) ? json_string_value(digest) : "");
	sb_addch(&key, '\n');
	sb_addstr(&key, json_is_string(dev) ? json_string_value(dev) : "");
	sb_addf(&key, ":%lld", (long long)json_integer_value(ino));
	e = strmap_get(&x->seen, key.buf);
	if (e) {
		json_t *c = json_object_get(e->val, "count");

		json_integer_set(c, json_integer_value(c) + 1);
	} else if (json_array_size(x->list) >= EXEC_SUMMARY_MAX) {
		x->unlisted++;
	} else {
		json_t *ent = json_pack("{s:s, s:O, s:O?, s:o, s:i}", "eventType", "exec",
					"processBinary", exe ? exe : json_null(), "comm",
					json_object_get(obj, "comm"), "firstArgumentSha256",
					hash[0] ? json_string(hash) : json_null(), "count", 1);

		if (ent) {
			/* The in-toto exec summary's digest of the binary (null when
			 * the file could not be read), and where it was. */
			json_object_set_new(ent, "digest",
					    json_is_string(digest)
						? json_pack("{s:O}", "sha256", digest)
						: json_null());
			json_object_set_new(ent, "device", dev ? json_deep_copy(dev) : json_null());
			json_object_set_new(ent, "inode", ino ? json_deep_copy(ino) : json_null());
			e = strmap_put(&x->seen, key.buf, &created);
			e->val = ent;
			json_array_append_new(x->list, ent);
		}
	}
	sb_release(&key);
	sb_release(&arg);
}

void exec_summary_release(struct exec_summary *x)
{
	strmap_clear(&x->seen, NULL);
	json_decref(x->list);
	x->list = NULL;
}

/* ---- building the statement ---- */

/* file:// URI of an absolute path, percent-encoding everything but unreserved and '/'. */
static json_t *file_uri(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *j;

	sb_addstr(&sb, "file://");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			sb_addch(&sb, (char)*p);
		else
			sb_addf(&sb, "%%%02X", *p);
	}
	j = json_stringn(sb.buf, sb.len);
	sb_release(&sb);
	return j;
}

static json_t *copy_or_null(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return v ? json_deep_copy(v) : json_null();
}

static json_t *sha256_of_string(const char *s, size_t n)
{
	char hex[EVLOG_HASH_HEX];

	sha256_hex(s, n, hex);
	return json_string(hex);
}

static json_t *network_entries(json_t *dests)
{
	json_t *out = json_array(), *d;
	size_t i;

	json_array_foreach(dests, i, d)
	{
		json_t *e = json_object();
		json_t *host = json_object_get(d, "host");

		json_object_set_new(e, "ip", copy_or_null(d, "daddr"));
		if (json_is_string(host))
			json_object_set(e, "hostname", host);
		json_object_set_new(e, "port", copy_or_null(d, "dport"));
		json_object_set_new(e, "protocol", copy_or_null(d, "proto"));
		json_object_set_new(e, "family", copy_or_null(d, "family"));
		json_object_set_new(e, "verdict", copy_or_null(d, "verdict"));
		json_object_set_new(e, "count", copy_or_null(d, "count"));
		json_array_append_new(out, e);
	}
	return out;
}

static json_t *file_entries(json_t *files)
{
	json_t *out = json_array(), *f;
	size_t i;

	json_array_foreach(files, i, f)
	{
		json_t *path = json_object_get(f, "path");
		json_t *e;

		if (!json_is_string(path))
			continue;
		e = json_pack("{s:O, s:o, s:{s:o, s:o}}", "name", path, "uri",
			      file_uri(json_string_value(path)), "annotations", "count",
			      copy_or_null(f, "count"), "processes", copy_or_null(f, "processes"));
		json_array_append_new(out, e);
	}
	return out;
}

/* The command's binary in clear, its arguments hashed (they may hold secrets). */
static json_t *command_entry(json_t *cmd)
{
	json_t *args = json_array(), *a;
	size_t i;

	json_array_foreach(cmd, i, a)
	{
		if (i == 0)
			continue;
		json_array_append_new(
		    args, json_is_string(a)
			      ? sha256_of_string(json_string_value(a), json_string_length(a))
			      : json_null());
	}
	a = json_array_get(cmd, 0);
	return json_pack("{s:o, s:o}", "binary", a ? json_deep_copy(a) : json_null(),
			 "argumentsSha256", args);
}

json_t *statement_build(const struct stmt_input *in, char *err)
{
	json_t *s = in->summary, *ci = json_object_get(s, "ci"), *subjects, *pred, *monitor;
	json_t *mp, *log;
	const char *provider = json_string_value(json_object_get(ci, "provider"));
	const char *server = json_string_value(json_object_get(ci, "server_url"));
	const char *runurl = json_string_value(json_object_get(ci, "url"));
	const char *ver = json_string_value(json_object_get(s, "runwarden_version"));
	const char *started = json_string_value(json_object_get(s, "started_at"));
	struct strbuf sb = STRBUF_INIT;

	if (!json_is_object(s) || !started || !json_is_string(json_object_get(s, "finished_at"))) {
		ev_errf(err, "summary.json lacks started_at/finished_at");
		return NULL;
	}

	subjects = json_array();
	json_array_append_new(
	    subjects, json_pack("{s:s, s:{s:s}, s:{s:s, s:s, s:s, s:I, s:b}}", "name", in->log_name,
				"digest", "sha256", in->log->sha256, "annotations", "role",
				"event-log", "chainRoot", in->log->root, "chainHead", in->log->head,
				"lines", (json_int_t)in->log->lines, "closed", in->log->closed));
	if (in->policy_path) {
		const char *base = strrchr(in->policy_path, '/');

		json_array_append_new(subjects, json_pack("{s:s, s:{s:s}, s:{s:s}}", "name",
							  base ? base + 1 : in->policy_path,
							  "digest", "sha256", in->policy_sha256,
							  "annotations", "role", "policy"));
	}

	sb_addf(&sb, "%s/v%s", RW_URI, ver ? ver : "unknown");
	monitor =
	    json_pack("{s:s%, s:s, s:o, s:o, s:{s:s, s:s, s:b}}", "type", sb.buf, sb.len, "version",
		      ver ? ver : "unknown", "kernel", copy_or_null(s, "kernel"), "tracePolicy",
		      json_pack("{s:o, s:o}", "mode", copy_or_null(s, "mode"), "policy",
				copy_or_null(s, "policy")),
		      "signingKey", "keyid", in->keyid, "algorithm", in->key_type, "ephemeral",
		      in->ephemeral);
	if (in->policy_path) {
		json_t *pol = json_object_get(s, "policy");

		json_object_set_new(monitor, "configSource",
				    json_pack("{s:o, s:{s:s}, s:{s:o}}", "uri",
					      file_uri(in->policy_path), "digest", "sha256",
					      in->policy_sha256, "annotations", "version",
					      copy_or_null(pol, "version")));
	}

	sb_reset(&sb);
	if (runurl)
		sb_addstr(&sb, runurl);
	else
		sb_addf(&sb, "runwarden run on %s started %s", in->hostname, started);
	mp = json_pack("{s:s, s:s, s:s%, s:s, s:o, s:o, s:o}", "hostID",
		       server ? server : "urn:runwarden:host", "type",
		       provider && !strcmp(provider, "github")
			   ? "https://actions.github.io/buildtypes/workflow/v1"
			   : RW_URI "/monitored/command/v1",
		       "event", sb.buf, sb.len, "hostname", in->hostname, "command",
		       command_entry(json_object_get(s, "command")), "exitStatus",
		       copy_or_null(s, "exit_status"), "step", copy_or_null(s, "step"));
	sb_release(&sb);

	log = json_object();
	/* The conclusions first: what the events showed, and a job a finding ended. */
	json_object_set_new(log, "findings", copy_or_null(s, "findings"));
	json_object_set_new(log, "findingsUnlisted", copy_or_null(s, "findings_unlisted"));
	json_object_set_new(log, "lockdown", copy_or_null(s, "lockdown"));
	json_object_set(log, "process", in->exec->list);
	json_object_set_new(log, "processUnlisted", json_integer((json_int_t)in->exec->unlisted));
	json_object_set_new(log, "network", network_entries(json_object_get(s, "destinations")));
	json_object_set_new(log, "fileAccess", file_entries(json_object_get(s, "files")));
	json_object_set_new(log, "memoryAccess", copy_or_null(s, "memory_reads"));
	json_object_set_new(log, "dns", copy_or_null(s, "dns_names"));
	json_object_set_new(log, "eventCounts", copy_or_null(s, "counts"));
	json_object_set_new(log, "eventsLost", copy_or_null(s, "events_lost"));
	json_object_set_new(log, "denials", copy_or_null(s, "denials"));
	/* what was denied, blocked or audited, grouped (summary.json's list) */
	json_object_set_new(log, "violations", copy_or_null(s, "violations"));
	json_object_set_new(log, "complete", copy_or_null(in->log->close, "complete"));
	json_object_set_new(log, "missingHooks", copy_or_null(s, "missing_hooks"));
	json_object_set_new(log, "unlistedItems", copy_or_null(s, "unlisted_items"));
	json_object_set_new(log, "leftovers", copy_or_null(s, "leftovers"));
	json_object_set_new(log, "closingRecord", json_deep_copy(in->log->close));

	pred = json_pack("{s:o, s:o, s:o, s:{s:o, s:o, s:o}}", "monitor", monitor,
			 "monitoredProcess", mp, "monitorLog", log, "metadata", "buildStartedOn",
			 copy_or_null(s, "started_at"), "buildFinishedOn",
			 copy_or_null(s, "finished_at"), "durationSeconds",
			 copy_or_null(s, "duration_s"));
	if (ci && json_is_object(ci))
		json_object_set_new(pred, "ci", json_deep_copy(ci));
	if (!pred) {
		json_decref(subjects);
		ev_errf(err, "cannot build the statement (bad summary.json types)");
		return NULL;
	}
	return json_pack("{s:s, s:o, s:s, s:o}", "_type", INTOTO_STATEMENT_V1, "subject", subjects,
			 "predicateType", RUNTIME_TRACE_V01, "predicate", pred);
}

/* ---- reading one back ---- */

static bool hex_member(json_t *o, const char *key, const char **out)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s || !is_sha256_hex(s))
		return false;
	*out = s;
	return true;
}

int statement_read(const unsigned char *payload, size_t len, struct stmt_view *v, char *err)
{
	json_error_t jerr;
	json_t *subj, *e, *pred, *lost;
	size_t i;

	memset(v, 0, sizeof(*v));
	v->log_lines = -1;
	v->root = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v->root) {
		ev_errf(err, "statement: not JSON (column %d: %s)", jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(v->root) || !json_is_string(json_object_get(v->root, "_type")) ||
	    strcmp(json_string_value(json_object_get(v->root, "_type")), INTOTO_STATEMENT_V1)) {
		ev_errf(err, "statement: _type is not %s", INTOTO_STATEMENT_V1);
		goto bad;
	}
	if (!json_is_string(json_object_get(v->root, "predicateType")) ||
	    strcmp(json_string_value(json_object_get(v->root, "predicateType")),
		   RUNTIME_TRACE_V01)) {
		ev_errf(err, "statement: predicateType is not %s", RUNTIME_TRACE_V01);
		goto bad;
	}
	subj = json_object_get(v->root, "subject");
	if (!json_is_array(subj) || !json_array_size(subj)) {
		ev_errf(err, "statement: no subject");
		goto bad;
	}
	json_array_foreach(subj, i, e)
	{
		json_t *dig = json_object_get(e, "digest"),
		       *ann = json_object_get(e, "annotations");
		const char *role = json_string_value(json_object_get(ann, "role"));
		const char *sha;

		if (!json_is_object(dig) || !json_object_size(dig)) {
			ev_errf(err, "statement: subject %zu has no digest", i + 1);
			goto bad;
		}
		if (!role)
			continue;
		if (!hex_member(dig, "sha256", &sha)) {
			ev_errf(err, "statement: subject %zu has no sha256 digest", i + 1);
			goto bad;
		}
		if (!strcmp(role, "event-log")) {
			json_t *lines = json_object_get(ann, "lines");

			if (v->log_sha256) {
				ev_errf(err, "statement: more than one event-log subject");
				goto bad;
			}
			if (!hex_member(ann, "chainRoot", &v->log_root) ||
			    !hex_member(ann, "chainHead", &v->log_head) ||
			    !json_is_integer(lines)) {
				ev_errf(err,
					"statement: event-log subject lacks chainRoot, chainHead "
					"or lines");
				goto bad;
			}
			v->log_sha256 = sha;
			v->log_lines = json_integer_value(lines);
		} else if (!strcmp(role, "policy")) {
			if (v->policy_sha256) {
				ev_errf(err, "statement: more than one policy subject");
				goto bad;
			}
			v->policy_sha256 = sha;
			v->policy_name = json_string_value(json_object_get(e, "name"));
		}
	}
	if (!v->log_sha256) {
		ev_errf(err, "statement: no event-log subject");
		goto bad;
	}
	pred = json_object_get(v->root, "predicate");
	v->ephemeral = json_is_true(json_object_get(
	    json_object_get(json_object_get(pred, "monitor"), "signingKey"), "ephemeral"));
	v->signer_keyid = json_string_value(json_object_get(
	    json_object_get(json_object_get(pred, "monitor"), "signingKey"), "keyid"));
	v->complete =
	    json_is_true(json_object_get(json_object_get(pred, "monitorLog"), "complete"));
	lost = json_object_get(json_object_get(json_object_get(pred, "monitorLog"), "eventsLost"),
			       "total");
	v->events_lost = json_is_integer(lost) ? json_integer_value(lost) : -1;
	return 0;
bad:
	statement_view_release(v);
	return -1;
}

void statement_view_release(struct stmt_view *v)
{
	json_decref(v->root);
	memset(v, 0, sizeof(*v));
}
