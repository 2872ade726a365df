/* The verification pipeline; each step only runs on what the previous one authenticated. */
#include "evidence/verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evidence/chain.h"
#include "evidence/dsse.h"
#include "evidence/keys.h"
#include "evidence/statement.h"
#include "common/xalloc.h"

#define POLICY_MAX (16u << 20)

static enum verdict invalid(struct verify_report *r, const char *code, const char *file,
			    uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum verdict invalid(struct verify_report *r, const char *code, const char *file,
			    uint64_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->verdict = VERDICT_INVALID;
	r->code = code;
	r->file = file;
	r->line = line;
	return r->verdict;
}

static void note(struct verify_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(struct verify_report *r, const char *fmt, ...)
{
	char buf[EV_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(r->notes, json_string(buf));
}

static char *beside(const char *file, const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	const char *slash = strrchr(file, '/');

	if (slash)
		sb_add(&sb, file, slash - file + 1);
	sb_addstr(&sb, name);
	return sb_detach(&sb);
}

/* Same key as the one a run without --key left next to its evidence? */
static bool is_ephemeral_beside(const char *attestation, const struct key *pinned)
{
	char *path = beside(attestation, "ephemeral.pub.pem");
	char err[EV_ERRLEN];
	struct key k;
	bool same = false;

	if (key_load_public(&k, path, err) == 0) {
		same = !strcmp(k.keyid, pinned->keyid);
		key_free(&k);
	}
	free(path);
	return same;
}

/*
 * No attestation at all: say what the log beside it shows, so a run whose
 * writer was killed reads as that, not as a missing file. Returns -1 when
 * there is no log either (the caller reports the missing attestation).
 */
static int no_attestation(const struct verify_opts *o, struct verify_report *r)
{
	char *log = o->log_path ? xstrdup(o->log_path) : beside(o->attestation, "events.ndjson");
	struct chain ch;
	int rc = 0;

	chain_init(&ch, NULL, NULL);
	if (access(log, F_OK)) {
		rc = -1;
	} else if (chain_verify_file(&ch, log) == 0) {
		invalid(r, "no-attestation", o->attestation, 0,
			"%s: no such file, and %s is closed (%llu lines) but unsigned: nothing "
			"vouches for it",
			o->attestation, log, (unsigned long long)ch.lines);
	} else if (ch.code && (!strcmp(ch.code, "no-close") || !strcmp(ch.code, "truncated"))) {
		invalid(
		    r, "incomplete", log, ch.where,
		    "INCOMPLETE and unsigned: %s holds %llu chained lines and no closing record "
		    "(runwarden was killed, or could not write, before it finished); no "
		    "attestation "
		    "(%s) was written",
		    log, (unsigned long long)ch.lines, o->attestation);
	} else {
		invalid(r, ch.code ? ch.code : "chain", log, ch.where,
			"no attestation (%s), and the log is not intact: %s", o->attestation,
			ch.err);
	}
	chain_release(&ch);
	if (rc)
		free(log);
	else
		r->log_path = log; /* r->file may point to it */
	return rc;
}

enum verdict verify_evidence(const struct verify_opts *o, struct verify_report *r)
{
	struct strbuf text = STRBUF_INIT;
	struct dsse_env env = {0};
	struct stmt_view st = {0};
	struct chain ch;
	struct key key = {0};
	char err[EV_ERRLEN] = "";
	int which;

	memset(r, 0, sizeof(*r));
	r->notes = json_array();
	r->events_lost = -1;
	chain_init(&ch, NULL, NULL);

	if (key_load_public(&key, o->key_path, err)) {
		snprintf(r->reason, sizeof(r->reason), "pinned key: %s", err);
		r->verdict = VERDICT_ERROR;
		r->code = "key";
		r->file = o->key_path;
		goto out;
	}
	memcpy(r->keyid, key.keyid, sizeof(r->keyid));
	r->key_type = key_type_name(key.type);

	if (ev_read_file(o->attestation, DSSE_MAX_FILE, &text, err)) {
		bool missing = access(o->attestation, F_OK) && errno == ENOENT;

		if (!missing || no_attestation(o, r))
			invalid(r, "envelope", o->attestation, 0, "%s", err);
		goto out;
	}
	if (dsse_parse(text.buf ? text.buf : "", text.len, &env, err)) {
		invalid(r, "envelope", o->attestation, 0, "%s", err);
		goto out;
	}
	r->bundle = env.bundle;
	which = dsse_verify(&env, &key, err);
	if (which < 0) {
		invalid(r, "signature", o->attestation, 0, "%s", err);
		goto out;
	}
	/* From here on only the authenticated payload bytes are used. */
	if (env.type_len != strlen(DSSE_INTOTO_TYPE) ||
	    memcmp(env.type, DSSE_INTOTO_TYPE, env.type_len)) {
		invalid(r, "payload-type", o->attestation, 0,
			"payloadType is not %s (signed, but not an in-toto statement)",
			DSSE_INTOTO_TYPE);
		goto out;
	}
	if (env.sigs[which].keyid && strcmp(env.sigs[which].keyid, key.keyid))
		note(r,
		     "the envelope's keyid does not name the pinned key; ignored (key ids are not "
		     "trusted, the signature is)");
	if (statement_read(env.payload, env.payload_len, &st, err)) {
		invalid(r, "statement", o->attestation, 0, "%s", err);
		goto out;
	}
	if (st.signer_keyid && strcmp(st.signer_keyid, key.keyid))
		note(r, "the statement records signing key %.16s…, not the pinned key",
		     st.signer_keyid);

	r->log_path = o->log_path ? xstrdup(o->log_path) : beside(o->attestation, "events.ndjson");
	if (chain_verify_file(&ch, r->log_path)) {
		/* chain.c's codes are string literals: they outlive ch. */
		invalid(r, ch.code ? ch.code : "chain", r->log_path, ch.where, "%s", ch.err);
		goto out;
	}
	r->log_lines = ch.lines;
	memcpy(r->log_root, ch.root, sizeof(r->log_root));
	memcpy(r->log_sha256, ch.sha256, sizeof(r->log_sha256));
	if ((int64_t)ch.lines != st.log_lines) {
		invalid(
		    r, "log-mismatch", r->log_path, 0,
		    "the log has %llu lines but the attestation covers %lld: a different run's log "
		    "or attestation",
		    (unsigned long long)ch.lines, (long long)st.log_lines);
		goto out;
	}
	if (strcmp(ch.root, st.log_root)) {
		invalid(
		    r, "log-mismatch", r->log_path, ch.lines,
		    "chain root %.16s… differs from the attested %.16s…: a different run's log or "
		    "attestation",
		    ch.root, st.log_root);
		goto out;
	}
	if (strcmp(ch.head, st.log_head)) {
		invalid(
		    r, "log-mismatch", r->log_path, ch.lines,
		    "closing record differs from the one attested (hash %.16s…, attested %.16s…)",
		    ch.head, st.log_head);
		goto out;
	}
	if (strcmp(ch.sha256, st.log_sha256)) {
		invalid(r, "log-mismatch", r->log_path, 0,
			"sha256 %.16s… differs from the attested subject digest %.16s…", ch.sha256,
			st.log_sha256);
		goto out;
	}
	r->run_complete = st.complete;
	r->events_lost = st.events_lost;

	if (st.policy_sha256) {
		memcpy(r->policy_sha256, st.policy_sha256, 64);
		r->policy = 1;
	}
	if (o->policy_path) {
		char sha[EVLOG_HASH_HEX];

		sb_reset(&text);
		if (ev_read_file(o->policy_path, POLICY_MAX, &text, err)) {
			invalid(r, "policy", o->policy_path, 0, "%s", err);
			goto out;
		}
		if (!st.policy_sha256) {
			invalid(r, "policy", o->policy_path, 0,
				"the attestation records no policy, but one was given to check");
			goto out;
		}
		sha256_hex(sb_str(&text), text.len, sha);
		if (strcmp(sha, st.policy_sha256)) {
			invalid(r, "policy", o->policy_path, 0,
				"sha256 %.16s… differs from the attested policy digest %.16s…", sha,
				st.policy_sha256);
			goto out;
		}
		r->policy = 2;
	}

	if (st.ephemeral || is_ephemeral_beside(o->attestation, &key)) {
		r->verdict = VERDICT_SELF_CONSISTENT;
		r->code = "ephemeral-key";
		snprintf(
		    r->reason, sizeof(r->reason),
		    "signed by an ephemeral key that was written beside the evidence: the files "
		    "agree with each other, but anyone able to rewrite them could have re-signed "
		    "them (use runwarden run --key with a pinned key)");
		goto out;
	}
	r->verdict = VERDICT_VALID;
	sb_add(&r->payload, env.payload, env.payload_len);
out:
	statement_view_release(&st);
	dsse_env_free(&env);
	chain_release(&ch);
	key_free(&key);
	sb_release(&text);
	return r->verdict;
}

void verify_report_release(struct verify_report *r)
{
	json_decref(r->notes);
	free(r->log_path);
	sb_release(&r->payload);
	memset(r, 0, sizeof(*r));
}

json_t *verify_report_json(const struct verify_report *r)
{
	static const char *names[] = {"valid", "invalid", "error", "self-consistent"};
	json_t *j = json_pack("{s:s, s:O}", "verdict", names[r->verdict], "notes", r->notes);

	if (r->verdict != VERDICT_VALID) {
		json_object_set_new(j, "code", json_string(r->code ? r->code : ""));
		json_object_set_new(j, "reason", json_string(r->reason));
		json_object_set_new(j, "file", r->file ? json_string(r->file) : json_null());
		json_object_set_new(j, "line",
				    r->line ? json_integer((json_int_t)r->line) : json_null());
	}
	if (r->keyid[0])
		json_object_set_new(
		    j, "key", json_pack("{s:s, s:s}", "keyid", r->keyid, "type", r->key_type));
	json_object_set_new(j, "format", json_string(r->bundle ? "sigstore-bundle-v0.3" : "dsse"));
	if (r->log_sha256[0]) {
		json_t *log = json_pack("{s:s, s:I, s:s, s:s}", "path", r->log_path, "lines",
					(json_int_t)r->log_lines, "root", r->log_root, "sha256",
					r->log_sha256);

		/* What the run says about itself is only worth reporting once verified. */
		if (r->verdict == VERDICT_VALID || r->verdict == VERDICT_SELF_CONSISTENT) {
			json_object_set_new(log, "run_complete", json_boolean(r->run_complete));
			json_object_set_new(log, "events_lost", json_integer(r->events_lost));
		}
		json_object_set_new(j, "log", log);
	}
	if (r->policy)
		json_object_set_new(
		    j, "policy",
		    json_pack("{s:s, s:b}", "sha256", r->policy_sha256, "checked", r->policy == 2));
	return j;
}
