/*
 * Signing keys: Ed25519 (default) or ECDSA P-256, kept as PEM (PKCS#8 private,
 * SubjectPublicKeyInfo public). The key id is the hex SHA-256 of the public
 * key's SPKI DER; it names a key, it never vouches for one.
 */
#ifndef RW_EV_KEYS_H
#define RW_EV_KEYS_H
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/strbuf.h"

enum key_type { KEY_ED25519, KEY_ECDSA_P256 };

/* Bigger than any PEM key we accept: an upper bound on what we read. */
#define KEY_FILE_MAX (64 * 1024)

struct key {
	EVP_PKEY *pk;
	enum key_type type;
	bool priv;
	char keyid[65];
};

const char *key_type_name(enum key_type t); /* "ed25519" / "ecdsa-p256" */
int key_generate(struct key *k, enum key_type t, char *err);
/* Refuses files that group or others may access (the job must not read them). */
int key_load_private(struct key *k, const char *path, char *err);
/* Same, and the file must be owned by root: the signing key of a run. */
int key_load_private_root(struct key *k, const char *path, char *err);
int key_load_public(struct key *k, const char *path, char *err);
int key_load_public_pem(struct key *k, const void *pem, size_t len, char *err);
/* Raw 32-byte Ed25519 seed: for tests that pin a known vector. */
int key_from_ed25519_seed(struct key *k, const unsigned char seed[32], char *err);
void key_free(struct key *k);

/* PEM text of the public key. */
int key_public_pem(const struct key *k, struct strbuf *out);
/* SubjectPublicKeyInfo DER (for sigstore trust material). */
int key_spki_der(const struct key *k, struct strbuf *out);

/* Creates path exclusively (unless overwrite), mode 0600 / 0644. */
int key_write_private(const struct key *k, const char *path, bool overwrite, char *err);
int key_write_public(const struct key *k, const char *path, bool overwrite, char *err);

/* Ed25519 signs msg itself; ECDSA signs SHA-256(msg), DER-encoded. */
int key_sign(const struct key *k, const void *msg, size_t len, struct strbuf *sig, char *err);
/* 1: valid, 0: not valid (any reason). */
int key_verify(const struct key *k, const void *msg, size_t len, const void *sig, size_t siglen);

#endif
