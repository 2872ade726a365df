/* Containers a job starts through an engine: followed, fenced and named (see containers.h). */
#include "job/containers.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/sha256.h"
#include "common/xalloc.h"
#include "common/util.h"
#include "kernel/loader.h"
#include "observe/collect.h"

/* What appears in a watched directory. */
enum role {
	ROLE_PARENT,   /* an engine directory that does not exist yet may appear here */
	ROLE_ENGINE,   /* container cgroups (docker/<id>, system.slice/docker-<id>.scope) */
	ROLE_BUILDKIT, /* BuildKit's build steps (docker/buildkit/<id>) */
};

#define DEFAULT_ENGINE	  "/var/run/docker.sock"
#define ENGINE_REPLY_MAX  (1 << 20) /* a container's inspect JSON; more is refused */
#define ENGINE_TIMEOUT_MS 1000L
#define LABEL_MAX	  256 /* of each name the engine gives back (the job chose them) */
/* Containers named in the record (the log lines and summary.json list): ~1 KiB each. */
#define CONTAINERS_NAMED_MAX 4096

const char *containers_engine_socket(const char *docker_host)
{
	if (docker_host && !strncmp(docker_host, "unix://", 7) && docker_host[7] == '/')
		return docker_host + 7;
	return NULL;
}

/* --------------------------------------------------------------- names */

static bool all_of(const char *s, const char *set)
{
	return s[strspn(s, set)] == '\0';
}

/*
 * A container's cgroup by the names engines give them; the engine and the id
 * go to the record. cgroupfs driver: the bare 64-hex id under the engine's
 * directory (Docker's is `docker`; containerd's clients name theirs: Kubernetes
 * pods, `ctr`'s namespace), engine unknown (NULL) elsewhere; Podman's is
 * `libpod_parent/libpod-<id>`; systemd driver: a scope unit per container.
 */
static bool container_cgroup(const char *dir, const char *name, const char **engine, char *id,
			     size_t idlen)
{
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	static const struct {
		const char *prefix, *engine;
	} units[] = {{"docker-", "docker"},
		     {"libpod-", "podman"},
		     {"cri-containerd-", "containerd"},
		     {"crio-", "cri-o"}};
	size_t n = strlen(name);

	if (n == 64 && all_of(name, "0123456789abcdef")) {
		*engine = strcmp(base, "docker") ? NULL : "docker";
		snprintf(id, idlen, "%s", name);
		return true;
	}
	/* Podman with the cgroupfs manager: libpod_parent/libpod-<id>, no unit. */
	if (n == 7 + 64 && !strncmp(name, "libpod-", 7) && all_of(name + 7, "0123456789abcdef")) {
		*engine = "podman";
		snprintf(id, idlen, "%s", name + 7);
		return true;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t p = strlen(units[i].prefix);

		if (n > p + 6 && !strncmp(name, units[i].prefix, p) &&
		    !strcmp(name + n - 6, ".scope")) {
			*engine = units[i].engine;
			snprintf(id, idlen, "%.*s", (int)(n - p - 6), name + p);
			return true;
		}
	}
	return false;
}

/* BuildKit names a step's cgroup by its random executor id (lower-case base32). */
static bool buildkit_step(const char *name)
{
	size_t n = strlen(name);

	return n >= 10 && n <= 64 && all_of(name, "abcdefghijklmnopqrstuvwxyz0123456789");
}

/* Docker's BuildKit under the systemd driver names a step `docker-<id>.scope` as it
 * names containers, with BuildKit's id (base32, 25 characters) where a container has 64
 * hex digits. */
static bool docker_buildkit_unit(const char *engine, const char *id)
{
	return engine && !strcmp(engine, "docker") &&
	       !(strlen(id) == 64 && all_of(id, "0123456789abcdef")) && buildkit_step(id);
}

/* ------------------------------------------------------------ identity */

struct reply {
	char *buf;
	size_t len;
	bool too_big;
};

static size_t take_reply(char *data, size_t size, size_t n, void *ctx)
{
	struct reply *r = ctx;
	size_t add = size * n;

	if (r->len + add > ENGINE_REPLY_MAX) {
		r->too_big = true;
		return 0; /* ends the transfer */
	}
	r->buf = xrealloc(r->buf, r->len + add + 1);
	memcpy(r->buf + r->len, data, add);
	r->len += add;
	r->buf[r->len] = '\0';
	return add;
}

