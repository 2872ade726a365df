/* secret_leak: a secret of the job's seen leaving for a destination not allowed to receive it
 * (src/secrets/, bpf/secretscan.bpf.h). The finding names the secret, never holds it. */
#include <stdio.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/strbuf.h"
#include "findings/findings.h"

static void member(struct strbuf *d, const char *name, const char *v)
{
	sb_addf(d, "%s\"%s\":", d->len ? "," : "", name);
	json_cstr(d, v);
}

void findings_on_secret_leak(struct findings *f, const struct finding_proc *p,
			     const struct finding_secret *s, uint64_t seq)
{
	struct strbuf key = STRBUF_INIT, d = STRBUF_INIT;
	const char *dest = s->dest ? s->dest : s->address ? s->address : "an unnamed destination";
	struct finding *x;

	/* one finding per secret, process, destination and channel; repeats are its evidence */
	sb_addf(&key, "secret_leak:%s:%s:%s:%s:%d", s->source, s->secret, dest, s->channel,
		(int)p->pid);
	x = finding_get(f, key.buf);
	if (!x) {
		x = finding_raise(f, key.buf, FK_SECRET_LEAK, SEV_HIGH, p);
		if (x) {
			finding_set_desc(
			    x, "%s %s%s%s%s sent to %s by %s [pid %d] (%s): %s",
			    !strcmp(s->source, "format") ? "a token of format"
			    : !strcmp(s->source, "env")	 ? "the secret variable"
							 : "a token of the credential file",
			    s->secret, s->key ? " (" : "", s->key ? s->key : "", s->key ? ")" : "",
			    dest, findings_short_exe(p), (int)p->pid, s->channel,
			    !strcmp(s->verdict, "deny") ? "stopped" : "recorded, not stopped");
			member(&d, "secret", s->secret);
			member(&d, "source", s->source);
			if (s->key)
				member(&d, "key", s->key);
			member(&d, "hash", s->tag);
			member(&d, "destination", s->dest);
			if (s->address)
				member(&d, "address", s->address);
			member(&d, "channel", s->channel);
			member(&d, "verdict", s->verdict);
			if (s->killed)
				sb_addstr(&d, ",\"killed\":true");
			if (s->dropped)
				sb_addstr(&d, ",\"dropped\":true");
			finding_set_details(x, d.buf);
		}
	}
	if (x)
		finding_evidence(x, seq);
	if (x)
		finding_act(f, x);
	sb_release(&key);
	sb_release(&d);
}
