/*
 * The one allocation family and the one SHA-256-to-hex: an allocation that cannot be met
 * stops the process with one line naming the size (never a NULL handed on), and every hex
 * hash is the same 64 lowercase digits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sha256.h"
#include "common/xalloc.h"

/* Runs fn in a child; returns its stderr and its wait status. */
static int in_child(void (*fn)(void), char *err, size_t cap)
{
	int p[2], st = 0;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 2);
		/* The sanitizer's own report on abort would bury the line under test. */
		signal(SIGABRT, SIG_DFL);
		fn();
		_exit(0);
	}
	close(p[1]);
	while ((n = read(p[0], err + got, cap - 1 - got)) > 0)
		got += n;
	err[got] = 0;
	close(p[0]);
	waitpid(pid, &st, 0);
	return st;
}

static void calloc_overflow(void)
{
	volatile size_t n = SIZE_MAX / 2;

	(void)xcalloc(n, 4);
}

static void reallocarray_overflow(void)
{
	volatile size_t n = SIZE_MAX / 8 + 1;

	(void)xreallocarray(NULL, n, 8);
}

static void test_overflow_dies_in_one_line(void **state)
{
	char err[4096];
	int st;

	(void)state;
	st = in_child(calloc_overflow, err, sizeof(err));
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	assert_non_null(strstr(err, "runwarden: out of memory ("));
	/* One line, and nothing else said. */
	assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
	assert_ptr_equal(strstr(err, "runwarden: "), err);
	st = in_child(reallocarray_overflow, err, sizeof(err));
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	assert_non_null(strstr(err, "runwarden: out of memory ("));
}

static void test_zero_sizes_are_blocks(void **state)
{
	void *p = xmalloc(0), *q = xcalloc(0, 8);

	(void)state;
	assert_non_null(p);
	assert_non_null(q);
	p = xrealloc(p, 0);
	assert_non_null(p);
	free(p);
	free(q);
}

static void test_strdup_family(void **state)
{
	char *a = xstrdup("abc"), *b = xstrndup("abcdef", 3), *c = xstrndup("ab", 10);

	(void)state;
	assert_string_equal(a, "abc");
	assert_string_equal(b, "abc");
	assert_string_equal(c, "ab");
	free(a);
	free(b);
	free(c);
}

static void test_sha256_hex(void **state)
{
	/* FIPS 180-2 test vector. */
	static const char abc[] =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char out[SHA256_HEX], streamed[SHA256_HEX];
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	(void)state;
	sha256_hex("abc", 3, out);
	assert_string_equal(out, abc);
	assert_true(is_sha256_hex(out));
	assert_non_null(md);
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	EVP_DigestUpdate(md, "a", 1);
	EVP_DigestUpdate(md, "bc", 2);
	sha256_final_hex(md, streamed);
	EVP_MD_CTX_free(md);
	assert_string_equal(streamed, abc);

	out[3] = 'A';
	assert_false(is_sha256_hex(out));
	assert_false(is_sha256_hex("abc"));
	out[3] = 'a';
	char longer[SHA256_HEX + 1];
	memcpy(longer, out, 64);
	longer[64] = '0';
	longer[65] = 0;
	assert_false(is_sha256_hex(longer));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_overflow_dies_in_one_line),
	    cmocka_unit_test(test_zero_sizes_are_blocks),
	    cmocka_unit_test(test_strdup_family),
	    cmocka_unit_test(test_sha256_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
