/*
 * Connects over TCP through io_uring (IORING_OP_CONNECT), a path that never
 * passes the connect(2) syscall tracepoints. Prints "ok" or the error.
 *
 *   uring_connect ADDR PORT     (IPv4 or IPv6 address)
 */
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int s, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: uring_connect ADDR PORT\n");
		return 2;
	}
	if (strchr(argv[1], ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(atoi(argv[2]));
		inet_pton(AF_INET6, argv[1], &a->sin6_addr);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(atoi(argv[2]));
		inet_pton(AF_INET, argv[1], &a->sin_addr);
		sl = sizeof(*a);
	}
	s = socket(ss.ss_family, SOCK_STREAM, 0);
	if (s < 0 || io_uring_queue_init(4, &ring, 0)) {
		perror("uring_connect: setup");
		return 1;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_connect(sqe, s, (struct sockaddr *)&ss, sl);
	io_uring_submit(&ring);
	if (io_uring_wait_cqe(&ring, &cqe)) {
		perror("uring_connect: wait");
		return 1;
	}
	rc = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	if (rc < 0) {
		printf("%s\n", strerror(-rc));
		return 1;
	}
	printf("ok\n");
	close(s);
	return 0;
}