/* The engine's own description of container id (GET /containers/ID/json), or NULL. */
static json_t *docker_inspect(const char *sock, const char *id, char *why, size_t whylen)
{
	CURL *h = curl_easy_init();
	struct reply r = {0};
	char url[160];
	long status = 0;
	json_t *j = NULL;
	CURLcode rc;

	if (!h) {
		snprintf(why, whylen, "no HTTP client");
		return NULL;
	}
	/* The id is the cgroup's name, already checked to be hex. */
	snprintf(url, sizeof(url), "http://engine/containers/%s/json", id);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ENGINE_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, take_reply);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK)
		snprintf(why, whylen, "%s: %s", sock,
			 r.too_big ? "reply over 1 MiB" : curl_easy_strerror(rc));
	else if (status != 200)
		snprintf(why, whylen, "%s: HTTP %ld for container %.12s", sock, status, id);
	else if (!(j = json_loadb(r.buf, r.len, 0, NULL)) || !json_is_object(j))
		snprintf(why, whylen, "%s: the reply is not a JSON object", sock);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	free(r.buf);
	curl_easy_cleanup(h);
	return j;
}

/* A string the engine gave back (the job chose it): at most LABEL_MAX bytes, or null. */
static void engine_value(struct strbuf *sb, json_t *v, bool strip_slash)
{
	const char *s = json_string_value(v);

	if (!s) {
		sb_addstr(sb, "null");
		return;
	}
	if (strip_slash && *s == '/')
		s++;
	json_str(sb, s, strnlen(s, LABEL_MAX));
}

/* The record's "container" object. */
static void identity(const struct containers *c, struct strbuf *sb, const char *engine,
		     const char *kind, const char *id, char *sandbox, size_t sandbox_len)
{
	json_t *j = NULL, *cfg, *labels;
	char why[300] = "";

	sb_addstr(sb, "{\"engine\":");
	json_cstr(sb, engine); /* null: not known by its name */
	sb_addstr(sb, ",\"kind\":");
	json_cstr(sb, kind);
	sb_addstr(sb, ",\"id\":");
	json_cstr(sb, id);
	if (engine && !strcmp(engine, "docker") && !strcmp(kind, "container"))
		j = docker_inspect(c->engine ? c->engine : DEFAULT_ENGINE, id, why, sizeof(why));
	cfg = json_object_get(j, "Config");
	sb_addstr(sb, ",\"name\":");
	engine_value(sb, json_object_get(j, "Name"), true);
	sb_addstr(sb, ",\"image\":");
	engine_value(sb, json_object_get(cfg, "Image"), false);
	sb_addstr(sb, ",\"image_id\":");
	engine_value(sb, json_object_get(j, "Image"), false);
	labels = json_object_get(cfg, "Labels");
	if (json_object_get(labels, "com.docker.compose.service")) {
		sb_addstr(sb, ",\"compose\":{\"project\":");
		engine_value(sb, json_object_get(labels, "com.docker.compose.project"), false);
		sb_addstr(sb, ",\"service\":");
		engine_value(sb, json_object_get(labels, "com.docker.compose.service"), false);
		sb_addch(sb, '}');
	}
	if (why[0]) {
		sb_addstr(sb, ",\"identity_error\":");
		json_cstr(sb, why);
	}
	sb_addch(sb, '}');
	/* Its network namespace, made by the engine before the container starts. */
	if (json_string_value(json_object_get(json_object_get(j, "NetworkSettings"), "SandboxKey")))
		snprintf(sandbox, sandbox_len, "%s",
			 json_string_value(
			     json_object_get(json_object_get(j, "NetworkSettings"), "SandboxKey")));
	json_decref(j);
}

/* ------------------------------------------------------------ watching */

static int add_watch(struct containers *c, const char *path, int role)
{
	int wd;

	if (c->nw == CONTAINER_WATCHES) {
		rw_err("following containers: more than %d directories to watch; %s is not",
		       CONTAINER_WATCHES, path);
		return -1;
	}
	wd = inotify_add_watch(c->ino_fd, path, IN_CREATE | IN_DELETE | IN_ONLYDIR);
	if (wd < 0)
		return -1;
	c->w[c->nw].wd = wd;
	c->w[c->nw].role = role;
	snprintf(c->w[c->nw].path, sizeof(c->w[c->nw].path), "%s", path);
	c->nw++;
	return 0;
}

static void take(struct containers *c, struct loader *ld, struct collector *col,
		 const struct cwatch *w, const char *name);

/* Everything already in a directory that appeared while the job runs was made
 * during the job: taken like the rest. */
