/*
 * Opens a file through the 32-bit system call ABI (int 0x80, i386 open) from
 * a 64-bit process: the per-syscall tracepoints do not fire for such calls, so
 * this is how a job would read a credential unseen. Linked static and not PIE
 * so that the path buffer has an address below 4 GiB, which the 32-bit call
 * can pass.
 *
 *   static_compat_open PATH
 *
 * Exit 0: opened; 3: refused with ENOSYS; 4: refused with EPERM; 1: other error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

static char path[4096];

int main(int argc, char **argv)
{
#if defined(__x86_64__)
	long ret;

	if (argc != 2 || strlen(argv[1]) >= sizeof(path)) {
		fprintf(stderr, "usage: static_compat_open PATH\n");
		return 2;
	}
	strcpy(path, argv[1]);
	/* i386: eax = 5 (open), ebx = path, ecx = flags (O_RDONLY). */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(5L), "b"(path), "c"(0L) : "memory");
	if (ret >= 0) {
		printf("fd %ld\n", ret);
		return 0;
	}
	printf("error %s\n", strerror((int)-ret));
	return ret == -ENOSYS ? 3 : ret == -EPERM ? 4 : 1;
#else
	(void)argc;
	(void)argv;
	fprintf(stderr, "static_compat_open: x86-64 only\n");
	return 2;
#endif
}
