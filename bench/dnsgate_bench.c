/*
 * Micro-benchmark for the DNS gate (run by bench/dnsgate.sh): the latency (p50, p99) and
 * throughput a client sees querying dnsmasq directly on loopback, and through the gate in
 * front of it, with the ratios. The gate runs in its own thread with an allow-all policy and
 * a pin callback that does nothing, so the figures are the gate's own cost (parse, decide,
 * forward, match, walk the answer, pin table, release), not a kernel map update's.
 *
 *   dnsgate_bench UPSTREAM_ADDR UPSTREAM_PORT NAME [QUERIES [WINDOW [SECONDS]]]
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate/dnsgate.h"

static atomic_int stop;
static atomic_ulong pins;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum dnsgate_verdict allow_all(void *ctx, const char *qname, int qtype,
				      const struct dnsgate_client *who, struct dnsgate_decision *d)
{
	(void)ctx, (void)qname, (void)qtype, (void)who, (void)d;
	return DNSGATE_ALLOW;
}

static int pin_noop(void *ctx, const char *q, const char *o, int family, const void *addr,
		    uint32_t ttl)
{
	(void)ctx, (void)q, (void)o, (void)family, (void)addr, (void)ttl;
	atomic_fetch_add(&pins, 1);
	return 0;
}

static void *gate_loop(void *arg)
{
	struct dnsgate *g = arg;

	while (!atomic_load(&stop))
		dnsgate_poll(g, 50);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int client(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	inet_pton(AF_INET, addr, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* Sequential queries, one at a time: per-query round trip in ns into lat[]. Returns failures. */
static int latency(const char *addr, uint16_t port, const char *name, int n, uint64_t *lat)
{
	uint8_t q[512], r[4096];
	int qn = res_mkquery(ns_o_query, name, ns_c_in, ns_t_a, NULL, 0, NULL, q, sizeof(q));
	int fd = client(addr, port), fails = 0;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		q[0] = (uint8_t)(i >> 8);
		q[1] = (uint8_t)i;
		send(fd, q, (size_t)qn, 0);
		if (poll(&pfd, 1, 2000) != 1 || recv(fd, r, sizeof(r), 0) < 12 || r[0] != q[0] ||
		    r[1] != q[1] || (r[3] & 0x0f) != 0) {
			fails++;
			lat[i] = 2000000000ull;
			continue;
		}
		lat[i] = now_ns() - t0;
	}
	close(fd);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
	return fails;
}

/* Keeps `window` queries outstanding for `secs` seconds; answers per second. */
static double throughput(const char *addr, uint16_t port, const char *name, int window, double secs)
{
	uint8_t q[512], r[4096];
	int qn = res_mkquery(ns_o_query, name, ns_c_in, ns_t_a, NULL, 0, NULL, q, sizeof(q));
	int fd = client(addr, port);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9), answered = 0;
	uint16_t id = 0;
	int outstanding = 0;

	while (now_ns() < end) {
		while (outstanding < window) {
			q[0] = (uint8_t)(id >> 8);
			q[1] = (uint8_t)id++;
			send(fd, q, (size_t)qn, 0);
			outstanding++;
		}
		if (poll(&pfd, 1, 200) != 1) {
			outstanding = 0; /* lost ones: refill the window */
			continue;
		}
		while (recv(fd, r, sizeof(r), MSG_DONTWAIT) >= 12) {
			answered++;
			outstanding--;
		}
	}
	close(fd);
	return (double)answered / ((double)(now_ns() - t0) / 1e9);
}

int main(int argc, char **argv)
{
	const char *up, *name;
	uint16_t port;
	int n = 20000, window = 32;
	double secs = 3;
	uint64_t *direct, *gated;
	struct dnsgate *g;
	char err[256];
	pthread_t th;

	if (argc < 4) {
		fprintf(stderr, "usage: %s UPSTREAM_ADDR PORT NAME [QUERIES [WINDOW [SECONDS]]]\n",
			argv[0]);
		return 2;
	}
	up = argv[1];
	port = (uint16_t)atoi(argv[2]);
	name = argv[3];
	if (argc > 4)
		n = atoi(argv[4]);
	if (argc > 5)
		window = atoi(argv[5]);
	if (argc > 6)
		secs = atof(argv[6]);

	struct dnsgate_config cfg = {
	    .listen = "127.0.0.1",
	    .upstream = up,
	    .upstream_port = port,
	    .max_inflight = 1024,
	    .decide = allow_all,
	    .pin = pin_noop,
	};
	g = dnsgate_new(&cfg, err, sizeof(err));
	if (!g) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	pthread_create(&th, NULL, gate_loop, g);

	direct = calloc((size_t)n, sizeof(*direct));
	gated = calloc((size_t)n, sizeof(*gated));
	/* Warm both paths (dnsmasq, the gate, the kernel's socket caches). */
	latency(up, port, name, n / 10 + 1, direct);
	latency("127.0.0.1", dnsgate_port(g), name, n / 10 + 1, gated);

	int fd_direct = latency(up, port, name, n, direct);
	int fd_gated = latency("127.0.0.1", dnsgate_port(g), name, n, gated);
	double qps_direct = throughput(up, port, name, window, secs);
	double qps_gated = throughput("127.0.0.1", dnsgate_port(g), name, window, secs);

	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	struct dnsgate_stats st;

	dnsgate_stats(g, &st);
	dnsgate_free(g);

	double d50 = (double)direct[n / 2] / 1e3, d99 = (double)direct[n * 99 / 100] / 1e3;
	double g50 = (double)gated[n / 2] / 1e3, g99 = (double)gated[n * 99 / 100] / 1e3;

	printf("dns gate micro-benchmark: %d sequential queries for %s A, then %.0f s with %d "
	       "in flight\n",
	       n, name, secs, window);
	printf("%-22s %10s %10s %12s %6s\n", "", "p50 (us)", "p99 (us)", "queries/s", "fails");
	printf("%-22s %10.1f %10.1f %12.0f %6d\n", "dnsmasq direct", d50, d99, qps_direct,
	       fd_direct);
	printf("%-22s %10.1f %10.1f %12.0f %6d\n", "through the gate", g50, g99, qps_gated,
	       fd_gated);
	printf("%-22s %10.1f %10.1f\n", "added by the gate", g50 - d50, g99 - d99);
	printf("%-22s %10.2f %10.2f %12.2f\n", "ratio gate/direct", g50 / d50, g99 / d99,
	       qps_gated / qps_direct);
	printf("gate: %llu forwarded, %llu servfail, %llu pins, %llu ignored upstream packets\n",
	       (unsigned long long)st.forwarded, (unsigned long long)st.servfail,
	       (unsigned long long)st.pins, (unsigned long long)st.upstream_ignored);
	free(direct);
	free(gated);
	return fd_direct || fd_gated ? 1 : 0;
}
