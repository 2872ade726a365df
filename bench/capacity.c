/*
 * Event generator for the capacity benchmark: THREADS threads each re-connect
 * one UDP socket to 127.0.0.1:PORT, paced to RATE connects per second in all,
 * for SECONDS. Each connect() is one connect record (the cgroup connect4 hook)
 * and sends no packet, so the figure is the collector's, not the network's.
 * RATE 0 means as fast as possible (the bare ceiling).
 *
 *   capacity THREADS RATE SECONDS PORT [MARKDIR]
 *
 * Prints "capacity: calls N elapsed S" on stderr. With MARKDIR it creates
 * MARKDIR/start just before the first connect and MARKDIR/end after the last,
 * then idles a second, so a sampler outside can read runwarden's CPU time over
 * exactly the generated events (start-up and tear-down left out).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct gen {
	pthread_t t;
	double rate; /* connects per second for this thread; 0: unpaced */
	double seconds;
	struct sockaddr_in to;
	unsigned long calls;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct gen *g = arg;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	double t0 = now(), t;

	if (fd < 0) {
		perror("capacity: socket");
		exit(1);
	}
	/* Work in 1 ms ticks: connect as many times as the schedule owes, then sleep. */
	while ((t = now()) - t0 < g->seconds) {
		unsigned long owed =
		    g->rate > 0 ? (unsigned long)((t - t0) * g->rate) : g->calls + 1000;

		/* Behind schedule it catches up, but never past the end (checked every 1024). */
		while (g->calls < owed && ((g->calls & 1023) || now() - t0 < g->seconds)) {
			if (connect(fd, (struct sockaddr *)&g->to, sizeof(g->to)) &&
			    errno != EPERM) {
				perror("capacity: connect");
				exit(1);
			}
			g->calls++;
		}
		if (g->rate > 0) {
			struct timespec ms = {0, 1000000};

			nanosleep(&ms, NULL);
		}
	}
	close(fd);
	return NULL;
}

static void mark(const char *dir, const char *name)
{
	char path[4096];
	int fd;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("capacity: mark");
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	int n;
	double rate, secs, t0;
	unsigned long total = 0;
	struct gen *g;

	const char *marks = argc == 6 ? argv[5] : NULL;

	if ((argc != 5 && argc != 6) || (n = atoi(argv[1])) < 1 || n > 64) {
		fprintf(stderr, "usage: capacity THREADS(1-64) RATE SECONDS PORT [MARKDIR]\n");
		return 2;
	}
	rate = atof(argv[2]);
	secs = atof(argv[3]);
	g = calloc(n, sizeof(*g));
	if (!g)
		return 1;
	mark(marks, "start");
	t0 = now();
	for (int i = 0; i < n; i++) {
		g[i].rate = rate / n;
		g[i].seconds = secs;
		g[i].to.sin_family = AF_INET;
		g[i].to.sin_port = htons(atoi(argv[4]));
		g[i].to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (pthread_create(&g[i].t, NULL, run, &g[i])) {
			fprintf(stderr, "capacity: pthread_create failed\n");
			return 1;
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_join(g[i].t, NULL);
		total += g[i].calls;
	}
	fprintf(stderr, "capacity: calls %lu elapsed %.3f\n", total, now() - t0);
	mark(marks, "end");
	if (marks)
		sleep(1); /* the collector drains what the ring still holds */
	free(g);
	return 0;
}
