/*
 * Unit tests for attest_write + verify_evidence end to end on a crafted run
 * directory, and the tamper corpus: a flipped byte in each envelope part, a
 * log line dropped/swapped/changed, the closing record removed or altered,
 * another run's payload, a different key, a lying key id, a changed policy,
 * an ephemeral key, a world-readable private key, hostile attestation files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/jsonw.h"
#include "evidence/attest.h"
#include "evidence/codec.h"
#include "evidence/dsse.h"
#include "evidence/evlog.h"
#include "evidence/keys.h"
#include "evidence/outdir.h"
#include "evidence/verify.h"
#include "test_evidence_util.h"

struct fx {
	char *dir, *run, *run2, *key, *pub, *key2, *pub2, *policy;
	char *att, *bundle, *log;
	char sha[EVLOG_HASH_HEX]; /* the policy's, as the run loaded it */
};

/*
 * A run directory as job_finish makes one: the log written through the
 * directory descriptor, the summary bytes, then the attestation signed from
 * those in-memory values (key_path NULL: ephemeral). Returns attest_write's
 * result; the directory must not exist yet.
 */
static int make_run(const char *dir, int variant, const char *policy_sha, const char *key_path,
		    const char *policy_path)
{
	struct strbuf sb = STRBUF_INIT;
	struct exec_summary ex;
	struct outdir d;
	struct evlog l;
	struct key k = {0};
	char err[EV_ERRLEN];
	int rc;

	assert_int_equal(outdir_create(&d, dir, err), 0);
	assert_int_equal(evlog_open_fd(&l, outdir_create_file(&d, "events.ndjson", 0644, err)), 0);
	exec_summary_init(&ex);
	l.on_line = attest_exec_line;
	l.on_line_ctx = &ex;
	for (int i = 0; i < 4 + variant; i++) {
		sb_reset(&sb);
		sb_addf(
		    &sb,
		    ",\"ts\":\"2026-11-25T13:00:00.%09dZ\",\"kind\":\"exec\",\"pid\":%d,\"ppid\":1,"
		    "\"comm\":\"curl\",\"exe\":\"/usr/bin/curl\",\"step\":null,"
		    "\"argv\":[\"curl\",\"-Htoken:s\\udcffecret%d\"],\"cwd\":\"/\"",
		    i, 10 + i, i % 2);
		evlog_append(&l, sb.buf, sb.len);
	}
	static const char conn[] =
	    ",\"kind\":\"connect\",\"pid\":10,\"proto\":\"tcp\",\"family\":\"ipv4\","
	    "\"daddr\":\"127.0.0.1\",\"dport\":80,\"host\":\"x.test\",\"verdict\":\"allow\"";
	evlog_append(&l, conn, sizeof(conn) - 1);
	assert_int_equal(evlog_close(&l, ",\"events_lost\":{\"total\":0},\"complete\":true,"
					 "\"missing_hooks\":[]"),
			 0);
	sb_reset(&sb);
	sb_addf(
	    &sb,
	    "{\"runwarden_version\":\"0.1.0\",\"kernel\":\"6.18\",\"command\":[\"sh\",\"-c\","
	    "\"curl -H token:secret\"],\"step\":null,\"mode\":\"audit\","
	    "\"started_at\":\"2026-11-25T13:00:00.123456789Z\","
	    "\"finished_at\":\"2026-11-25T13:00:01.5Z\",\"duration_s\":1.4,\"exit_status\":0,"
	    "\"complete\":true,\"missing_hooks\":[],\"counts\":{\"exec\":%d,\"connect\":1},"
	    "\"events_lost\":{\"total\":0},\"destinations\":[{\"proto\":\"tcp\",\"family\":"
	    "\"ipv4\",\"daddr\":\"127.0.0.1\",\"dport\":80,\"host\":\"x.test\",\"verdict\":"
	    "\"allow\",\"count\":1}],\"dns_names\":[{\"query\":\"x.test\",\"qtype\":\"A\","
	    "\"answers\":[\"127.0.0.1\"],\"count\":1}],\"files\":[{\"path\":\"/root/.ssh/id rsa\","
	    "\"count\":2,\"processes\":[{\"pid\":12,\"exe\":\"/usr/bin/cat\"}]}],\"denials\":[],"
	    "\"leftovers\":[],\"ci\":{\"provider\":\"github\",\"repository\":\"o/r\","
	    "\"run_id\":\"42\",\"commit\":\"abc\",\"server_url\":\"https://github.com\","
	    "\"url\":\"https://github.com/o/r/actions/runs/42\"},"
	    "\"policy\":{\"path\":null,\"sha256\":\"%s\",\"version\":1},\"future_field\":[1],"
	    "\"log\":{\"path\":\"events.ndjson\",\"lines\":%d,\"root\":\"%s\"}}\n",
	    4 + variant, policy_sha, 6 + variant, l.head);
	assert_int_equal(outdir_write_file(&d, "summary.json", sb.buf, sb.len, err), 0);
	rc = key_path ? key_load_private(&k, key_path, err) : 0;
	if (rc == 0) {
		struct attest_input in = {
		    .summary = sb.buf,
		    .summary_len = sb.len,
		    .log = &l,
		    .log_name = "events.ndjson",
		    .exec = &ex,
		    .policy_path = policy_path,
		    .policy_sha256 = policy_sha,
		    .key = key_path ? &k : NULL,
		};
		rc = attest_write(&d, &in);
	}
	key_free(&k);
	evlog_release(&l);
	exec_summary_release(&ex);
	outdir_close(&d);
	sb_release(&sb);
	return rc;
}