static void take_existing(struct containers *c, struct loader *ld, struct collector *col, int widx)
{
	struct cwatch w = c->w[widx];
	DIR *d = opendir(w.path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.')
			take(c, ld, col, &w, de->d_name);
	closedir(d);
}

/* An engine directory: its containers, and BuildKit's directory in it. What is
 * created in them from now on is the job's, in the kernel first (hooks attached to
 * the directory itself), named here when inotify tells. A directory that appears
 * during the job (late) holds only the job's. */
static int watch_engine(struct containers *c, const char *path, struct loader *ld,
			struct collector *col, bool late, char *err, size_t errlen)
{
	char bk[PATH_MAX];
	int rc, at;

	if (add_watch(c, path, ROLE_ENGINE))
		return -1;
	at = c->nw - 1;
	rc = loader_follow_engine(ld, path, true, !late, err, errlen);
	if (rc < 0) {
		c->nw--;
		inotify_rm_watch(c->ino_fd, c->w[at].wd);
		return -2;
	}
	c->w[at].fenced = rc == 0;
	if (late)
		take_existing(c, ld, col, at);
	snprintf(bk, sizeof(bk), "%s/buildkit", path);
	if (add_watch(c, bk, ROLE_BUILDKIT))
		return 0;
	/* Below the engine's: fenced with it; told apart in the kernel by its own
	 * children, as BuildKit's directory itself is older than the job. */
	c->w[c->nw - 1].fenced = c->w[at].fenced;
	if (late)
		take_existing(c, ld, col, c->nw - 1);
	else if (loader_follow_engine(ld, bk, false, true, err, errlen) < 0)
		return -2;
	return 0;
}

/*
 * The claim: one job at a time follows an engine directory, so no job takes
 * another's containers. Held by this process (and released by the kernel
 * whatever ends it).
 */
static int claim(struct containers *c, const char *dir, char *err, size_t errlen)
{
	char hex[SHA256_HEX], path[PATH_MAX];
	int fd;

	if (mkdir_p(c->claim_dir, 0700)) {
		snprintf(err, errlen, "%s: %s", c->claim_dir, strerror(errno));
		return -1;
	}
	sha256_hex(dir, strlen(dir), hex);
	snprintf(path, sizeof(path), "%s/%.32s.lock", c->claim_dir, hex);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		snprintf(err, errlen,
			 "another job is following the containers created under %s: two jobs "
			 "on one engine could not tell their containers apart (run them one "
			 "after the other, or give each its own engine)",
			 dir);
		close(fd);
		return -1;
	}
	c->claim_fds[c->n_claims++] = fd;
	return 0;
}

int containers_start(struct containers *c, struct loader *ld, const char *const *dirs,
		     const char *engine, const char *claim_dir, char *err, size_t errlen)
{
	struct stat st;

	memset(c, 0, sizeof(*c));
	c->ino_fd = -1;
	c->home_netns = -1;
	c->home_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (c->home_netns < 0 || fstat(c->home_netns, &st)) {
		snprintf(err, errlen, "following containers: /proc/self/ns/net: %s",
			 strerror(errno));
		return -1;
	}
	c->home_netns_ino = st.st_ino;
	c->engine = engine;
	c->claim_dir = claim_dir;
	c->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->ino_fd < 0) {
		snprintf(err, errlen, "following containers: inotify: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; dirs[i]; i++) {
		char parent[PATH_MAX], *slash;

		int rc;

		if (i == CONTAINER_WATCHES || claim(c, dirs[i], err, errlen))
			return -1;
		rc = watch_engine(c, dirs[i], ld, NULL, false, err, errlen);
		if (rc == -2) {
			rw_err("following containers under %s: %s", dirs[i], err);
			return -1;
		}
		if (!rc)
			continue;
		/* Not there yet: an engine makes it with its first container, and a container
		 * started before runwarden saw the directory appear would run unfenced. Made here
		 * instead, it carries the hooks before the engine puts anything in it (engines
		 * create it as mkdir -p does, taking one that exists). */
		if (mkdir(dirs[i], 0755) == 0) {
			rc = watch_engine(c, dirs[i], ld, NULL, false, err, errlen);
			if (rc == -2) {
				rmdir(dirs[i]);
				rw_err("following containers under %s: %s", dirs[i], err);
				return -1;
			}
			for (int k = 0; !rc && k < c->nw; k++)
				if (c->w[k].role == ROLE_ENGINE && !strcmp(c->w[k].path, dirs[i]))
					c->w[k].made = true;
			if (!rc)
				continue;
			rmdir(dirs[i]);
		}
		/* It cannot be made (its parent is missing too): wait for it. */
		snprintf(parent, sizeof(parent), "%s", dirs[i]);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		if (add_watch(c, parent, ROLE_PARENT)) {
			snprintf(err, errlen, "following containers under %s: %s", dirs[i],
				 strerror(errno));
			return -1;
		}
		/* The parent entry remembers which child it waits for. */
		snprintf(c->w[c->nw - 1].path, sizeof(c->w[c->nw - 1].path), "%s", dirs[i]);
	}
	return 0;
}

