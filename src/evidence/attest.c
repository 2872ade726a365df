/*
 * attest_write: the last step of `runwarden run`. Re-checks the log it is
 * about to sign (never sign a chain we could not verify), builds the
 * Statement, signs it as a DSSE envelope and writes it twice: plain and as a
 * Sigstore bundle.
 */
#include "evidence/attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/util.h"
#include "evidence/chain.h"
#include "evidence/codec.h"
#include "evidence/dsse.h"
#include "evidence/keys.h"
#include "evidence/statement.h"

/* summary.json lists at most 10,000 items per table; this is far above that. */
#define SUMMARY_MAX (64u << 20)
#define POLICY_MAX  (16u << 20)

static char *path_in(const char *dir, const char *name)
{
	struct strbuf sb = STRBUF_INIT;

	sb_addf(&sb, "%s/%s", dir, name);
	return sb_detach(&sb);
}

static int write_json(const char *path, json_t *j, char *err)
{
	char *text = json_dumps(j, JSON_INDENT(2));
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (!text) {
		ev_errf(err, "%s: cannot serialise", path);
		return -1;
	}
	sb_addstr(&sb, text);
	sb_addch(&sb, '\n');
	free(text);
	rc = ev_write_file(path, sb.buf, sb.len, err);
	sb_release(&sb);
	return rc;
}

int attest_check_key(const char *key_path, uid_t job_uid)
{
	char err[EV_ERRLEN];
	struct key k;
	struct stat st;

	if (key_load_private(&k, key_path, err)) {
		rw_err("--key: %s", err);
		return -1;
	}
	key_free(&k);
	if (job_uid != (uid_t)-1 && job_uid != 0 && stat(key_path, &st) == 0 &&
	    st.st_uid == job_uid) {
		rw_err("--key: %s is owned by the job's user (uid %u), so the job could read it; "
		       "make it root-owned (chown root:root, chmod 600)",
		       key_path, (unsigned)job_uid);
		return -1;
	}
	return 0;
}

int attest_write(const char *outdir, const char *key_path, const char *policy_path)
{
	char *log_path = path_in(outdir, "events.ndjson");
	char *sum_path = path_in(outdir, "summary.json");
	char *dsse_path = path_in(outdir, "attestation.dsse.json");
	char *bundle_path = path_in(outdir, "attestation.sigstore.json");
	char *pub_path = path_in(outdir, "ephemeral.pub.pem");
	struct strbuf text = STRBUF_INIT;
	struct exec_summary ex;
	struct chain ch;
	struct key key = {0};
	json_t *summary = NULL, *stmt = NULL, *env = NULL, *bundle = NULL;
	char err[EV_ERRLEN] = "", pol_sha[EVLOG_HASH_HEX] = "", host[256] = "unknown";
	char *payload = NULL;
	json_error_t jerr;
	int rc = -1;

	exec_summary_init(&ex);
	chain_init(&ch, exec_summary_line, &ex);

	if (ev_read_file(sum_path, SUMMARY_MAX, &text, err))
		goto out;
	summary = json_load_line(sb_str(&text), text.len, &jerr);
	if (!json_is_object(summary)) {
		ev_errf(err, "%s: not a JSON object (line %d: %s)", sum_path, jerr.line, jerr.text);
		goto out;
	}
	if (chain_verify_file(&ch, log_path)) {
		char why[EV_ERRLEN];

		snprintf(why, sizeof(why), "%s", ch.err);
		ev_errf(err, "%s: %s; refusing to sign it", log_path, why);
		goto out;
	}

	/* The policy the run applied: its file must still hold the bytes it loaded. */
	json_t *pol = json_object_get(summary, "policy");
	const char *want = json_string_value(json_object_get(pol, "sha256"));

	if (!policy_path)
		policy_path = json_string_value(json_object_get(pol, "path"));
	if (policy_path) {
		sb_reset(&text);
		if (ev_read_file(policy_path, POLICY_MAX, &text, err))
			goto out;
		sha256_hex(sb_str(&text), text.len, pol_sha);
		if (want && strcmp(want, pol_sha)) {
			ev_errf(
			    err,
			    "%s: changed since the run loaded it (sha256 %.12s…, run used %.12s…)",
			    policy_path, pol_sha, want);
			goto out;
		}
	}

	if (key_path ? key_load_private(&key, key_path, err) : key_generate(&key, KEY_ED25519, err))
		goto out;
	if (gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = 0;

	struct stmt_input in = {
	    .summary = summary,
	    .log = &ch,
	    .log_name = "events.ndjson",
	    .exec = &ex,
	    .policy_path = policy_path,
	    .policy_sha256 = policy_path ? pol_sha : NULL,
	    .keyid = key.keyid,
	    .key_type = key_type_name(key.type),
	    .ephemeral = !key_path,
	    .hostname = host,
	};
	stmt = statement_build(&in, err);
	if (!stmt)
		goto out;
	/* These exact bytes are what is signed and what a verifier hashes. */
	payload = json_dumps(stmt, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!payload) {
		ev_errf(err, "cannot serialise the statement");
		goto out;
	}
	env = dsse_sign(DSSE_INTOTO_TYPE, payload, strlen(payload), &key, err);
	if (!env)
		goto out;
	bundle = sigstore_bundle(env, key.keyid);
	if (!key_path && key_write_public(&key, pub_path, true, err))
		goto out;
	if (write_json(dsse_path, env, err) || write_json(bundle_path, bundle, err))
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
	key_free(&key);
	chain_release(&ch);
	exec_summary_release(&ex);
	sb_release(&text);
	free(log_path);
	free(sum_path);
	free(dsse_path);
	free(bundle_path);
	free(pub_path);
	return rc;
}
