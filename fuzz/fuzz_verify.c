/*
 * libFuzzer harness for everything `runwarden verify` parses from untrusted
 * files: the DSSE envelope / Sigstore bundle reader, base64, the statement
 * reader, the event-log chain checker, and PEM public keys. The first input
 * byte picks the parser; the rest is the file. Also checks that the chain
 * checker gives the same verdict whether fed at once or byte by byte.
 * Build and run: make fuzz (FUZZ_SECONDS=N).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/chain.h"
#include "evidence/codec.h"
#include "evidence/dsse.h"
#include "evidence/keys.h"
#include "evidence/statement.h"

static struct key fixed_key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char seed[32];
	char err[EV_ERRLEN];

	(void)argc;
	(void)argv;
	/* The REFERENCE.md vector key, so seeds can carry real signatures. */
	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)i;
	if (key_from_ed25519_seed(&fixed_key, seed, err))
		abort();
	return 0;
}

static void fuzz_envelope(const char *p, size_t n)
{
	char err[EV_ERRLEN];
	struct dsse_env e;
	struct stmt_view v;

	if (dsse_parse(p, n, &e, err))
		return;
	dsse_verify(&e, &fixed_key, err);
	/* Production reads statements only after the signature verified; the
	 * reader must still survive anything. */
	if (!statement_read(e.payload, e.payload_len, &v, err))
		statement_view_release(&v);
	dsse_env_free(&e);
}

static void fuzz_chain(const char *p, size_t n)
{
	struct chain a, b;
	int ra, rb = 0;

	chain_init(&a, exec_summary_line, NULL);
	chain_init(&b, NULL, NULL);
	struct exec_summary x;

	exec_summary_init(&x);
	a.ctx = &x;
	ra = chain_feed(&a, p, n);
	if (!ra)
		ra = chain_finish(&a);
	for (size_t i = 0; i < n && !rb; i++)
		rb = chain_feed(&b, p + i, 1);
	if (!rb)
		rb = chain_finish(&b);
	if (ra != rb || (ra && (a.where != b.where || strcmp(a.code, b.code)))) {
		fprintf(stderr, "chunking changed the verdict: %d/%d %s/%s\n", ra, rb, a.err,
			b.err);
		abort();
	}
	if (!ra && strcmp(a.sha256, b.sha256))
		abort();
	exec_summary_release(&x);
	chain_release(&a);
	chain_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[EV_ERRLEN];
	struct stmt_view v;
	struct key k;
	size_t n;
	unsigned char *d;

	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t len = size - 1;

	switch (data[0] % 5) {
	case 0:
		fuzz_envelope(p, len);
		break;
	case 1:
		fuzz_chain(p, len);
		break;
	case 2:
		if (!statement_read((const unsigned char *)p, len, &v, err))
			statement_view_release(&v);
		break;
	case 3:
		d = b64_decode(p, len, &n, err);
		if (d) {
			/* round trip: canonical encodings re-encode to themselves modulo
			 * alphabet/padding */
			struct strbuf sb = STRBUF_INIT;

			b64_encode(&sb, d, n);
			size_t m;
			unsigned char *d2 = b64_decode(sb.buf, sb.len, &m, err);

			if (!d2 || m != n || memcmp(d, d2, n))
				abort();
			free(d2);
			sb_release(&sb);
			free(d);
		}
		break;
	case 4:
		if (!key_load_public_pem(&k, p, len, err))
			key_free(&k);
		break;
	}
	return 0;
}
