/*
 * Opens PATH through io_uring (IORING_OP_OPENAT), a path that never passes
 * the open(2)/openat(2) syscall tracepoints. Prints the fd or the error.
 *
 *   uring_open PATH
 */
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: uring_open PATH\n");
		return 2;
	}
	if (io_uring_queue_init(4, &ring, 0)) {
		perror("uring_open: setup");
		return 1;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_openat(sqe, AT_FDCWD, argv[1], O_RDONLY, 0);
	io_uring_submit(&ring);
	if (io_uring_wait_cqe(&ring, &cqe)) {
		perror("uring_open: wait");
		return 1;
	}
	rc = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	if (rc < 0) {
		printf("%s\n", strerror(-rc));
		return 1;
	}
	printf("fd %d\n", rc);
	close(rc);
	return 0;
}