/*
 * A container in a network namespace of its own cannot reach the gate on the host's
 * loopback, where the kernel sends its port-53 traffic: the gate listens at the same
 * address and port inside that namespace too, before the container's first process runs
 * when the engine names the namespace (Docker's SandboxKey), else as soon as one of its
 * processes is seen in it.
 */
static void serve_netns_fd(struct containers *c, int slot, int fd)
{
	struct live *l = &c->live[slot];
	char err[256];
	struct stat st;

	if (fstat(fd, &st) || st.st_ino == c->home_netns_ino)
		return; /* host network: the gate is there */
	l->netns_ino = st.st_ino;
	for (int s = 1; s < SCOPE_SLOTS; s++)
		if (s != slot && c->live[s].name[0] && c->live[s].netns_ino == st.st_ino)
			return; /* served already: containers sharing a network namespace */
	l->gate = c->gate_add_netns(c->gate_ctx, fd, c->home_netns, err, sizeof(err));
	if (l->gate < 0)
		rw_err("container %s: the DNS gate cannot listen in its network namespace (%s): "
		       "host names do not resolve there",
		       l->name, err);
}

/* How long a container's processes are looked at for a namespace of their own: runc
 * moves its first process into the cgroup before that process joins the namespace. */
#define NETNS_LOOK_NS (2 * 1000000000LL)

