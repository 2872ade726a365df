/*
 * Syscall storm for overhead benchmarks: N loopback TCP connects (to a
 * listener this program runs in a thread), M execs of /bin/true, K opens of
 * an ordinary file. Loopback only.
 *
 *   storm CONNECTS EXECS OPENS
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	pthread_t t;
	int one = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: storm CONNECTS EXECS OPENS\n");
		return 2;
	}
	int nc = atoi(argv[1]), ne = atoi(argv[2]), no = atoi(argv[3]);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	lsock = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) || listen(lsock, 4096) ||
	    getsockname(lsock, (struct sockaddr *)&sa, &sl)) {
		perror("storm: listen");
		return 1;
	}
	pthread_create(&t, NULL, acceptor, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < nc; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);

		/* SO_LINGER 0: close with RST so 20k connects leave no TIME_WAIT. */
		struct linger lg = {1, 0};
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
			perror("storm: connect");
			return 1;
		}
		close(s);
	}
	for (int i = 0; i < ne; i++) {
		pid_t p = fork();
		int st;

		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		waitpid(p, &st, 0);
	}
	for (int i = 0; i < no; i++) {
		int fd = open("/etc/hostname", O_RDONLY);

		if (fd >= 0)
			close(fd);
	}
	/* The workload's own time, without any tracer's start-up and tear-down. */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "storm: elapsed %.6f\n",
		(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