/* Signs dir again from scratch (the writer never replaces a file). */
static int remake_run(const char *dir, int variant, const char *policy_sha, const char *key_path,
		      const char *policy_path)
{
	tu_rmrf(dir);
	return make_run(dir, variant, policy_sha, key_path, policy_path);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[EV_ERRLEN], sha[EVLOG_HASH_HEX];
	struct key k;
	static const char pol[] = "version: 1\nallow:\n  - x.test\n";

	f->dir = tu_tmpdir();
	f->run = tu_path(f->dir, "run");
	f->run2 = tu_path(f->dir, "run2");
	f->key = tu_path(f->dir, "k.key");
	f->pub = tu_path(f->dir, "k.pub");
	f->key2 = tu_path(f->dir, "k2.key");
	f->pub2 = tu_path(f->dir, "k2.pub");
	f->policy = tu_path(f->dir, "policy.yml");
	f->att = tu_path(f->run, "attestation.dsse.json");
	f->bundle = tu_path(f->run, "attestation.sigstore.json");
	f->log = tu_path(f->run, "events.ndjson");
	tu_write_str(f->policy, pol);
	sha256_hex(pol, strlen(pol), sha);
	assert_int_equal(key_generate(&k, KEY_ED25519, err), 0);
	assert_int_equal(key_write_private(&k, f->key, false, err), 0);
	assert_int_equal(key_write_public(&k, f->pub, false, err), 0);
	key_free(&k);
	assert_int_equal(key_generate(&k, KEY_ECDSA_P256, err), 0);
	assert_int_equal(key_write_private(&k, f->key2, false, err), 0);
	assert_int_equal(key_write_public(&k, f->pub2, false, err), 0);
	key_free(&k);
	memcpy(f->sha, sha, sizeof(f->sha));
	assert_int_equal(make_run(f->run, 0, sha, f->key, f->policy), 0);
	assert_int_equal(make_run(f->run2, 1, sha, f->key, f->policy), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tu_rmrf(f->dir);
	char **p = (char **)f;
	for (size_t i = 0; i < offsetof(struct fx, sha) / sizeof(char *); i++)
		free(p[i]);
	free(f);
	return 0;
}

/* Runs verify; checks verdict and (for failures) the code. */
static void expect(const char *key, const char *att, const char *log, const char *policy,
		   enum verdict want, const char *code, uint64_t line)
{
	struct verify_opts o = {key, att, log, policy};
	struct verify_report r;
	enum verdict v = verify_evidence(&o, &r);

	if (v != want)
		fail_msg("verdict %d, wanted %d (%s: %s)", v, want, r.code ? r.code : "", r.reason);
	if (code && (!r.code || strcmp(r.code, code)))
		fail_msg("code '%s', wanted '%s' (%s)", r.code ? r.code : "", code, r.reason);
	if (line && r.line != line)
		fail_msg("line %llu, wanted %llu (%s)", (unsigned long long)r.line,
			 (unsigned long long)line, r.reason);
	if (want == VERDICT_VALID)
		assert_true(r.payload.len > 0);
	else
		assert_int_equal(r.payload.len, 0); /* unverified bytes are never handed on */
	verify_report_release(&r);
}

static void valid_and_contents(void **state)
{
	struct fx *f = *state;
	struct verify_opts o = {f->pub, f->att, NULL, f->policy};
	struct verify_report r;
	json_error_t jerr;
	char sha[EVLOG_HASH_HEX];

	expect(f->pub, f->att, NULL, NULL, VERDICT_VALID, NULL, 0);
	expect(f->pub, f->bundle, NULL, f->policy, VERDICT_VALID, NULL, 0);
	assert_int_equal(verify_evidence(&o, &r), VERDICT_VALID);
	assert_int_equal(r.policy, 2);
	json_t *st = json_loadb(r.payload.buf, r.payload.len, 0, &jerr);
	json_t *pred = json_object_get(st, "predicate");

	assert_non_null(pred);
	/* exec summary: binary in clear, first argument hashed from its raw bytes */
	json_t *proc = json_object_get(json_object_get(pred, "monitorLog"), "process");
	assert_int_equal(json_array_size(proc), 2);
	json_t *p0 = json_array_get(proc, 0);
	assert_string_equal(json_string_value(json_object_get(p0, "processBinary")),
			    "/usr/bin/curl");
	sha256_hex("-Htoken:s\xff"
		   "ecret0",
		   16, sha);
	assert_string_equal(json_string_value(json_object_get(p0, "firstArgumentSha256")), sha);
	assert_int_equal(json_integer_value(json_object_get(p0, "count")), 2);
	assert_null(strstr(r.payload.buf, "secret")); /* arguments never disclosed */
	json_t *net =
	    json_array_get(json_object_get(json_object_get(pred, "monitorLog"), "network"), 0);
	assert_string_equal(json_string_value(json_object_get(net, "ip")), "127.0.0.1");
	assert_string_equal(json_string_value(json_object_get(net, "hostname")), "x.test");
	assert_int_equal(json_integer_value(json_object_get(net, "port")), 80);
	json_t *fa =
	    json_array_get(json_object_get(json_object_get(pred, "monitorLog"), "fileAccess"), 0);
	assert_string_equal(json_string_value(json_object_get(fa, "uri")),
			    "file:///root/.ssh/id%20rsa");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(pred, "ci"), "repository")), "o/r");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(pred, "monitoredProcess"), "event")),
	    "https://github.com/o/r/actions/runs/42");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(pred, "metadata"), "buildStartedOn")),
	    "2026-11-25T13:00:00.123456789Z");
	json_t *subj = json_object_get(st, "subject");
	assert_int_equal(json_array_size(subj), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(subj, 1), "name")),
			    "policy.yml");
	json_decref(st);
	verify_report_release(&r);
}

