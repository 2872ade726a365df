/*
 * A statically linked DNS client that bypasses the libc resolver: it builds
 * one A question with libresolv and sends it over UDP to SERVER:PORT, then
 * prints the answer's first address. Stands in for Go-style static binaries.
 *
 *   static_dns SERVER PORT NAME
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned char q[512], a[1024];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 2};
	ns_msg h;
	ns_rr rr;
	int s, len, n;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: static_dns SERVER PORT NAME\n");
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	s = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	len = res_mkquery(ns_o_query, argv[3], ns_c_in, ns_t_a, NULL, 0, NULL, q, sizeof(q));
	if (len < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(s, q, len, 0) != len) {
		perror("static_dns: send");
		return 1;
	}
	n = recv(s, a, sizeof(a), 0);
	if (n < 12 || ns_initparse(a, n, &h) < 0) {
		perror("static_dns: answer");
		return 1;
	}
	for (int i = 0; i < ns_msg_count(h, ns_s_an); i++) {
		char buf[64];

		if (ns_parserr(&h, ns_s_an, i, &rr) == 0 && ns_rr_type(rr) == ns_t_a) {
			printf("%s\n", inet_ntop(AF_INET, ns_rr_rdata(rr), buf, sizeof(buf)));
			return 0;
		}
	}
	fprintf(stderr, "static_dns: no A record\n");
	return 1;
}
