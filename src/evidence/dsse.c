/* DSSE PAE, signing, and the strict envelope/bundle reader used by `verify`. */
#include "evidence/dsse.h"

#include <stdlib.h>
#include <string.h>

#include "evidence/codec.h"

void dsse_pae(struct strbuf *out, const char *type, size_t tlen, const void *body, size_t blen)
{
	sb_addf(out, "DSSEv1 %zu ", tlen);
	sb_add(out, type, tlen);
	sb_addf(out, " %zu ", blen);
	sb_add(out, body, blen);
}

json_t *dsse_sign(const char *type, const void *payload, size_t len, const struct key *k, char *err)
{
	struct strbuf pae = STRBUF_INIT, sig = STRBUF_INIT, b64 = STRBUF_INIT;
	json_t *env = NULL;

	dsse_pae(&pae, type, strlen(type), payload, len);
	if (key_sign(k, pae.buf, pae.len, &sig, err))
		goto out;
	env = json_object();
	b64_encode(&b64, payload, len);
	json_object_set_new(env, "payload", json_stringn(b64.buf, b64.len));
	json_object_set_new(env, "payloadType", json_string(type));
	sb_reset(&b64);
	b64_encode(&b64, sig.buf, sig.len);
	json_object_set_new(env, "signatures",
			    json_pack("[{s:s, s:s%}]", "keyid", k->keyid, "sig", b64.buf, b64.len));
out:
	sb_release(&pae);
	sb_release(&sig);
	sb_release(&b64);
	return env;
}

json_t *sigstore_bundle(json_t *envelope, const char *hint)
{
	return json_pack("{s:s, s:{s:{s:s}, s:[]}, s:O}", "mediaType", SIGSTORE_BUNDLE_V03,
			 "verificationMaterial", "publicKey", "hint", hint, "tlogEntries",
			 "dsseEnvelope", envelope);
}

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

static int parse_envelope(json_t *env, struct dsse_env *e, const char *where, char *err)
{
	json_t *payload = json_object_get(env, "payload");
	json_t *type = json_object_get(env, "payloadType");
	json_t *sigs = json_object_get(env, "signatures");
	char why[EV_ERRLEN];
	size_t i;
	json_t *s;

	if (!json_is_object(env)) {
		ev_errf(err, "%s is not a JSON object", where);
		return -1;
	}
	if (!json_is_string(payload) || !json_is_string(type) || !json_is_array(sigs)) {
		ev_errf(err, "%s lacks payload, payloadType (strings) or signatures (array)",
			where);
		return -1;
	}
	e->type_len = json_string_length(type);
	e->type = dup_n(json_string_value(type), e->type_len);
	e->payload = b64_decode(json_string_value(payload), json_string_length(payload),
				&e->payload_len, why);
	if (!e->type || !e->payload) {
		ev_errf(err, "%s payload: %s", where, e->type ? why : "out of memory");
		return -1;
	}
	if (json_array_size(sigs) == 0) {
		ev_errf(err, "%s has no signatures", where);
		return -1;
	}
	if (json_array_size(sigs) > DSSE_MAX_SIGS) {
		ev_errf(err, "%s has %zu signatures (at most %d are read)", where,
			json_array_size(sigs), DSSE_MAX_SIGS);
		return -1;
	}
	json_array_foreach(sigs, i, s)
	{
		json_t *sig = json_object_get(s, "sig"), *keyid = json_object_get(s, "keyid");
		struct dsse_sig *d = &e->sigs[e->nsigs];

		if (!json_is_string(sig)) {
			ev_errf(err, "%s signature %zu has no sig string", where, i + 1);
			return -1;
		}
		if (keyid && !json_is_null(keyid) && !json_is_string(keyid)) {
			ev_errf(err, "%s signature %zu: keyid is not a string", where, i + 1);
			return -1;
		}
		d->sig = b64_decode(json_string_value(sig), json_string_length(sig), &d->len, why);
		if (!d->sig) {
			ev_errf(err, "%s signature %zu: %s", where, i + 1, why);
			return -1;
		}
		e->nsigs++;
		if (json_is_string(keyid))
			d->keyid = dup_n(json_string_value(keyid), json_string_length(keyid));
	}
	return 0;
}

