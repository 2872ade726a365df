/*
 * A job with a known shape, for exact end-to-end counts: N execs of
 * /bin/true, N TCP connects, N unconnected UDP sends, N DNS questions (built
 * by libresolv, sent with sendto to a given server, answers awaited) and N
 * opens of a file. Prints nothing on success; exits 1 with a reason otherwise.
 *
 *   workload [--exec N] [--tcp N ADDR PORT] [--udp N ADDR PORT]
 *            [--dns N SERVER PORT SUFFIX] [--open N PATH]
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct sockaddr_in addr4(const char *a, const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};

	if (inet_pton(AF_INET, a, &sa.sin_addr) != 1) {
		fprintf(stderr, "workload: bad address %s\n", a);
		exit(2);
	}
	return sa;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--exec") && i + 1 < argc) {
			int n = atoi(argv[++i]);

			for (int k = 0; k < n; k++) {
				pid_t p = fork();
				int st;

				if (p == 0) {
					execl("/bin/true", "true", (char *)NULL);
					_exit(127);
				}
				if (p < 0 || waitpid(p, &st, 0) < 0)
					die("fork");
			}
		} else if (!strcmp(argv[i], "--tcp") && i + 3 < argc) {
			int n = atoi(argv[i + 1]);
			struct sockaddr_in sa = addr4(argv[i + 2], argv[i + 3]);

			i += 3;
			for (int k = 0; k < n; k++) {
				int s = socket(AF_INET, SOCK_STREAM, 0);

				if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)))
					die("tcp connect");
				close(s);
			}
		} else if (!strcmp(argv[i], "--udp") && i + 3 < argc) {
			int n = atoi(argv[i + 1]);
			struct sockaddr_in sa = addr4(argv[i + 2], argv[i + 3]);
			int s = socket(AF_INET, SOCK_DGRAM, 0);

			i += 3;
			for (int k = 0; k < n; k++)
				if (sendto(s, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) != 1)
					die("udp sendto");
			close(s);
		} else if (!strcmp(argv[i], "--dns") && i + 4 < argc) {
			int n = atoi(argv[i + 1]);
			struct sockaddr_in sa = addr4(argv[i + 2], argv[i + 3]);
			const char *suffix = argv[i + 4];
			struct timeval tv = {.tv_sec = 2};

			i += 4;
			for (int k = 0; k < n; k++) {
				unsigned char q[512], a[1024];
				char name[256];
				int s = socket(AF_INET, SOCK_DGRAM, 0), len;

				setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
				snprintf(name, sizeof(name), "n%d.%s", k, suffix);
				len = res_mkquery(ns_o_query, name, ns_c_in, ns_t_a, NULL, 0, NULL,
						  q, sizeof(q));
				if (len < 0 ||
				    sendto(s, q, len, 0, (struct sockaddr *)&sa, sizeof(sa)) != len)
					die("dns sendto");
				if (recv(s, a, sizeof(a), 0) < 12)
					die("dns answer");
				close(s);
			}
		} else if (!strcmp(argv[i], "--open") && i + 2 < argc) {
			int n = atoi(argv[i + 1]);
			const char *path = argv[i + 2];

			i += 2;
			for (int k = 0; k < n; k++) {
				int fd = open(path, O_RDONLY);

				if (fd < 0)
					die(path);
				close(fd);
			}
		} else {
			fprintf(stderr, "workload: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	return 0;
}
