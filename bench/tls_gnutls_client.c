/*
 * GnuTLS client for bench/tls_loop.py: one keep-alive HTTPS connection through
 * libgnutls.so.30 (the library apt's https method and git's libcurl-gnutls use), so every
 * request passes the gnutls_record_send/gnutls_record_recv probes.
 *
 *   tls_gnutls_client CAFILE ADDR PORT loop N      N GETs of a 2-byte body
 *   tls_gnutls_client CAFILE ADDR PORT down BYTES  one GET of a BYTES-byte body
 *   tls_gnutls_client CAFILE ADDR PORT up BYTES    one POST of a BYTES-byte body
 *
 * Prints "WALL CPU": seconds of wall time and of this process's CPU time (user + system) for
 * the measured part, after the handshake and one warm-up request.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static void die(const char *what, int rc)
{
	fprintf(stderr, "tls_gnutls_client: %s: %s\n", what, rc < 0 ? gnutls_strerror(rc) : "");
	exit(1);
}

static double secs(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void send_all(gnutls_session_t s, const char *p, size_t n)
{
	while (n) {
		ssize_t w = gnutls_record_send(s, p, n > CHUNK ? CHUNK : n);

		if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
			continue;
		if (w <= 0)
			die("send", (int)w);
		p += w;
		n -= (size_t)w;
	}
}

/* Reads one response (head, then the Content-Length body) and returns the body's size. */
static long long read_response(gnutls_session_t s, char *buf)
{
	size_t have = 0;
	long long body = -1, got = 0;
	char *end, *cl;

	for (;;) {
		ssize_t r = gnutls_record_recv(s, buf + have, CHUNK - 1 - have);

		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r <= 0)
			die("recv", (int)r);
		have += (size_t)r;
		buf[have] = 0;
		end = strstr(buf, "\r\n\r\n");
		if (end)
			break;
		if (have >= CHUNK - 1)
			die("response head too long", 0);
	}
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (!cl || cl > end)
		die("no Content-Length", 0);
	body = strtoll(cl + 17, NULL, 10);
	got = (long long)(buf + have - (end + 4));
	while (got < body) {
		ssize_t r = gnutls_record_recv(s, buf, CHUNK);

		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r <= 0)
			die("recv body", (int)r);
		got += r;
	}
	return body;
}

static void get(gnutls_session_t s, char *buf, const char *path)
{
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench.test\r\n\r\n", path);

	send_all(s, req, (size_t)n);
	read_response(s, buf);
}

int main(int argc, char **argv)
{
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char *buf = malloc(CHUNK), path[64];
	long long n;
	int fd, rc, one = 1;
	double w0, c0;

	if (argc != 6 || !buf)
		return fprintf(stderr, "usage: %s CAFILE ADDR PORT loop|down|up N\n", argv[0]), 2;
	n = atoll(argv[5]);
	sa.sin_port = htons((unsigned short)atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		die("address", 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect", 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0)
		die("credentials", rc);
	if ((rc = gnutls_certificate_set_x509_trust_file(cred, argv[1], GNUTLS_X509_FMT_PEM)) < 0)
		die(argv[1], rc);
	if ((rc = gnutls_init(&s, GNUTLS_CLIENT)) < 0 ||
	    (rc = gnutls_set_default_priority(s)) < 0 ||
	    (rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred)) < 0)
		die("session", rc);
	gnutls_session_set_verify_cert(s, NULL, 0); /* the chain, not a name: an address */
	gnutls_transport_set_int(s, fd);
	do
		rc = gnutls_handshake(s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0)
		die("handshake", rc);
	get(s, buf, "/warm");
	w0 = secs(CLOCK_MONOTONIC);
	c0 = secs(CLOCK_PROCESS_CPUTIME_ID);
	if (!strcmp(argv[4], "loop")) {
		for (long long i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "/r/%lld", i);
			get(s, buf, path);
		}
	} else if (!strcmp(argv[4], "down")) {
		snprintf(path, sizeof(path), "/big/%lld", n);
		get(s, buf, path);
	} else if (!strcmp(argv[4], "up")) {
		char head[160];
		int hn = snprintf(
		    head, sizeof(head),
		    "POST /up HTTP/1.1\r\nHost: bench.test\r\nContent-Length: %lld\r\n\r\n", n);

		memset(buf, 'x', CHUNK);
		send_all(s, head, (size_t)hn);
		for (long long left = n; left > 0; left -= CHUNK)
			send_all(s, buf, left > CHUNK ? CHUNK : (size_t)left);
		read_response(s, buf);
	} else {
		die("mode is loop, down or up", 0);
	}
	printf("%.6f %.6f\n", secs(CLOCK_MONOTONIC) - w0, secs(CLOCK_PROCESS_CPUTIME_ID) - c0);
	gnutls_bye(s, GNUTLS_SHUT_RDWR);
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	free(buf);
	return 0;
}