/* Rewrites one string member of the envelope in the attestation file. */
static void edit_envelope(const char *att, const char *out, const char *member, int sig,
			  const char *value, int flip_at)
{
	json_error_t jerr;
	json_t *env = json_load_file(att, 0, &jerr);
	json_t *obj = sig ? json_array_get(json_object_get(env, "signatures"), 0) : env;
	char *s = strdup(json_string_value(json_object_get(obj, member)));

	if (flip_at >= 0) {
		/* swap one base64/text character for another valid one */
		s[flip_at] = s[flip_at] == 'A' ? 'B' : 'A';
		json_object_set_new(obj, member, json_string(s));
	} else {
		json_object_set_new(obj, member, json_string(value));
	}
	json_dump_file(env, out, 0);
	json_decref(env);
	free(s);
}

static void tampered_envelope(void **state)
{
	struct fx *f = *state;
	char *t = tu_path(f->run, "t.json"), *k2keyid;
	char err[EV_ERRLEN];
	struct key k2;

	/* payload, payloadType, sig: a changed character anywhere breaks the signature */
	edit_envelope(f->att, t, "payload", 0, NULL, 10);
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "signature", 0);
	edit_envelope(f->att, t, "payload", 0, NULL, 200);
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "signature", 0);
	edit_envelope(f->att, t, "payloadType", 0, "application/vnd.in-toto+jsom", -1);
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "signature", 0);
	edit_envelope(f->att, t, "sig", 1, NULL, 5);
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "signature", 0);
	/* the last character's unused bits: canonical base64 refuses the twin */
	json_error_t jerr;
	json_t *env = json_load_file(f->att, 0, &jerr);
	json_t *s0 = json_array_get(json_object_get(env, "signatures"), 0);
	char *sig = strdup(json_string_value(json_object_get(s0, "sig")));
	size_t n = strlen(sig);

	assert_string_equal(sig + n - 2, "==");
	sig[n - 3] ^= 1;
	json_object_set_new(s0, "sig", json_string(sig));
	json_dump_file(env, t, 0);
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, NULL, 0);
	free(sig);
	json_decref(env);

	/* keyid is not trusted in either direction */
	edit_envelope(f->att, t, "keyid", 1, "0000", -1);
	expect(f->pub, t, f->log, NULL, VERDICT_VALID, NULL, 0);

	/* signed by another key whose keyid claims to be ours */
	assert_int_equal(key_load_private(&k2, f->key2, err), 0);
	k2keyid = strdup(k2.keyid);
	{
		size_t len;
		char *text = tu_read(f->att, &len);
		struct dsse_env e;
		struct key k1;

		assert_int_equal(dsse_parse(text, len, &e, err), 0);
		json_t *forged = dsse_sign(DSSE_INTOTO_TYPE, e.payload, e.payload_len, &k2, err);
		assert_int_equal(key_load_public(&k1, f->pub, err), 0);
		json_object_set_new(json_array_get(json_object_get(forged, "signatures"), 0),
				    "keyid", json_string(k1.keyid));
		json_dump_file(forged, t, 0);
		expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "signature", 0);
		/* ... and verifies for the key that really signed it */
		expect(f->pub2, t, f->log, NULL, VERDICT_VALID, NULL, 0);
		json_decref(forged);
		key_free(&k1);
		dsse_env_free(&e);
		free(text);
	}
	key_free(&k2);
	free(k2keyid);

	/* a different pinned key */
	expect(f->pub2, f->att, NULL, NULL, VERDICT_INVALID, "signature", 0);

	/* another run's attestation (same key, valid signature) over this log */
	char *att2 = tu_path(f->run2, "attestation.dsse.json");
	expect(f->pub, att2, f->log, NULL, VERDICT_INVALID, "log-mismatch", 0);
	free(att2);

	/* hostile files */
	tu_write_str(t, "");
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "envelope", 0);
	tu_write_str(t, "{\"payload\":\"eyJ");
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "envelope", 0);
	tu_write_str(t, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "envelope", 0);
	{
		FILE *fp = fopen(t, "w");

		for (int i = 0; i < (int)(DSSE_MAX_FILE / 4096) + 2; i++)
			fprintf(fp, "%4096s", " ");
		fclose(fp);
		expect(f->pub, t, f->log, NULL, VERDICT_INVALID, "envelope", 0);
	}
	/* No attestation at all: the log beside it says why. Closed but unsigned,
	 * or cut short by a writer that was killed (no closing record). */
	expect(f->pub, "/nonexistent/att.json", f->log, NULL, VERDICT_INVALID, "no-attestation", 0);
	{
		size_t len;
		char *log = tu_read(f->log, &len), *cut = tu_path(f->dir, "cut.ndjson");
		char *last = log + len - 1;

		while (last > log && last[-1] != '\n')
			last--; /* start of the closing record */
		tu_write(cut, log, last - log);
		expect(f->pub, "/nonexistent/att.json", cut, NULL, VERDICT_INVALID, "incomplete",
		       5);
		free(cut);
		free(log);
	}
	expect(f->pub, "/nonexistent/att.json", "/nonexistent/log", NULL, VERDICT_INVALID,
	       "envelope", 0);
	expect("/nonexistent.pem", f->att, NULL, NULL, VERDICT_ERROR, "key", 0);
	free(t);
}

