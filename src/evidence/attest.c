/*
 * attest_write: the last step of `runwarden run` and of a whole job. Builds
 * the Statement from what runwarden holds in memory (attest.h), signs it as a
 * DSSE envelope and writes it twice: plain and as a Sigstore bundle.
 */
#include "evidence/attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/util.h"
#include "evidence/chain.h"
#include "evidence/codec.h"
#include "evidence/dsse.h"

static int write_json(struct outdir *d, const char *name, json_t *j, char *err)
{
	char *text = json_dumps(j, JSON_INDENT(2));
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (!text) {
		ev_errf(err, "%s: cannot serialise", name);
		return -1;
	}
	sb_addstr(&sb, text);
	sb_addch(&sb, '\n');
	free(text);
	rc = outdir_write_file(d, name, sb.buf, sb.len, err);
	sb_release(&sb);
	return rc;
}

int attest_load_key(struct key *k, const char *key_path)
{
	char err[EV_ERRLEN];

	if (key_load_private_root(k, key_path, err)) {
		rw_err("--key: %s", err);
		return -1;
	}
	return 0;
}

void attest_exec_line(void *ctx, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *o;

	/* Only our own renderer writes an unescaped "kind":"exec" (strings in
	 * the line escape their quotes): a cheap filter before parsing. It writes
	 * kind right after seq, prev and ts (at most ~140 bytes in), so the search
	 * stops there instead of scanning every line of a flood to its end. */
	if (!memmem(line, len < 256 ? len : 256, "\"kind\":\"exec\"", 13))
		return;
	o = json_load_line(line, len - 1, &jerr);
	if (o)
		exec_summary_line(ctx, 0, o, line, len);
	json_decref(o);
}

/* The log as the statement builder reads it: chain.h's results, filled from
 * the writer's own values. */
static int log_view(const struct evlog *l, struct chain *c, char *err)
{
	json_error_t jerr;

	memset(c, 0, sizeof(*c));
	if (!l->closed || l->failed) {
		ev_errf(err, "the event log was not written completely; refusing to sign it");
		return -1;
	}
	c->lines = l->lines;
	c->closed = true;
	c->count = l->lines - 1;
	memcpy(c->root, l->root, sizeof(c->root));
	memcpy(c->head, l->head, sizeof(c->head));
	memcpy(c->sha256, l->sha256, sizeof(c->sha256));
	c->bytes = l->bytes;
	c->close =
	    json_load_line(l->close_line.buf ? l->close_line.buf : "", l->close_line.len, &jerr);
	if (!json_is_object(c->close)) {
		json_decref(c->close);
		c->close = NULL;
		ev_errf(err, "the closing record is not a JSON object (%s)", jerr.text);
		return -1;
	}
	return 0;
}

int attest_write(struct outdir *d, const struct attest_input *in)
{
	struct chain ch = {0};
	struct key eph = {0};
	const struct key *key = in->key;
	json_t *summary = NULL, *stmt = NULL, *env = NULL, *bundle = NULL;
	char err[EV_ERRLEN] = "", host[256] = "unknown";
	char *payload = NULL;
	json_error_t jerr;
	int rc = -1;

	summary = json_load_line(in->summary, in->summary_len, &jerr);
	if (!json_is_object(summary)) {
		ev_errf(err, "summary: not a JSON object (%s)", jerr.text);
		goto out;
	}
	if (log_view(in->log, &ch, err))
		goto out;
	if (!key) {
		if (key_generate(&eph, KEY_ED25519, err))
			goto out;
		key = &eph;
	}
	if (gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = 0;

	struct stmt_input si = {
	    .summary = summary,
	    .log = &ch,
	    .log_name = in->log_name,
	    .exec = in->exec,
	    .policy_path = in->policy_path,
	    .policy_sha256 = in->policy_path ? in->policy_sha256 : NULL,
	    .keyid = key->keyid,
	    .key_type = key_type_name(key->type),
	    .ephemeral = !in->key,
	    .hostname = host,
	};
	stmt = statement_build(&si, err);
	if (!stmt)
		goto out;
	/* These exact bytes are what is signed and what a verifier hashes. */
	payload = json_dumps(stmt, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!payload) {
		ev_errf(err, "cannot serialise the statement");
		goto out;
	}
	env = dsse_sign(DSSE_INTOTO_TYPE, payload, strlen(payload), key, err);
	if (!env)
		goto out;
	bundle = sigstore_bundle(env, key->keyid);
	if (!in->key) {
		struct strbuf pem = STRBUF_INIT;
		int w = key_public_pem(key, &pem)
			    ? (ev_errf(err, "cannot encode the ephemeral public key"), -1)
			    : outdir_write_file(d, "ephemeral.pub.pem", pem.buf, pem.len, err);

		sb_release(&pem);
		if (w)
			goto out;
	}
	if (write_json(d, "attestation.dsse.json", env, err) ||
	    write_json(d, "attestation.sigstore.json", bundle, err))
		goto out;
	rc = 0;
out:
	if (rc)
		rw_err("attest: %s", err);
	free(payload);
	json_decref(bundle);
	json_decref(env);
	json_decref(stmt);
	json_decref(summary);
	json_decref(ch.close);
	key_free(&eph);
	return rc;
}
