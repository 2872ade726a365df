/*
 * Unit tests for the signing layer: DSSE PAE bytes, the self-made Ed25519
 * vector and the DSSE specification's own ECDSA vector, base64 in both
 * alphabets, key handling (ids, permissions), and the envelope reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "evidence/codec.h"
#include "evidence/dsse.h"
#include "evidence/keys.h"
#include "test_evidence_util.h"

/* From REFERENCE.md: cross-checked with three independent libraries. */
static const char vec_payload[] =
    "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"hello.txt\","
    "\"digest\":{\"sha256\":\"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    "\"}}],\"predicateType\":\"https://in-toto.io/attestation/runtime-trace/v0.1\","
    "\"predicate\":{}}";
static const char vec_sig[] =
    "MPeVbIoIieWd9r4hhihRJ8g/fSmBpdSaEXtvdqkjCpU3vLGegh3NZhbCU4b0GlGF4Hil91KpGw7RfL27+Ka5Aw==";
static const char vec_keyid[] = "a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5";
static const char vec_pub[] = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";

static void vector_key(struct key *k)
{
	unsigned char seed[32];
	char err[EV_ERRLEN];

	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)i;
	assert_int_equal(key_from_ed25519_seed(k, seed, err), 0);
}

static void pae_bytes(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	static const char want[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";

	(void)state;
	dsse_pae(&sb, "http://example.com/HelloWorld", 29, "hello world", 11);
	assert_int_equal(sb.len, sizeof(want) - 1);
	assert_memory_equal(sb.buf, want, sb.len);
	sb_reset(&sb);
	dsse_pae(&sb, "", 0, "", 0);
	assert_string_equal(sb.buf, "DSSEv1 0  0 ");
	sb_reset(&sb);
	/* Lengths are byte counts, and the body may hold NUL and newlines. */
	dsse_pae(&sb, "t\xc3\xa9", 3, "a\0\nb", 4);
	assert_int_equal(sb.len, 19);
	assert_memory_equal(sb.buf, "DSSEv1 3 t\xc3\xa9 4 a\0\nb", 19);
	sb_release(&sb);
}

static void selfmade_ed25519_vector(void **state)
{
	struct strbuf pae = STRBUF_INIT, sig = STRBUF_INIT, b64 = STRBUF_INIT;
	unsigned char raw[32];
	size_t rawlen = sizeof(raw);
	char err[EV_ERRLEN], hex[65];
	struct key k;

	(void)state;
	assert_int_equal(sizeof(vec_payload) - 1, 246);
	vector_key(&k);
	assert_string_equal(k.keyid, vec_keyid);
	assert_int_equal(EVP_PKEY_get_raw_public_key(k.pk, raw, &rawlen), 1);
	hex_encode(raw, 32, hex);
	assert_string_equal(hex, vec_pub);

	dsse_pae(&pae, DSSE_INTOTO_TYPE, strlen(DSSE_INTOTO_TYPE), vec_payload,
		 sizeof(vec_payload) - 1);
	assert_int_equal(key_sign(&k, pae.buf, pae.len, &sig, err), 0);
	b64_encode(&b64, sig.buf, sig.len);
	assert_string_equal(b64.buf, vec_sig); /* Ed25519 is deterministic */

	/* Through the envelope: build, serialise, parse, verify. */
	json_t *env = dsse_sign(DSSE_INTOTO_TYPE, vec_payload, sizeof(vec_payload) - 1, &k, err);
	char *text = json_dumps(env, 0);
	struct dsse_env e;

	assert_non_null(text);
	assert_int_equal(dsse_parse(text, strlen(text), &e, err), 0);
	assert_int_equal(e.payload_len, sizeof(vec_payload) - 1);
	assert_int_equal(dsse_verify(&e, &k, err), 0);
	assert_string_equal(e.sigs[0].keyid, vec_keyid);
	dsse_env_free(&e);
	free(text);
	json_decref(env);

	/* The published signature verifies with only the public half. */
	struct strbuf pem = STRBUF_INIT;
	struct key pub;
	size_t n;
	unsigned char *s = b64_decode(vec_sig, strlen(vec_sig), &n, err);

	assert_int_equal(key_public_pem(&k, &pem), 0);
	assert_int_equal(key_load_public_pem(&pub, pem.buf, pem.len, err), 0);
	assert_false(pub.priv);
	assert_string_equal(pub.keyid, vec_keyid);
	assert_int_equal(key_verify(&pub, pae.buf, pae.len, s, n), 1);
	pae.buf[pae.len - 2] ^= 1;
	assert_int_equal(key_verify(&pub, pae.buf, pae.len, s, n), 0);
	free(s);
	key_free(&pub);
	key_free(&k);
	sb_release(&pem);
	sb_release(&pae);
	sb_release(&sig);
	sb_release(&b64);
}

/* DSSE protocol.md test vector: ECDSA P-256/SHA-256, signature as raw r||s. */
static void spec_ecdsa_vector(void **state)
{
	static const char X[] =
	    "46950820868899156662930047687818585632848591499744589407958293238635476079160";
	static const char Y[] =
	    "5640078356564379163099075877009565129882514886557779369047442380624545832820";
	static const char sig_b64[] =
	    "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHq"
	    "JPcIAriEGAHTVeCUjW2JIZA==";
	static const char env_fmt[] =
	    "{\"payload\": \"aGVsbG8gd29ybGQ=\", \"payloadType\": "
	    "\"http://example.com/HelloWorld\", \"signatures\": [{\"sig\": \"%s\"}]}";
	BIGNUM *x = NULL, *y = NULL;
	unsigned char point[65], *raw, *der = NULL;
	size_t rawlen;
	char err[EV_ERRLEN];

	(void)state;
	assert_true(BN_dec2bn(&x, X) > 0 && BN_dec2bn(&y, Y) > 0);
	point[0] = 4;
	assert_int_equal(BN_bn2binpad(x, point + 1, 32), 32);
	assert_int_equal(BN_bn2binpad(y, point + 33, 32), 32);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
	OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;

	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
	/* Through our PEM loader, as `verify --key` would see it. */
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	long pemlen;
	struct key k;

	PEM_write_bio_PUBKEY(bio, pk);
	pemlen = BIO_get_mem_data(bio, &pem);
	assert_int_equal(key_load_public_pem(&k, pem, pemlen, err), 0);
	assert_int_equal(k.type, KEY_ECDSA_P256);

	/* raw r||s -> DER, the only form sigstore-js and securesystemslib accept. */
	raw = b64_decode(sig_b64, strlen(sig_b64), &rawlen, err);
	assert_int_equal(rawlen, 64);
	ECDSA_SIG *es = ECDSA_SIG_new();
	ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
	int derlen = i2d_ECDSA_SIG(es, &der);
	assert_true(derlen > 0);
	/* Raw r||s itself must not pass as a signature. */
	struct strbuf pae = STRBUF_INIT, b64 = STRBUF_INIT, env = STRBUF_INIT;

	dsse_pae(&pae, "http://example.com/HelloWorld", 29, "hello world", 11);
	assert_int_equal(key_verify(&k, pae.buf, pae.len, raw, rawlen), 0);
	assert_int_equal(key_verify(&k, pae.buf, pae.len, der, derlen), 1);

	b64_encode(&b64, der, derlen);
	sb_addf(&env, env_fmt, b64.buf);
	struct dsse_env e;

	assert_int_equal(dsse_parse(env.buf, env.len, &e, err), 0);
	assert_int_equal(dsse_verify(&e, &k, err), 0);
	dsse_env_free(&e);

	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	free(raw);
	BIO_free(bio);
	key_free(&k);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(x);
	BN_free(y);
	sb_release(&pae);
	sb_release(&b64);
	sb_release(&env);
}

static void b64_ok(const char *in, const void *want, size_t wantlen)
{
	char err[EV_ERRLEN] = "";
	size_t n = 0;
	unsigned char *p = b64_decode(in, strlen(in), &n, err);

	if (!p)
		fail_msg("'%s' rejected: %s", in, err);
	assert_int_equal(n, wantlen);
	assert_memory_equal(p, want, n);
	free(p);
}

static void b64_bad(const char *in, const char *why)
{
	char err[EV_ERRLEN] = "";
	size_t n;
	unsigned char *p = b64_decode(in, strlen(in), &n, err);

	if (p)
		fail_msg("'%s' accepted", in);
	if (!strstr(err, why))
		fail_msg("'%s': error '%s' lacks '%s'", in, err, why);
}

static void base64_variants(void **state)
{
	static const unsigned char bytes[] = {0xfb, 0xff, 0xbf, 0x00, 0x3e};
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	b64_encode(&sb, bytes, sizeof(bytes));
	assert_string_equal(sb.buf, "+/+/AD4=");
	b64_ok("+/+/AD4=", bytes, 5);
	b64_ok("-_-_AD4=", bytes, 5); /* URL-safe */
	b64_ok("+/+/AD4", bytes, 5);  /* unpadded */
	b64_ok("-_-_AD4", bytes, 5);
	b64_ok("", "", 0);
	b64_ok("aGVsbG8gd29ybGQ=", "hello world", 11);
	b64_ok("aGVsbG8gd29ybGQ", "hello world", 11);
	b64_ok("aGk=", "hi", 2);
	b64_ok("aGk", "hi", 2);
	b64_ok("YQ==", "a", 1);
	b64_ok("YQ", "a", 1);
	b64_bad("+/-_AD4=", "mixes");
	b64_bad("aG k", "invalid base64 character");
	b64_bad("aGk\n", "invalid base64 character");
	b64_bad("a", "impossible length");
	b64_bad("aGk==", "impossible length");
	b64_bad("AAAA=", "impossible length");
	b64_bad("YR==", "non-canonical"); /* 'R' carries a set bit past the data */
	b64_bad("aGl=", "non-canonical");
	b64_bad("a=Gk", "invalid base64 character");
	b64_bad("aGk*", "invalid base64 character");
	sb_release(&sb);
}

static void ecdsa_roundtrip_der(void **state)
{
	struct strbuf sig = STRBUF_INIT, pem = STRBUF_INIT;
	char err[EV_ERRLEN];
	struct key k, pub;

	(void)state;
	assert_int_equal(key_generate(&k, KEY_ECDSA_P256, err), 0);
	assert_int_equal(key_sign(&k, "msg", 3, &sig, err), 0);
	assert_int_equal((unsigned char)sig.buf[0], 0x30); /* DER SEQUENCE, not raw r||s */
	assert_int_equal(key_public_pem(&k, &pem), 0);
	assert_int_equal(key_load_public_pem(&pub, pem.buf, pem.len, err), 0);
	assert_string_equal(pub.keyid, k.keyid);
	assert_int_equal(key_verify(&pub, "msg", 3, sig.buf, sig.len), 1);
	assert_int_equal(key_verify(&pub, "msh", 3, sig.buf, sig.len), 0);
	sig.buf[sig.len - 1] ^= 0x01;
	assert_int_equal(key_verify(&pub, "msg", 3, sig.buf, sig.len), 0);
	key_free(&k);
	key_free(&pub);
	sb_release(&sig);
	sb_release(&pem);
}

/* Signed by B, claiming to be A: rejected for the signature, whatever keyid says. */
static void lying_keyid(void **state)
{
	char err[EV_ERRLEN];
	struct key a, b;
	struct dsse_env e;

	(void)state;
	assert_int_equal(key_generate(&a, KEY_ED25519, err), 0);
	assert_int_equal(key_generate(&b, KEY_ED25519, err), 0);
	json_t *env = dsse_sign(DSSE_INTOTO_TYPE, "{}", 2, &b, err);
	json_object_set_new(json_array_get(json_object_get(env, "signatures"), 0), "keyid",
			    json_string(a.keyid));
	char *text = json_dumps(env, 0);

	assert_int_equal(dsse_parse(text, strlen(text), &e, err), 0);
	assert_int_equal(dsse_verify(&e, &a, err), -1);
	assert_non_null(strstr(err, "key ids are not trusted"));
	assert_int_equal(dsse_verify(&e, &b, err), 0); /* B's own signature still verifies */
	dsse_env_free(&e);
	free(text);

	/* A's signature with a bogus keyid is A's signature: keyid plays no part. */
	json_decref(env);
	env = dsse_sign(DSSE_INTOTO_TYPE, "{}", 2, &a, err);
	json_object_set_new(json_array_get(json_object_get(env, "signatures"), 0), "keyid",
			    json_string("nonsense"));
	text = json_dumps(env, 0);
	assert_int_equal(dsse_parse(text, strlen(text), &e, err), 0);
	assert_int_equal(dsse_verify(&e, &a, err), 0);
	dsse_env_free(&e);
	free(text);
	json_decref(env);
	key_free(&a);
	key_free(&b);
}

static void parse_fails(const char *text, const char *why)
{
	char err[EV_ERRLEN] = "";
	struct dsse_env e;

	if (!dsse_parse(text, strlen(text), &e, err))
		fail_msg("accepted: %s", text);
	if (!strstr(err, why))
		fail_msg("'%s': error '%s' lacks '%s'", text, err, why);
}

static void envelope_reader(void **state)
{
	struct strbuf big = STRBUF_INIT;

	(void)state;
	parse_fails("", "not JSON");
	parse_fails("{\"payload\":", "not JSON");
	parse_fails("[]", "not a JSON object");
	parse_fails("{\"payload\":\"e30=\",\"payloadType\":\"x\"}", "lacks payload");
	parse_fails("{\"payload\":\"e30=\",\"payloadType\":\"x\",\"signatures\":[]}",
		    "no signatures");
	parse_fails(
	    "{\"payload\":\"e3=0\",\"payloadType\":\"x\",\"signatures\":[{\"sig\":\"AA\"}]}",
	    "payload");
	parse_fails(
	    "{\"payload\":\"e30=\",\"payloadType\":\"x\",\"signatures\":[{\"keyid\":\"k\"}]}",
	    "no sig string");
	parse_fails("{\"payload\":\"e30=\",\"payload\":\"e30=\",\"payloadType\":\"x\","
		    "\"signatures\":[{\"sig\":\"AA\"}]}",
		    "not JSON"); /* duplicate keys are ambiguous: refuse */
	parse_fails("{\"mediaType\":\"text/plain\"}", "not a Sigstore bundle");
	parse_fails("{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.1+json\"}",
		    "not v0.3");
	parse_fails("{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}",
		    "no dsseEnvelope");
	parse_fails("{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\","
		    "\"dsseEnvelope\":{\"payload\":\"e30=\",\"payloadType\":\"x\","
		    "\"signatures\":[{\"sig\":\"AA\"},{\"sig\":\"AA\"}]}}",
		    "exactly 1");
	sb_addstr(&big, "{\"payload\":\"e30=\",\"payloadType\":\"x\",\"signatures\":[");
	for (int i = 0; i < DSSE_MAX_SIGS + 1; i++)
		sb_addstr(&big, i ? ",{\"sig\":\"AA\"}" : "{\"sig\":\"AA\"}");
	sb_addstr(&big, "]}");
	parse_fails(big.buf, "at most");
	sb_release(&big);
	/* Unknown fields are ignored; URL-safe unpadded payload accepted. */
	char err[EV_ERRLEN];
	struct dsse_env e;
	const char *ok = "{\"payload\":\"-_8\",\"payloadType\":\"x\",\"x-extra\":[1,2],"
			 "\"signatures\":[{\"sig\":\"AA\",\"extra\":true}]}";

	assert_int_equal(dsse_parse(ok, strlen(ok), &e, err), 0);
	assert_int_equal(e.payload_len, 2);
	assert_int_equal(e.payload[0], 0xfb);
	assert_int_equal(e.payload[1], 0xff);
	assert_null(e.sigs[0].keyid);
	dsse_env_free(&e);
}

static void key_files(void **state)
{
	char *dir = tu_tmpdir(), *priv = tu_path(dir, "k.key"), *pub = tu_path(dir, "k.pub");
	char err[EV_ERRLEN];
	struct key k, back;

	(void)state;
	assert_int_equal(key_generate(&k, KEY_ED25519, err), 0);
	assert_int_equal(key_write_private(&k, priv, false, err), 0);
	assert_int_equal(key_write_public(&k, pub, false, err), 0);
	struct stat st;

	assert_int_equal(stat(priv, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* No silent overwrite of a key. */
	assert_int_equal(key_write_private(&k, priv, false, err), -1);
	assert_non_null(strstr(err, "already exists"));

	assert_int_equal(key_load_private(&back, priv, err), 0);
	assert_string_equal(back.keyid, k.keyid);
	key_free(&back);
	assert_int_equal(key_load_public(&back, pub, err), 0);
	assert_string_equal(back.keyid, k.keyid);
	key_free(&back);
	/* A private key as the public one: refused (no PUBLIC KEY block). */
	assert_int_equal(key_load_public(&back, priv, err), -1);

	/* Group- or world-accessible private keys are refused. */
	chmod(priv, 0640);
	assert_int_equal(key_load_private(&back, priv, err), -1);
	assert_non_null(strstr(err, "mode 0640"));
	chmod(priv, 0604);
	assert_int_equal(key_load_private(&back, priv, err), -1);
	chmod(priv, 0600);

	/* Garbage and unsupported algorithms get a reason, not a crash. */
	tu_write_str(pub, "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n");
	assert_int_equal(key_load_public(&back, pub, err), -1);
	assert_non_null(strstr(err, "k.pub"));
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	FILE *f = fopen(pub, "w");

	PEM_write_PUBKEY(f, rsa);
	fclose(f);
	assert_int_equal(key_load_public(&back, pub, err), -1);
	assert_non_null(strstr(err, "unsupported key algorithm"));
	EVP_PKEY_free(rsa);
	/* Huge file: bounded read. */
	char *big = calloc(1, KEY_FILE_MAX + 10);

	memset(big, 'A', KEY_FILE_MAX + 9);
	tu_write_str(pub, big);
	assert_int_equal(key_load_public(&back, pub, err), -1);
	assert_non_null(strstr(err, "larger than"));
	free(big);

	key_free(&k);
	tu_rmrf(dir);
	free(dir);
	free(priv);
	free(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pae_bytes),	   cmocka_unit_test(selfmade_ed25519_vector),
	    cmocka_unit_test(spec_ecdsa_vector),   cmocka_unit_test(base64_variants),
	    cmocka_unit_test(ecdsa_roundtrip_der), cmocka_unit_test(lying_keyid),
	    cmocka_unit_test(envelope_reader),	   cmocka_unit_test(key_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
