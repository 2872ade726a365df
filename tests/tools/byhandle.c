/*
 * Opens a file by handle (open_by_handle_at), without naming it: the handle
 * is made once (elsewhere, or guessed: for many filesystems it is the inode
 * and generation numbers) and the file opened later through any fd on the
 * same filesystem.
 *
 *   byhandle get PATH            print "TYPE HEX" of PATH's handle
 *   byhandle open DIR TYPE HEX   open the file by handle (DIR: any directory on its
 *                                filesystem) and copy it to stdout
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HANDLE_MAX 128

static int get(const char *path)
{
	struct file_handle *h = malloc(sizeof(*h) + HANDLE_MAX);
	int mnt;

	if (!h)
		return 1;
	h->handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(AT_FDCWD, path, h, &mnt, 0)) {
		perror("byhandle: name_to_handle_at");
		return 1;
	}
	printf("%d ", h->handle_type);
	for (unsigned i = 0; i < h->handle_bytes; i++)
		printf("%02x", h->f_handle[i]);
	putchar('\n');
	free(h);
	return 0;
}

static int open_it(const char *dir, int type, const char *hex)
{
	size_t n = strlen(hex) / 2;
	struct file_handle *h = malloc(sizeof(*h) + HANDLE_MAX);
	char buf[4096];
	ssize_t r;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd;

	if (!h || n > HANDLE_MAX || dfd < 0) {
		fprintf(stderr, "byhandle: bad handle or directory\n");
		return 1;
	}
	h->handle_type = type;
	h->handle_bytes = n;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		h->f_handle[i] = v;
	}
	fd = open_by_handle_at(dfd, h, O_RDONLY);
	if (fd < 0) {
		perror("byhandle: open_by_handle_at");
		return 1;
	}
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, r, stdout);
	close(fd);
	close(dfd);
	free(h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "get"))
		return get(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "open"))
		return open_it(argv[2], atoi(argv[3]), argv[4]);
	fprintf(stderr, "usage: byhandle get PATH | byhandle open DIR TYPE HEX\n");
	return 2;
}
