/*
 * Per-connect latency: N TCP connects to a loopback listener this program
 * runs, each timed around connect(2). Prints p50 and p99 in microseconds.
 *
 *   connect_lat N ADDR
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lsock;

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(lsock, NULL, NULL);

		if (c >= 0)
			close(c);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	pthread_t t;
	int one = 1;

	if (argc != 3 || inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: connect_lat N ADDR\n");
		return 2;
	}
	int n = atoi(argv[1]);
	double *us = calloc(n, sizeof(*us));

	lsock = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!us || bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) || listen(lsock, 4096) ||
	    getsockname(lsock, (struct sockaddr *)&sa, &sl)) {
		perror("connect_lat: listen");
		return 1;
	}
	pthread_create(&t, NULL, acceptor, NULL);
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		struct linger lg = {1, 0};
		int s = socket(AF_INET, SOCK_STREAM, 0);

		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
			perror("connect_lat: connect");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
		close(s);
	}
	qsort(us, n, sizeof(*us), cmp);
	printf("%.2f %.2f\n", us[n / 2], us[(int)(n * 0.99)]);
	return 0;
}
