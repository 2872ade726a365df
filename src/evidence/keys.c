/* Key generation, loading (with a permission check), PEM output, sign/verify via EVP. */
#include "evidence/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evidence/codec.h"
#include "evidence/evlog.h"

const char *key_type_name(enum key_type t)
{
	return t == KEY_ED25519 ? "ed25519" : "ecdsa-p256";
}

static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown OpenSSL error";
}

/* Classifies pk and computes the key id; rejects every other algorithm. */
static int key_adopt(struct key *k, EVP_PKEY *pk, bool priv, char *err)
{
	unsigned char *der = NULL;
	int n;

	memset(k, 0, sizeof(*k));
	if (EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519) {
		k->type = KEY_ED25519;
	} else if (EVP_PKEY_get_id(pk) == EVP_PKEY_EC) {
		char group[64] = "";
		size_t glen = 0;

		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), &glen) ||
		    strcmp(group, "prime256v1")) {
			ev_errf(err, "EC key on curve '%s': only P-256 (prime256v1) is supported",
				group);
			EVP_PKEY_free(pk);
			return -1;
		}
		k->type = KEY_ECDSA_P256;
	} else {
		ev_errf(err, "unsupported key algorithm '%s' (use Ed25519 or ECDSA P-256)",
			OBJ_nid2sn(EVP_PKEY_get_id(pk)));
		EVP_PKEY_free(pk);
		return -1;
	}
	n = i2d_PUBKEY(pk, &der);
	if (n <= 0) {
		ev_errf(err, "cannot encode the public key: %s", ossl_reason());
		EVP_PKEY_free(pk);
		return -1;
	}
	sha256_hex(der, n, k->keyid);
	OPENSSL_free(der);
	k->pk = pk;
	k->priv = priv;
	return 0;
}

int key_generate(struct key *k, enum key_type t, char *err)
{
	EVP_PKEY *pk = t == KEY_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
					: EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (!pk) {
		ev_errf(err, "key generation failed: %s", ossl_reason());
		return -1;
	}
	return key_adopt(k, pk, true, err);
}

int key_from_ed25519_seed(struct key *k, const unsigned char seed[32], char *err)
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);

	if (!pk) {
		ev_errf(err, "bad Ed25519 seed: %s", ossl_reason());
		return -1;
	}
	return key_adopt(k, pk, true, err);
}

