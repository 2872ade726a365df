/*
 * SHA-256 as the evidence and the policy name it: 64 lowercase hex digits. One place turns a
 * digest into text, so every hash runwarden writes has the same form.
 */
#ifndef RW_SHA256_H
#define RW_SHA256_H
#include <stdbool.h>
#include <stddef.h>

/* 64 hex digits and their NUL. */
#define SHA256_HEX 65

struct evp_md_ctx_st;

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* Hex SHA-256 of a byte range. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX]);
/* Finishes a digest context set up for SHA-256 (EVP_DigestInit_ex) into hex. */
void sha256_final_hex(struct evp_md_ctx_st *md, char out[SHA256_HEX]);
/* True when s is exactly 64 lowercase hex digits. */
bool is_sha256_hex(const char *s);

#endif