static void look_for_netns(struct containers *c, int slot)
{
	struct live *l = &c->live[slot];
	char procs[PATH_MAX + 96], buf[256], ns[64];
	int64_t now = now_mono_ns();

	if (l->netns_ino || !c->gate_add_netns || !l->look_until)
		return;
	if (now > l->look_until) {
		l->look_until = 0;
		return;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", l->path);
	if (read_text_bounded(procs, buf, sizeof(buf)) <= 0)
		return;
	for (char *p = buf, *end; *p; p = end) {
		long pid = strtol(p, &end, 10);
		int fd;

		if (end == p)
			break;
		snprintf(ns, sizeof(ns), "/proc/%ld/ns/net", pid);
		fd = open(ns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		serve_netns_fd(c, slot, fd);
		close(fd);
		if (l->netns_ino)
			return;
	}
}

/*
 * The engine starts the container's process right after making its cgroup, and asking
 * the engine (Docker's inspect) waits until that start is over: by then the process may
 * have sent its first DNS question. So its namespace is first looked for in its cgroup,
 * for a short while: runc's init joins it within milliseconds of the cgroup's creation.
 * A host-network container never shows one: the wait is the price of not knowing.
 */
#define NETNS_WAIT_NS (40 * 1000000LL)

static void wait_for_netns(struct containers *c, int slot)
{
	int64_t until = now_mono_ns() + NETNS_WAIT_NS;
	struct timespec tick = {0, 1000000};

	if (!c->gate_add_netns)
		return;
	while (!c->live[slot].netns_ino && now_mono_ns() < until) {
		look_for_netns(c, slot);
		if (!c->live[slot].netns_ino)
			nanosleep(&tick, NULL);
	}
}

/* A slot to follow a container in (its network namespace, its end), or -1. */
static int free_slot(const struct containers *c)
{
	for (int s = 1; s < SCOPE_SLOTS; s++)
		if (!c->live[s].name[0])
			return s;
	return -1;
}

/*
 * Does a cgroup that is no container hold a process of the job's? Podman moves its
 * conmon (the job's child) into libpod_parent/conmon; a hostile job could move itself
 * into a cgroup it made in system.slice. Such a cgroup stays fenced, as the kernel let
 * the move through for that reason (rw_cgroup_attach). Asked after the cgroup is marked
 * not the job's: a process moved in later is then an escape the kernel records.
 */
static bool holds_job_process(const struct loader *ld, const struct cwatch *w, const char *name)
{
	char path[PATH_MAX + 280], line[32];
	bool jobs = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", w->path, name);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!jobs && fgets(line, sizeof(line), f))
		jobs = loader_job_pid(ld, (uint32_t)strtoul(line, NULL, 10));
	fclose(f);
	return jobs;
}

/*
 * Not a container of the job's: there before the job (the kernel's set, so that
 * what is named here and what the kernel fences agree), or no container at all
 * (a service systemd starts in system.slice), which the kernel is told to leave
 * alone. BuildKit's directory is no container but holds the job's steps.
 */
static bool not_jobs(const struct loader *ld, const struct cwatch *w, const char *name,
		     uint64_t cgid, bool is_container)
{
	if (loader_engine_preexisting(ld, cgid))
		return true;
	if (!is_container && w->fenced && !(w->role == ROLE_ENGINE && !strcmp(name, "buildkit"))) {
		loader_engine_exclude(ld, cgid);
		if (holds_job_process(ld, w, name))
			loader_engine_include(ld, cgid);
	}
	return !is_container;
}

/* A container cgroup of the job's: fenced (from its birth, or now), named, recorded. */
static void take(struct containers *c, struct loader *ld, struct collector *col,
		 const struct cwatch *w, const char *name)
{
	const char *engine = "docker", *kind = "build-step";
	char id[80], path[PATH_MAX + 80], err[256], sandbox[PATH_MAX] = "";
	struct strbuf who = STRBUF_INIT;
	bool is_container = true;
	struct stat st;
	int fd, slot, scope_slot = 0;

	if (w->role == ROLE_BUILDKIT) {
		is_container = buildkit_step(name);
		snprintf(id, sizeof(id), "%s", name);
	} else if (!container_cgroup(w->path, name, &engine, id, sizeof(id))) {
		is_container = false;
	} else if (!docker_buildkit_unit(engine, id)) {
		kind = "container";
	}
	snprintf(path, sizeof(path), "%s/%s", w->path, name);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return; /* gone already */
	if (fstat(fd, &st) || not_jobs(ld, w, name, st.st_ino, is_container)) {
		close(fd);
		return;
	}
	slot = free_slot(c);
	if (!w->fenced && slot > 0)
		scope_slot = loader_add_scope(ld, fd, err, sizeof(err));
	else if (!w->fenced)
		snprintf(err, sizeof(err), "more than %d containers at once", SCOPE_SLOTS - 1);
	close(fd);
	if (!w->fenced && scope_slot <= 0) {
		rw_err("container %s is NOT watched: %s", name, err);
		col->sum.containers_missed++;
		return;
	}
	if (slot > 0) {
		struct live *l = &c->live[slot];

		l->scope_slot = scope_slot;
		l->wd = w->wd;
		snprintf(l->name, sizeof(l->name), "%s", name);
		snprintf(l->path, sizeof(l->path), "%s", path);
		l->netns_ino = 0;
		l->gate = -1;
		snprintf(path, sizeof(path), "%s/%s/cgroup.events", w->path, name);
		l->events_wd = inotify_add_watch(c->ino_fd, path, IN_MODIFY);
		l->look_until = now_mono_ns() + NETNS_LOOK_NS;
		wait_for_netns(c, slot);
	} else if (c->gate_add_netns) {
		rw_err("container %s: more than %d containers at once; the DNS gate does not "
		       "listen in its network namespace",
		       name, SCOPE_SLOTS - 1);
	}
	/* Fenced already; naming it may take a round trip to the engine. A job can start
	 * containers without end: past the cap they are fenced and recorded, not named. */
	if (c->n_followed >= CONTAINERS_NAMED_MAX) {
		col->sum.containers_unlisted++;
		if (slot > 0)
			look_for_netns(c, slot);
		return;
	}
	identity(c, &who, engine, kind, id, sandbox, sizeof(sandbox));
	if (slot > 0 && sandbox[0] && c->gate_add_netns && !c->live[slot].netns_ino) {
		int nfd = open(sandbox, O_RDONLY | O_CLOEXEC);

		if (nfd >= 0) {
			serve_netns_fd(c, slot, nfd);
			close(nfd);
			c->live[slot].look_until = 0; /* known: no need to look */
		}
	}
	if (slot > 0)
		look_for_netns(c, slot);
	/* On cgroup v2 a cgroup's id is its directory's inode number. */
	collector_add_container(col, st.st_ino, who.buf);
	sb_addf(&c->list, "%s%s", c->list.len ? "," : "", who.buf);
	c->n_followed++;
	sb_release(&who);
}

/* The gate's listener in a namespace goes with the last container of the job in it. */
static void leave_netns(struct containers *c, int slot)
{
	struct live *l = &c->live[slot];

	if (l->gate < 0)
		return;
	for (int s = 1; s < SCOPE_SLOTS; s++)
		if (s != slot && c->live[s].name[0] && c->live[s].netns_ino == l->netns_ino) {
			c->live[s].gate = l->gate;
			l->gate = -1;
			return;
		}
	c->gate_drop_netns(c->gate_ctx, l->gate);
	l->gate = -1;
}

static void gone(struct containers *c, struct loader *ld, int wd, const char *name)
{
	for (int s = 1; s < SCOPE_SLOTS; s++)
		if (c->live[s].name[0] && c->live[s].wd == wd && !strcmp(c->live[s].name, name)) {
			if (c->live[s].scope_slot > 0)
				loader_drop_scope(ld, c->live[s].scope_slot);
			c->live[s].scope_slot = 0;
			leave_netns(c, s);
			if (c->live[s].events_wd >= 0)
				inotify_rm_watch(c->ino_fd, c->live[s].events_wd);
			c->live[s].name[0] = '\0';
		}
}

static void on_event(struct containers *c, struct loader *ld, struct collector *col,
		     const struct inotify_event *ev)
{
	int n = c->nw; /* entries added while handling this one handle later events */
	char err[256];

	for (int i = 0; i < n; i++) {
		struct cwatch *w = &c->w[i];
		char child[PATH_MAX + 256];

		if (w->wd != ev->wd)
			continue;
		if (ev->mask & IN_DELETE) {
			if (w->role != ROLE_PARENT)
				gone(c, ld, ev->wd, ev->name);
			continue;
		}
		if (w->role != ROLE_PARENT) {
			take(c, ld, col, w, ev->name);
			continue;
		}
		snprintf(child, sizeof(child), "%.*s/%s", (int)(strrchr(w->path, '/') - w->path),
			 w->path, ev->name);
		if (!strcmp(child, w->path) &&
		    watch_engine(c, w->path, ld, col, true, err, sizeof(err)) == -2) {
			rw_err("containers created under %s are NOT watched: %s", w->path, err);
			col->sum.containers_missed++;
		}
	}
	/* BuildKit's directory appears with the first build. */
	for (int i = 0; i < n; i++) {
		char bk[PATH_MAX + 16];

		if (c->w[i].wd != ev->wd || c->w[i].role != ROLE_ENGINE ||
		    strcmp(ev->name, "buildkit") || !(ev->mask & IN_CREATE))
			continue;
		snprintf(bk, sizeof(bk), "%s/buildkit", c->w[i].path);
		if (!add_watch(c, bk, ROLE_BUILDKIT)) {
			/* New, below a fenced engine directory: its steps are too. */
			c->w[c->nw - 1].fenced = c->w[i].fenced;
			take_existing(c, ld, col, c->nw - 1);
		}
	}
}

void containers_follow(struct containers *c, struct loader *ld, struct collector *col)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	/* Containers whose namespace is not known yet are looked at on every turn, briefly. */
	for (int s = 1; s < SCOPE_SLOTS; s++)
		if (c->live[s].name[0])
			look_for_netns(c, s);
	while ((n = read(c->ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if ((ev->mask & IN_ISDIR) && ev->len) {
				on_event(c, ld, col, ev);
				continue;
			}
			for (int s = 1; s < SCOPE_SLOTS; s++)
				if ((ev->mask & IN_MODIFY) && c->live[s].name[0] &&
				    c->live[s].events_wd == ev->wd)
					look_for_netns(c, s);
		}
	}
}

void containers_free(struct containers *c)
{
	for (int k = 0; k < c->nw; k++)
		if (c->w[k].made)
			rmdir(c->w[k].path); /* EBUSY while the engine still uses it: left */
	if (c->ino_fd >= 0)
		close(c->ino_fd);
	for (int i = 0; i < c->n_claims; i++)
		close(c->claim_fds[i]);
	for (int s = 1; s < SCOPE_SLOTS; s++)
		if (c->live[s].name[0] && c->live[s].gate >= 0)
			c->gate_drop_netns(c->gate_ctx, c->live[s].gate);
	if (c->home_netns >= 0)
		close(c->home_netns);
	sb_release(&c->list);
	memset(c, 0, sizeof(*c));
	c->ino_fd = -1;
}
