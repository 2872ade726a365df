/* SHA-256 to hex (see sha256.h), on OpenSSL's EVP digests. */
#include "common/sha256.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

/* A digest OpenSSL cannot compute (no provider, no memory) leaves nothing honest to write:
 * a made-up hash in a chain or a policy pin would be worse than stopping. */
static void die_digest(void)
{
	fputs("runwarden: SHA-256: OpenSSL could not compute the digest\n", stderr);
	abort();
}

void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = 0;
}

void sha256_hex(const void *data, size_t len, char out[SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		die_digest();
	hex_encode(md, 32, out);
}

void sha256_final_hex(EVP_MD_CTX *md, char out[SHA256_HEX])
{
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(md, dig, &n) != 1 || n != 32)
		die_digest();
	hex_encode(dig, 32, out);
}

bool is_sha256_hex(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == 0;
}
