/*
 * Byte encodings the evidence formats use (base64 in both alphabets, hex) and
 * the one-line error buffer every evidence parser fills in.
 */
#ifndef RW_EV_CODEC_H
#define RW_EV_CODEC_H
#include <stdbool.h>
#include <stddef.h>

#include "common/sha256.h" /* hex_encode, is_sha256_hex */
#include "common/strbuf.h"

/* Room for one error message ("where: why"). */
#define EV_ERRLEN 512

void ev_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Standard alphabet with padding, as DSSE and protobuf JSON emit it. */
void b64_encode(struct strbuf *out, const void *data, size_t len);

/*
 * Decodes standard or URL-safe base64, padded or not (one alphabet per
 * string). Strict: no whitespace, no stray '=', and the unused low bits of the
 * last character must be zero, so every byte string has exactly one accepted
 * encoding and a flipped character can never decode to the same bytes.
 * Returns a malloc'd buffer (NUL-terminated for convenience) and its length,
 * or NULL with err filled in.
 */
unsigned char *b64_decode(const char *s, size_t n, size_t *outlen, char *err);

/* Opens a regular file for reading; a FIFO, device or directory is refused
 * without blocking. Returns the descriptor, or -1 with err filled in and errno
 * saying why (ENOENT: no such file; EINVAL: not a regular file). */
int ev_open_regular(const char *path, char *err);
/*
 * Reads a whole file of at most cap bytes into out. A larger file is an error
 * ("larger than cap", errno EFBIG), so hostile input cannot make us allocate
 * without bound. errno as for ev_open_regular otherwise.
 */
int ev_read_file(const char *path, size_t cap, struct strbuf *out, char *err);
/* Writes data to path via a temporary file and rename, mode 0644. */
int ev_write_file(const char *path, const void *data, size_t len, char *err);
#endif
