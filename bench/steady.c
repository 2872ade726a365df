/*
 * A steady workload for the memory benchmark (bench/rss.py): for SECONDS, RATE
 * iterations per second, each one DNS question for "nK.steady.test" to a
 * resolver this program runs on 127.0.0.213:53 (it answers 127.1.x.y, x.y = K mod 65,536), a UDP
 * connect to that address, and an open of /etc/hostname; every 20th iteration
 * also a fork+exec of /bin/true. K cycles through DISTINCT names, so every
 * table the collector keeps (process table, DNS questions and names,
 * destinations) sees new keys all along. Loopback only.
 *
 *   steady SECONDS RATE DISTINCT [RESOLVER]
 *
 * RESOLVER: the loopback address to run the resolver on (default 127.0.0.213), so that two
 * runs can share the machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESOLVER "127.0.0.213"

static int srv;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* K of a question for "nK.steady.test" (0 for any other name). */
static unsigned asked_k(const uint8_t *b, size_t n)
{
	unsigned k = 0;

	if (n < 14 || b[13] != 'n')
		return 0;
	for (size_t i = 14; i < n && i < 13u + b[12] && b[i] >= '0' && b[i] <= '9'; i++)
		k = k * 10 + (b[i] - '0');
	return k;
}

/* Answers every question with one A record: 127.1.<K high>.<K low>, from the name rather than
 * the id, which the DNS gate replaces with a random one on the way: the answer is the address
 * the workload then connects to, and the set of addresses is the same in every run (an
 * answer made from the random id fills the collector's address table by coupon collecting,
 * which takes half an hour when the gate lets a few hundred answers a second through). */
static void *resolver(void *arg)
{
	uint8_t b[512 + 16];
	(void)arg;

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(srv, b, 512, 0, (struct sockaddr *)&from, &fl);
		unsigned k = n >= 12 ? asked_k(b, (size_t)n) : 0;
		const uint8_t ans[] = {
		    0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 1, (k >> 8) & 0xff, k & 0xff};

		if (n < 12)
			continue;
		b[2] = 0x81; /* QR, RD */
		b[3] = 0x80; /* RA, NOERROR */
		b[6] = 0;
		b[7] = 1; /* ANCOUNT */
		memcpy(b + n, ans, sizeof(ans));
		sendto(srv, b, n + sizeof(ans), 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

/* A question for nK.steady.test, type A, id K & 0xffff. */
static size_t question(uint8_t *b, unsigned k)
{
	char label[16];
	int ll = snprintf(label, sizeof(label), "n%u", k);
	size_t n = 12;

	memset(b, 0, 12);
	b[0] = (k >> 8) & 0xff;
	b[1] = k & 0xff;
	b[2] = 0x01; /* RD */
	b[5] = 1;    /* QDCOUNT */
	b[n++] = (uint8_t)ll;
	memcpy(b + n, label, ll);
	n += ll;
	memcpy(b + n, "\6steady\4test\0\0\1\0\1", 17);
	return n + 17;
}

int main(int argc, char **argv)
{
	struct sockaddr_in rs = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct timeval tv = {0, 200000};
	double secs, rate, t0;
	unsigned distinct, i = 0;
	pthread_t t;
	int cl;

	const char *raddr = argc == 5 ? argv[4] : RESOLVER;

	if ((argc != 4 && argc != 5) || (secs = atof(argv[1])) <= 0 ||
	    (rate = atof(argv[2])) <= 0 || (distinct = (unsigned)atoi(argv[3])) < 1) {
		fprintf(stderr, "usage: steady SECONDS RATE DISTINCT [RESOLVER]\n");
		return 2;
	}
	if (inet_pton(AF_INET, raddr, &rs.sin_addr) != 1 ||
	    (ntohl(rs.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "steady: %s: not a 127.x.y.z address\n", raddr);
		return 2;
	}
	srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (srv < 0 || bind(srv, (struct sockaddr *)&rs, sizeof(rs))) {
		fprintf(stderr, "steady: bind %s:53: %s\n", raddr, strerror(errno));
		return 1;
	}
	pthread_create(&t, NULL, resolver, NULL);
	cl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t0 = now();
	while (now() - t0 < secs) {
		unsigned long owed = (unsigned long)((now() - t0) * rate);

		/* Behind schedule (a slow resolver, a busy machine) it catches up, but never past
		 * the end: the job's length is what the benchmark is about. */
		for (; i < owed && now() - t0 < secs; i++) {
			unsigned k = i % distinct;
			uint8_t q[64], a[600];
			struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
			size_t qn = question(q, k);
			int u, fd;

			sendto(cl, q, qn, 0, (struct sockaddr *)&rs, sizeof(rs));
			if (recv(cl, a, sizeof(a), 0) < 0 && errno != EAGAIN)
				perror("steady: recv");
			to.sin_addr.s_addr = htonl(0x7f010000u | (k & 0xffff));
			u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (u >= 0) {
				connect(u, (struct sockaddr *)&to, sizeof(to));
				close(u);
			}
			fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				close(fd);
			if (i % 20 == 0) {
				pid_t p = fork();

				if (p == 0) {
					execl("/bin/true", "true", (char *)NULL);
					_exit(127);
				}
				if (p > 0)
					waitpid(p, NULL, 0);
			}
		}
		usleep(1000);
	}
	fprintf(stderr, "steady: iterations %u elapsed %.3f\n", i, now() - t0);
	return 0;
}