/* Never prompt for a passphrase: an encrypted key is an error, not a tty dialogue. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Reads at most KEY_FILE_MAX bytes of an already opened file. */
static ssize_t read_key_fd(int fd, const char *path, char *buf, char *err)
{
	size_t got = 0;

	for (;;) {
		ssize_t n = read(fd, buf + got, KEY_FILE_MAX + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ev_errf(err, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		got += n;
		if (got > KEY_FILE_MAX) {
			ev_errf(err, "%s: larger than %d bytes, not a key file", path,
				KEY_FILE_MAX);
			return -1;
		}
	}
	buf[got] = 0;
	return got;
}

static int load_pem(struct key *k, const char *path, bool priv, bool root_only, char *err)
{
	char *buf = malloc(KEY_FILE_MAX + 2);
	struct stat st;
	ssize_t len;
	int fd, rc = -1;

	if (!buf) {
		ev_errf(err, "out of memory");
		return -1;
	}
	fd = ev_open_regular(path, err);
	if (fd < 0)
		goto out;
	/* fstat the descriptor we read from, so the check and the read agree. */
	if (fstat(fd, &st)) {
		ev_errf(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ev_errf(err, "%s: not a regular file", path);
		goto out;
	}
	if (priv && (st.st_mode & 077)) {
		ev_errf(err,
			"%s: private key has mode %04o; group and others must have no access "
			"(chmod 600, owned by the user that runs runwarden, not the job's user)",
			path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	/* The job never runs as root here; a key it owns it can read or swap. */
	if (root_only && st.st_uid != 0) {
		ev_errf(
		    err,
		    "%s: private key is owned by uid %u, not root: the job could read or replace "
		    "it (chown root:root and chmod 600)",
		    path, (unsigned)st.st_uid);
		goto out;
	}
	len = read_key_fd(fd, path, buf, err);
	if (len < 0)
		goto out;
	rc = priv ? -1 : key_load_public_pem(k, buf, len, err);
	if (priv) {
		BIO *bio = BIO_new_mem_buf(buf, (int)len);
		EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;

		BIO_free(bio);
		if (!pk)
			ev_errf(err, "%s: not an unencrypted PEM private key (%s)", path,
				ossl_reason());
		else
			rc = key_adopt(k, pk, true, err);
	} else if (rc) {
		/* Prefix the file name to what key_load_public_pem said. */
		char why[EV_ERRLEN];

		snprintf(why, sizeof(why), "%s", err);
		ev_errf(err, "%s: %s", path, why);
	}
out:
	if (fd >= 0)
		close(fd);
	OPENSSL_cleanse(buf, KEY_FILE_MAX + 2);
	free(buf);
	ERR_clear_error();
	return rc;
}

int key_load_private(struct key *k, const char *path, char *err)
{
	return load_pem(k, path, true, false, err);
}

int key_load_private_root(struct key *k, const char *path, char *err)
{
	return load_pem(k, path, true, true, err);
}

int key_load_public(struct key *k, const char *path, char *err)
{
	return load_pem(k, path, false, false, err);
}

int key_load_public_pem(struct key *k, const void *pem, size_t len, char *err)
{
	BIO *bio;
	EVP_PKEY *pk;

	if (len > KEY_FILE_MAX) {
		ev_errf(err, "public key text larger than %d bytes", KEY_FILE_MAX);
		return -1;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	if (!pk) {
		ev_errf(err, "not a PEM public key (-----BEGIN PUBLIC KEY-----): %s",
			ossl_reason());
		ERR_clear_error();
		return -1;
	}
	return key_adopt(k, pk, false, err);
}

void key_free(struct key *k)
{
	EVP_PKEY_free(k->pk);
	memset(k, 0, sizeof(*k));
}

int key_public_pem(const struct key *k, struct strbuf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (!bio || !PEM_write_bio_PUBKEY(bio, k->pk)) {
		BIO_free(bio);
		return -1;
	}
	n = BIO_get_mem_data(bio, &p);
	sb_add(out, p, n);
	BIO_free(bio);
	return 0;
}

int key_spki_der(const struct key *k, struct strbuf *out)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k->pk, &der);

	if (n <= 0)
		return -1;
	sb_add(out, der, n);
	OPENSSL_free(der);
	return 0;
}

static int write_all(const char *path, const char *data, size_t len, mode_t mode, bool overwrite,
		     char *err)
{
	int fd =
	    open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (overwrite ? O_TRUNC : O_EXCL),
		 mode);
	size_t off = 0;

	if (fd < 0) {
		if (errno == EEXIST)
			ev_errf(
			    err,
			    "%s already exists (refusing to overwrite a key; --force replaces it)",
			    path);
		else
			ev_errf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* An existing file keeps its mode under O_TRUNC; the umask narrows a new one. */
	if (fchmod(fd, mode)) {
		ev_errf(err, "%s: chmod: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ev_errf(err, "%s: write: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		off += n;
	}
	if (fsync(fd) || close(fd)) {
		ev_errf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int key_write_private(const struct key *k, const char *path, bool overwrite, char *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int rc;

	if (!bio || !PEM_write_bio_PrivateKey(bio, k->pk, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(bio);
		ev_errf(err, "cannot encode the private key: %s", ossl_reason());
		return -1;
	}
	n = BIO_get_mem_data(bio, &p);
	rc = write_all(path, p, n, 0600, overwrite, err);
	OPENSSL_cleanse(p, n);
	BIO_free(bio);
	return rc;
}

int key_write_public(const struct key *k, const char *path, bool overwrite, char *err)
{
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (key_public_pem(k, &sb)) {
		ev_errf(err, "cannot encode the public key: %s", ossl_reason());
		return -1;
	}
	rc = write_all(path, sb.buf, sb.len, 0644, overwrite, err);
	sb_release(&sb);
	return rc;
}

int key_sign(const struct key *k, const void *msg, size_t len, struct strbuf *sig, char *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = 0;
	int rc = -1;

	if (!ctx || !k->priv)
		goto out;
	/* Ed25519 is pure EdDSA: no digest; ECDSA hashes with SHA-256 and emits DER. */
	if (EVP_DigestSignInit(ctx, NULL, k->type == KEY_ED25519 ? NULL : EVP_sha256(), NULL,
			       k->pk) != 1)
		goto out;
	if (EVP_DigestSign(ctx, NULL, &siglen, msg, len) != 1)
		goto out;
	sb_grow(sig, siglen);
	if (EVP_DigestSign(ctx, (unsigned char *)sig->buf + sig->len, &siglen, msg, len) != 1)
		goto out;
	sig->len += siglen;
	sig->buf[sig->len] = 0;
	rc = 0;
out:
	if (rc)
		ev_errf(err, "signing failed: %s", ossl_reason());
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

int key_verify(const struct key *k, const void *msg, size_t len, const void *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;

	if (ctx && EVP_DigestVerifyInit(ctx, NULL, k->type == KEY_ED25519 ? NULL : EVP_sha256(),
					NULL, k->pk) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}