static void tampered_log(void **state)
{
	struct fx *f = *state;
	size_t len, off[16], nl = 0;
	char *orig = tu_read(f->log, &len), *t = tu_path(f->run, "t.ndjson");
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < len; i++)
		if (i == 0 || orig[i - 1] == '\n')
			off[nl++] = i;
	off[nl] = len;
	assert_int_equal(nl, 6);

	/* byte flipped in line 2 (its value, still valid JSON): caught at line 3 */
	sb_add(&sb, orig, len);
	sb.buf[off[1] + 100] ^= 1;
	tu_write(t, sb.buf, sb.len);
	expect(f->pub, f->att, t, NULL, VERDICT_INVALID, NULL, 3);
	/* byte flipped in the closing record */
	sb_reset(&sb);
	sb_add(&sb, orig, len);
	char *c = strstr(sb.buf + off[5], "\"complete\":true");
	memcpy(c, "\"complete\":fals", 15); /* still JSON? no: "fals" */
	tu_write(t, sb.buf, sb.len);
	expect(f->pub, f->att, t, NULL, VERDICT_INVALID, "not-json", 6);
	sb_reset(&sb);
	sb_add(&sb, orig, len);
	c = strstr(sb.buf + off[5], "\"total\":0");
	c[8] = '9';
	tu_write(t, sb.buf, sb.len);
	expect(f->pub, f->att, t, NULL, VERDICT_INVALID, "log-mismatch", 6);
	/* line 3 dropped */
	sb_reset(&sb);
	sb_add(&sb, orig, off[2]);
	sb_add(&sb, orig + off[3], len - off[3]);
	tu_write(t, sb.buf, sb.len);
	expect(f->pub, f->att, t, NULL, VERDICT_INVALID, "seq", 3);
	/* lines 3 and 4 swapped */
	sb_reset(&sb);
	sb_add(&sb, orig, off[2]);
	sb_add(&sb, orig + off[3], off[4] - off[3]);
	sb_add(&sb, orig + off[2], off[3] - off[2]);
	sb_add(&sb, orig + off[4], len - off[4]);
	tu_write(t, sb.buf, sb.len);
	expect(f->pub, f->att, t, NULL, VERDICT_INVALID, "seq", 3);
	/* closing record removed */
	tu_write(t, orig, off[5]);
	expect(f->pub, f->att, t, NULL, VERDICT_INVALID, "no-close", 5);
	/* the other run's (intact) log */
	char *log2 = tu_path(f->run2, "events.ndjson");
	expect(f->pub, f->att, log2, NULL, VERDICT_INVALID, "log-mismatch", 0);
	free(log2);
	/* a different policy file */
	tu_write_str(t, "version: 1\nallow: []\n");
	expect(f->pub, f->att, NULL, t, VERDICT_INVALID, "policy", 0);
	expect(f->pub, f->att, NULL, f->policy, VERDICT_VALID, NULL, 0);
	sb_release(&sb);
	free(orig);
	free(t);
}

