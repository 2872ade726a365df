/*
 * Reads another process's memory the ways a credential dumper does (the
 * tj-actions technique reads the runner's memory). A test client: it prints
 * what it read, so a test can show the read really happened.
 *
 *   memread hold SECRET          keep SECRET in memory; print "PID ADDR LEN", wait for EOF on stdin
 *   memread vm PID ADDR LEN      process_vm_readv
 *   memread peek PID ADDR LEN    PTRACE_ATTACH, PTRACE_PEEKDATA word by word, PTRACE_DETACH
 *   memread seize PID            PTRACE_SEIZE, PTRACE_DETACH
 *   memread mem PID ADDR LEN     pread of /proc/PID/mem
 *   memread environ PID          read of /proc/PID/environ
 *   memread vmwrite PID ADDR TEXT   process_vm_writev of TEXT at ADDR
 *   memread poke PID ADDR TEXT      PTRACE_ATTACH, PTRACE_POKEDATA word by word, PTRACE_DETACH
 *   memread memwrite PID ADDR TEXT  pwrite of /proc/PID/mem
 * hold prints "held: SECRET" (as it then is) at EOF, so a test sees whether a write landed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int hold(const char *secret)
{
	size_t n = strlen(secret);
	char *buf = malloc(n + 1), c;

	if (!buf)
		return 1;
	memcpy(buf, secret, n + 1);
	printf("%d %lu %zu\n", (int)getpid(), (unsigned long)buf, n);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	printf("held: %s\n", buf);
	free(buf);
	return 0;
}

static int out(const char *buf, size_t n)
{
	fwrite(buf, 1, n, stdout);
	putchar('\n');
	return 0;
}

static int vm(pid_t pid, unsigned long addr, size_t len)
{
	char *buf = malloc(len);
	struct iovec l = {buf, len}, r = {(void *)addr, len};
	ssize_t n = buf ? process_vm_readv(pid, &l, 1, &r, 1, 0) : -1;

	if (n < 0) {
		perror("memread: process_vm_readv");
		return 1;
	}
	out(buf, n);
	free(buf);
	return 0;
}

static int peek(pid_t pid, unsigned long addr, size_t len)
{
	char *buf = calloc(1, len + sizeof(long));
	int st;

	if (!buf || ptrace(PTRACE_ATTACH, pid, 0, 0)) {
		perror("memread: PTRACE_ATTACH");
		return 1;
	}
	if (waitpid(pid, &st, 0) < 0) {
		perror("memread: waitpid");
		return 1;
	}
	for (size_t off = 0; off < len; off += sizeof(long)) {
		long w;

		errno = 0;
		w = ptrace(PTRACE_PEEKDATA, pid, (void *)(addr + off), 0);
		if (errno) {
			perror("memread: PTRACE_PEEKDATA");
			return 1;
		}
		memcpy(buf + off, &w, sizeof(w));
	}
	ptrace(PTRACE_DETACH, pid, 0, 0);
	out(buf, len);
	free(buf);
	return 0;
}

static int seize(pid_t pid)
{
	if (ptrace(PTRACE_SEIZE, pid, 0, 0)) {
		perror("memread: PTRACE_SEIZE");
		return 1;
	}
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return 0;
}

static int procfile(const char *name, pid_t pid, unsigned long addr, size_t len)
{
	char path[64], *buf = malloc(len);
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || !buf) {
		perror("memread: open");
		return 1;
	}
	n = pread(fd, buf, len, (off_t)addr);
	if (n < 0) {
		perror("memread: pread");
		return 1;
	}
	out(buf, n);
	close(fd);
	free(buf);
	return 0;
}

static int vmwrite(pid_t pid, unsigned long addr, const char *text)
{
	struct iovec l = {(void *)text, strlen(text)}, r = {(void *)addr, strlen(text)};

	if (process_vm_writev(pid, &l, 1, &r, 1, 0) < 0) {
		perror("memread: process_vm_writev");
		return 1;
	}
	return 0;
}

static int poke(pid_t pid, unsigned long addr, const char *text)
{
	size_t len = strlen(text);
	int st;

	if (ptrace(PTRACE_ATTACH, pid, 0, 0)) {
		perror("memread: PTRACE_ATTACH");
		return 1;
	}
	if (waitpid(pid, &st, 0) < 0) {
		perror("memread: waitpid");
		return 1;
	}
	/* Whole words only: what is poked past the text is the text's own NUL and zeros. */
	for (size_t off = 0; off < len; off += sizeof(long)) {
		long w = 0;

		memcpy(&w, text + off, len - off < sizeof(w) ? len - off : sizeof(w));
		if (ptrace(PTRACE_POKEDATA, pid, (void *)(addr + off), (void *)w)) {
			perror("memread: PTRACE_POKEDATA");
			return 1;
		}
	}
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return 0;
}

static int memwrite(pid_t pid, unsigned long addr, const char *text)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		perror("memread: open");
		return 1;
	}
	if (pwrite(fd, text, strlen(text), (off_t)addr) < 0) {
		perror("memread: pwrite");
		return 1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "vmwrite"))
		return vmwrite(atoi(argv[2]), strtoul(argv[3], NULL, 0), argv[4]);
	if (argc == 5 && !strcmp(argv[1], "poke"))
		return poke(atoi(argv[2]), strtoul(argv[3], NULL, 0), argv[4]);
	if (argc == 5 && !strcmp(argv[1], "memwrite"))
		return memwrite(atoi(argv[2]), strtoul(argv[3], NULL, 0), argv[4]);
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return hold(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "seize"))
		return seize(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "environ"))
		return procfile("environ", atoi(argv[2]), 0, 65536);
	if (argc == 5) {
		pid_t pid = atoi(argv[2]);
		unsigned long addr = strtoul(argv[3], NULL, 0);
		size_t len = strtoul(argv[4], NULL, 0);

		if (!strcmp(argv[1], "vm"))
			return vm(pid, addr, len);
		if (!strcmp(argv[1], "peek"))
			return peek(pid, addr, len);
		if (!strcmp(argv[1], "mem"))
			return procfile("mem", pid, addr, len);
	}
	fprintf(stderr, "usage: memread hold SECRET | vm|peek|mem PID ADDR LEN | seize|environ PID "
			"| vmwrite|poke|memwrite PID ADDR TEXT\n");
	return 2;
}
