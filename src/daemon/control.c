/* The control socket's transport: bounded reads, one JSON message each way (see control.h). */
#include "daemon/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "common/xalloc.h"

static int fill_addr(struct sockaddr_un *sa, const char *path, char *err, size_t errlen)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		snprintf(err, errlen, "socket path too long (max %zu bytes): %s",
			 sizeof(sa->sun_path) - 1, path);
		return -1;
	}
	strcpy(sa->sun_path, path);
	return 0;
}

/* The directory is what keeps non-root users away from the socket (a bind
 * races with chmod): it must be root's and closed to everyone else. */
static int private_dir(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		snprintf(
		    err, errlen,
		    "--socket %s: needs a directory of its own (e.g. /run/runwarden/agent.sock)",
		    path);
		return -1;
	}
	*slash = 0;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st)) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0) {
		snprintf(err, errlen, "%s must be a directory owned by root", dir);
		return -1;
	}
	if ((st.st_mode & 077) && chmod(dir, st.st_mode & 0700)) {
		snprintf(err, errlen, "cannot make %s private: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int control_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd, rc;

	if (fill_addr(&sa, path, err, errlen) || private_dir(path, err, errlen))
		return -1;
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errlen, "another agent is already listening on %s", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path); /* a dead agent's */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || chmod(path, 0600) || listen(fd, 16)) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

json_t *control_read(int fd, size_t max, int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = now_mono_ns() + (int64_t)timeout_ms * 1000000;
	size_t len = 0;
	char *buf = xmalloc(max + 1);
	json_error_t je;
	json_t *msg = NULL;

	for (;;) {
		int64_t left = (deadline - now_mono_ns()) / 1000000;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (left <= 0) {
			snprintf(err, errlen, "timed out after %d ms", timeout_ms);
			goto out;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		n = recv(fd, buf + len, max + 1 - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			snprintf(err, errlen, "read: %s", strerror(errno));
			goto out;
		}
		len += n;
		if (len > max) {
			snprintf(err, errlen, "message larger than %zu bytes", max);
			goto out;
		}
	}
	if (!len) {
		snprintf(err, errlen, "empty message");
		goto out;
	}
	msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!msg) {
		snprintf(err, errlen, "not JSON: %s", je.text);
	} else if (!json_is_object(msg)) {
		snprintf(err, errlen, "not a JSON object");
		json_decref(msg);
		msg = NULL;
	}
out:
	free(buf);
	return msg;
}

int control_write(int fd, const json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	int rc = 0;

	if (!s)
		return -1;
	len = strlen(s);
	s[len] = '\n'; /* json_dumps' NUL: one line on the wire */
	while (off < len + 1) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		ssize_t n = send(fd, s + off, len + 1 - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* A reader that stops reading must not stall the agent. */
			if (poll(&p, 1, CONTROL_REQUEST_TIMEOUT_MS) <= 0) {
				rc = -1;
				break;
			}
			continue;
		}
		if (n <= 0) {
			rc = -1;
			break;
		}
		off += n;
	}
	free(s);
	return rc;
}

json_t *control_call(const char *path, const json_t *req, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	json_t *reply;
	int fd;

	if (fill_addr(&sa, path, err, errlen))
		return NULL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		snprintf(err, errlen, "cannot reach the agent at %s: %s%s", path, strerror(e),
			 e == ENOENT || e == ECONNREFUSED ? " (is `runwarden agent` running?)"
			 : e == EACCES			  ? " (the control socket is root-only)"
							  : "");
		close(fd);
		return NULL;
	}
	if (control_write(fd, req) || shutdown(fd, SHUT_WR)) {
		int e = errno;

		/* The agent may have answered (a refusal) without reading: the
		 * reply says why better than EPIPE does. */
		reply = control_read(fd, CONTROL_MAX_REPLY, 1000, err, errlen);
		if (!reply)
			snprintf(err, errlen, "cannot send to the agent: %s", strerror(e));
		close(fd);
		return reply;
	}
	reply = control_read(fd, CONTROL_MAX_REPLY, CONTROL_REPLY_TIMEOUT_MS, err, errlen);
	if (!reply) {
		char why[200];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "no valid reply from the agent: %s", why);
	}
	close(fd);
	return reply;
}