static void ephemeral_and_keys(void **state)
{
	struct fx *f = *state;
	char *eph = tu_path(f->run2, "ephemeral.pub.pem");
	char *att2 = tu_path(f->run2, "attestation.dsse.json");

	/* No key: an ephemeral one signs; verification says self-consistent only. */
	assert_int_equal(remake_run(f->run2, 1, f->sha, NULL, f->policy), 0);
	expect(eph, att2, NULL, NULL, VERDICT_SELF_CONSISTENT, "ephemeral-key", 0);
	expect(f->pub, att2, NULL, NULL, VERDICT_INVALID, "signature", 0);

	/* ECDSA signing key */
	assert_int_equal(remake_run(f->run2, 1, f->sha, f->key2, f->policy), 0);
	expect(f->pub2, att2, NULL, f->policy, VERDICT_VALID, NULL, 0);

	/* A private key others can read is refused, and nothing is signed. */
	chmod(f->key, 0644);
	assert_int_equal(remake_run(f->run2, 1, f->sha, f->key, f->policy), -1);
	chmod(f->key, 0600);
	assert_int_equal(access(att2, F_OK), -1);

	/* A run's key must be root's: one the job's user owns is refused. */
	if (geteuid() == 0) {
		char err[EV_ERRLEN];
		struct key k;

		assert_int_equal(chown(f->key, 65534, 65534), 0);
		assert_int_equal(key_load_private_root(&k, f->key, err), -1);
		assert_non_null(strstr(err, "owned by uid 65534, not root"));
		assert_int_equal(chown(f->key, 0, 0), 0);
		assert_int_equal(key_load_private_root(&k, f->key, err), 0);
		key_free(&k);
	}
	/* The signature covers the digest of the policy the run loaded: a file
	 * changed since then fails verification against it. */
	assert_int_equal(remake_run(f->run2, 1, f->sha, f->key, f->policy), 0);
	tu_write_str(f->policy, "version: 1\nallow: [evil.test]\n");
	expect(f->pub, att2, NULL, f->policy, VERDICT_INVALID, "policy", 0);
	free(eph);
	free(att2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(valid_and_contents, setup, teardown),
	    cmocka_unit_test_setup_teardown(tampered_envelope, setup, teardown),
	    cmocka_unit_test_setup_teardown(tampered_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(ephemeral_and_keys, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
