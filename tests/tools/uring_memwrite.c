/*
 * Writes another process's memory through io_uring without a descriptor ever
 * reaching the process's table: /proc/PID/mem opened into a fixed-file slot
 * (a direct descriptor), then a linked write through that slot. A test client.
 *
 *   uring_memwrite PID ADDR TEXT
 */
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char path[64];
	int rc = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: uring_memwrite PID ADDR TEXT\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", atoi(argv[1]));
	/* liburing returns -errno and leaves errno alone. */
	rc = io_uring_queue_init(4, &ring, 0);
	if (rc < 0 || (rc = io_uring_register_files_sparse(&ring, 1)) < 0) {
		fprintf(stderr, "uring_memwrite: io_uring: %s\n", strerror(-rc));
		return 1;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_openat_direct(sqe, AT_FDCWD, path, O_RDWR, 0, 0);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_write(sqe, 0, argv[3], strlen(argv[3]), strtoull(argv[2], NULL, 0));
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_submit(&ring);
	for (int i = 0; i < 2; i++) {
		if (io_uring_wait_cqe(&ring, &cqe) < 0)
			return 1;
		if (cqe->res < 0) {
			fprintf(stderr, "uring_memwrite: step %d: %s\n", i, strerror(-cqe->res));
			rc = 1;
		}
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
	return rc;
}
