/* Naming containers that have no cgroup, from their monitor's command line (see shim.h). */
#include "observe/shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/xalloc.h"

#define NAME_MAX_LEN 253

bool shim_is_conmon(const char *exe)
{
	const char *base = exe ? strrchr(exe, '/') : NULL;

	return base && !strcmp(base + 1, "conmon");
}

/* The value of option `s`/`l` at args[*i] ("-c X", "--cid X", "--cid=X"), advancing *i past
 * a separate value; NULL when args[*i] is not that option. */
static const char *opt_value(char **args, size_t n, size_t *i, const char *s, const char *l)
{
	size_t ll = strlen(l);

	if ((!strcmp(args[*i], s) || !strcmp(args[*i], l)) && *i + 1 < n)
		return args[++*i];
	if (!strncmp(args[*i], l, ll) && args[*i][ll] == '=')
		return args[*i] + ll + 1;
	return NULL;
}

/* Podman's ids: 64 hex digits (12 and more accepted: a short id still names it). */
static bool valid_id(const char *id)
{
	size_t n = strspn(id, "0123456789abcdef");

	return n >= 12 && n <= 64 && !id[n];
}

bool shim_parse_conmon(const char *argv, size_t len, struct shim *s)
{
	const char *id = NULL, *name = NULL, *runtime = NULL;
	char **args;
	size_t n = 0;
	struct strbuf sb = STRBUF_INIT;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < len; i++)
		n += !argv[i];
	args = xcalloc(n + 1, sizeof(*args));
	n = 0;
	for (size_t i = 0; i < len;) {
		const char *end = memchr(argv + i, 0, len - i);

		if (!end)
			break; /* a cut last argument: not one of conmon's options */
		args[n++] = (char *)argv + i;
		i = (size_t)(end - argv) + 1;
	}
	for (size_t i = 1; i < n; i++) {
		const char *v;

		/* values passed on to the exit command or the runtime: "--exit-command-arg
		 * --runtime --exit-command-arg runc" names podman's options, not conmon's */
		if (!strcmp(args[i], "--exit-command-arg") || !strcmp(args[i], "--runtime-arg") ||
		    !strcmp(args[i], "--runtime-opt") || !strcmp(args[i], "--exit-command"))
			i++;
		else if ((v = opt_value(args, n, &i, "-c", "--cid")))
			id = id ? id : v;
		else if ((v = opt_value(args, n, &i, "-n", "--name")))
			name = name ? name : v;
		else if ((v = opt_value(args, n, &i, "-r", "--runtime")))
			runtime = runtime ? runtime : v;
	}
	if (!id || !valid_id(id)) {
		free(args);
		return false;
	}
	sb_addstr(&sb, "{\"engine\":\"podman\",\"kind\":\"container\",\"id\":");
	json_str(&sb, id, strlen(id));
	sb_addstr(&sb, ",\"name\":");
	if (name)
		json_str(&sb, name, strnlen(name, NAME_MAX_LEN));
	else
		sb_addstr(&sb, "null");
	sb_addstr(&sb, ",\"cgroup\":null,\"named_by\":\"conmon argv\"}");
	s->identity = sb_detach(&sb);
	snprintf(s->id, sizeof(s->id), "%s", id);
	if (runtime)
		snprintf(s->runtime, sizeof(s->runtime), "%s", runtime);
	free(args);
	return true;
}

static const char *base_name(const char *p)
{
	const char *slash = strrchr(p, '/');

	p = slash ? slash + 1 : p;
	return strncmp(p, "memfd:", 6) ? p : p + 6;
}

bool shim_is_runtime(const struct shim *s, const char *exe)
{
	size_t n;

	if (!exe || !s->runtime[0])
		return false;
	exe = base_name(exe);
	n = strcspn(exe, " "); /* "runc (deleted)" */
	return n && strlen(base_name(s->runtime)) == n && !strncmp(exe, base_name(s->runtime), n);
}

void shim_free(struct shim *s)
{
	free(s->identity);
	s->identity = NULL;
}