int dsse_parse(const char *text, size_t len, struct dsse_env *e, char *err)
{
	json_error_t jerr;
	json_t *root, *mt;
	int rc = -1;

	memset(e, 0, sizeof(*e));
	if (len > DSSE_MAX_FILE) {
		ev_errf(err, "attestation larger than %u bytes", DSSE_MAX_FILE);
		return -1;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		ev_errf(err, "attestation is not JSON (line %d, column %d: %s)", jerr.line,
			jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		ev_errf(err, "attestation is not a JSON object");
		goto out;
	}
	mt = json_object_get(root, "mediaType");
	if (mt) {
		json_t *vm = json_object_get(root, "verificationMaterial");
		json_t *hint = json_object_get(json_object_get(vm, "publicKey"), "hint");
		const char *m = json_string_value(mt);

		if (!m || strncmp(m, "application/vnd.dev.sigstore.bundle", 35)) {
			ev_errf(err, "attestation has a mediaType but is not a Sigstore bundle");
			goto out;
		}
		if (strcmp(m, SIGSTORE_BUNDLE_V03) &&
		    strcmp(m, "application/vnd.dev.sigstore.bundle+json;version=0.3")) {
			ev_errf(err, "Sigstore bundle media type '%s' is not v0.3", m);
			goto out;
		}
		e->bundle = 1;
		if (json_is_string(hint))
			e->hint = dup_n(json_string_value(hint), json_string_length(hint));
		if (!json_object_get(root, "dsseEnvelope")) {
			ev_errf(err, "Sigstore bundle has no dsseEnvelope");
			goto out;
		}
		if (parse_envelope(json_object_get(root, "dsseEnvelope"), e, "bundle dsseEnvelope",
				   err))
			goto out;
		/* The bundle format allows exactly one signature. */
		if (e->nsigs != 1) {
			ev_errf(err,
				"Sigstore bundle envelope has %zu signatures (exactly 1 allowed)",
				e->nsigs);
			goto out;
		}
	} else if (parse_envelope(root, e, "envelope", err)) {
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc)
		dsse_env_free(e);
	return rc;
}

int dsse_verify(const struct dsse_env *e, const struct key *k, char *err)
{
	struct strbuf pae = STRBUF_INIT;
	int found = -1;
	const char *claimed = NULL;

	dsse_pae(&pae, e->type, e->type_len, e->payload, e->payload_len);
	for (size_t i = 0; i < e->nsigs; i++) {
		if (key_verify(k, pae.buf, pae.len, e->sigs[i].sig, e->sigs[i].len)) {
			found = (int)i;
			break;
		}
		if (e->sigs[i].keyid && !strcmp(e->sigs[i].keyid, k->keyid))
			claimed = e->sigs[i].keyid;
	}
	sb_release(&pae);
	if (found < 0) {
		if (claimed)
			ev_errf(
			    err,
			    "signature does not verify with the pinned key %.16s… (the envelope's "
			    "keyid names that key, but key ids are not trusted: the signature is "
			    "what counts)",
			    k->keyid);
		else
			ev_errf(
			    err,
			    "signature does not verify with the pinned key %.16s… (%zu signature%s "
			    "checked; payload, payloadType or signature altered, or signed by "
			    "another key)",
			    k->keyid, e->nsigs, e->nsigs == 1 ? "" : "s");
	}
	return found;
}

void dsse_env_free(struct dsse_env *e)
{
	free(e->type);
	free(e->payload);
	for (size_t i = 0; i < e->nsigs; i++) {
		free(e->sigs[i].sig);
		free(e->sigs[i].keyid);
	}
	free(e->hint);
	memset(e, 0, sizeof(*e));
}
