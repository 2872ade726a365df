/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: HTTP/1.x requests judged by what the policy lets each host be asked
 * (`methods:`, `paths:`), and inside TLS, by the host each request names.
 *
 * Plain HTTP: bpf/conn.bpf.h calls http_req_admit() for every request that starts a segment
 * (the segment is dropped and the connection reset when refused, as for names).
 *
 * Inside TLS: http_judge() runs first thing in the SSL_write uprobe (bpf/tls.bpf.h), on the
 * plaintext the client hands OpenSSL, before the library encrypts or writes a byte. A write
 * that holds a whole request line is parsed with the shared first-bytes parser
 * (bpf/firstbytes.h, from a slot of its own) and judged:
 *  - its Host must be a name an allow entry admits, or the name the client put in its own
 *    ClientHello (SSL_set_tlsext_host_name, seen here through SSL_ctrl), which the egress hook
 *    already judged with the connection's address (so an `ip:` entry's trust still holds);
 *    any other Host is domain fronting inside TLS (host_mismatch);
 *  - its method and target must be within the `methods:`/`paths:` of an entry that admits
 *    the host (method_not_allowed, path_not_allowed);
 *  - a head that cannot be read whole is refused (request_unreadable).
 * In enforce mode a refused request stops the writing process with SIGKILL from the probe:
 * the signal is pending before the probe returns, and the kernel delivers it on the way back
 * to user space, so SSL_write's first instruction never runs and nothing of the request is
 * encrypted or sent. A uprobe cannot make the call fail instead (no return override for user
 * functions), and letting it run would send the request. In observe mode the request goes
 * and is recorded (`http_verdict`, verdict audit).
 *
 * The uprobe does not know the connection's port (the SSL object is not tied to a socket the
 * probe can see): inside TLS the rules of every TCP port of an entry count.
 */

/* Request rules by id (struct name_rules.req), filled by src/job/enforce.c. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HTTP_RULES_MAX);
	__type(key, u32);
	__type(value, struct http_rules);
} http_rules SEC(".maps");

/* The server name a process's client set on an SSL object before its handshake. Not LRU: an
 * entry evicted could be set again after the handshake, naming what the hello did not. A full
 * map stores nothing, so the Host must then be an allowed name (fail closed). */
struct hj_ssl_key {
	u64 ssl;
	u32 tgid;
	u32 _pad;
};
#define HJS_USED     0x1 /* the handshake or a write happened: the hello's name is fixed */
#define HJS_POISONED 0x2 /* a name set after that: trusted no more */
struct hj_sni {
	u32 state;
	u32 len;
	u8 name[FB_NAME]; /* as set, without one trailing dot, zero-padded */
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hj_ssl_key);
	__type(value, struct hj_sni);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory for the connections there are */
} ssl_sni SEC(".maps");

static const char hj_methods[HTTPM_COUNT][16] __attribute__((aligned(8))) = {
#define HJ_METHOD_(m) #m,
    HTTP_METHODS(HJ_METHOD_)
#undef HJ_METHOD_
};

/* Eight bytes at p, which is 8-aligned (the asserts below): one load, not eight byte loads
 * and their shifts, which the verifier walked per word of every comparison loop. */
static __always_inline u64 hj_word(const void *p)
{
	u64 w;

	__builtin_memcpy(&w, __builtin_assume_aligned(p, 8), sizeof(w));
	return w;
}
_Static_assert(__builtin_offsetof(struct fb, ev.name) % 8 == 0, "hj_word: name aligned");
_Static_assert(__builtin_offsetof(struct fb, ev.method) % 8 == 0, "hj_word: method aligned");
_Static_assert(__builtin_offsetof(struct fb, ev.path) % 8 == 0, "hj_word: path aligned");
_Static_assert(__builtin_offsetof(struct http_rules, p) % 8 == 0 &&
		   sizeof(struct http_path_rule) % 8 == 0 &&
		   __builtin_offsetof(struct http_path_rule, mask) % 8 == 0,
	       "hj_word: path rules aligned");
_Static_assert(__builtin_offsetof(struct hj_sni, name) % 8 == 0, "hj_word: sni aligned");

/* The mask of a word's first n bytes (n in [0, 7]) as hj_word loads them. */
static __always_inline u64 hj_first_bytes(u32 n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (1ull << (n * 8)) - 1;
#else
	return n ? ~0ull << (64 - n * 8) : 0;
#endif
}

/* The request's method as a bit of HTTP_METHODS; 0 for any other. Global: verified once.
 * The method's bytes are compared as two words, the bytes past its length masked to zero as
 * hj_methods has them. */
__noinline u32 hj_method_bit(struct fb *f)
{
	u32 n;
	u64 a, b;

	if (!f)
		return 0;
	n = f->ev.method_len;
	if (!n || n >= FB_METHOD)
		return 0;
	a = hj_word(f->ev.method);
	b = hj_word(f->ev.method + 8);
	if (n < 8) {
		a &= hj_first_bytes(n);
		b = 0;
	} else {
		b &= hj_first_bytes(n - 8);
	}
	for (int k = 0; k < HTTPM_COUNT; k++) {
		u64 d = (hj_word(hj_methods[k]) ^ a) | (hj_word(hj_methods[k] + 8) ^ b);

		/* one test per method: two let a first word found equal ride on through the loop */
		asm volatile("" : "+r"(d));
		if (!d)
			return 1u << k;
	}
	return 0;
}

/* Bytes of the target's path (up to '?' or '#') that servers normalise away from what a prefix
 * was compared with: a segment starting with '.' raw or as %2e ("..", "..;", "%2e%2e"), a
 * backslash raw or as %5c, an encoded '%' (%25: decoded twice, it makes either). Mirrored by
 * policy_http_admits (src/policy/policy.c) for the unit tests. */
FB_STEP(hj_unsafe_step)
{
	u32 n = f->ev.path_len;
	u8 c = f->ev.path[fb_at(i, FB_PATH - 1)];
	u8 d = f->ev.path[fb_at(i + 1, FB_PATH - 1)];
	u8 e = f->ev.path[fb_at(i + 2, FB_PATH - 1)];

	if (i >= n || i >= FB_PATH - 1 || c == '?' || c == '#')
		return 1;
	if (c == '\\' || (c == '%' && i + 2 < n &&
			  ((d == '5' && fb_lower(e) == 'c') || (d == '2' && e == '5')))) {
		f->unsafe = 1;
		return 1;
	}
	if (c == '/' && i + 1 < n &&
	    (d == '.' || (d == '%' && i + 3 < n && e == '2' &&
			  fb_lower(f->ev.path[fb_at(i + 3, FB_PATH - 1)]) == 'e'))) {
		f->unsafe = 1;
		return 1;
	}
	return 0;
}

/* Is the target a prefix of one of rule set r's paths, with nothing unsafe in it? */
static __always_inline int hj_path_admit(struct fb *f, const struct http_rules *r)
{
	if (f->unsafe > 1) { /* not looked at yet: once per request, whatever the rules */
		f->unsafe = 0;
		FB_LOOP(FB_PATH, hj_unsafe_step, f);
	}
	if (f->unsafe || (f->ev.flags & FBF_PATH_CUT) || !f->ev.path_len || f->ev.path[0] != '/')
		return 0;
	for (int k = 0; k < HTTP_PATHS_MAX; k++) {
		const struct http_path_rule *pr;
		bool ok = true;

		if (k >= r->npaths)
			break;
		pr = &r->p[k];
		if (pr->len > f->ev.path_len)
			continue;
		for (int w = 0; w < HTTP_PATH_BYTES / 8; w++) {
			if ((hj_word(&f->ev.path[w * 8]) & hj_word(&pr->mask[w * 8])) !=
			    hj_word(&pr->s[w * 8])) {
				ok = false;
				break;
			}
		}
		if (ok)
			return 1;
	}
	return 0;
}

/* The request in f (method bit mbit) against request rule set id: 0 admitted, CNR_METHOD,
 * CNR_PATH. Global: verified once. */
__noinline int hj_rule_admit(struct fb *f, u32 id, u32 mbit)
{
	struct http_rules *r = bpf_map_lookup_elem(&http_rules, &id);

	if (!f || !r)
		return CNR_METHOD;
	if (r->methods && !(r->methods & mbit))
		return CNR_METHOD;
	if (r->npaths && !hj_path_admit(f, r))
		return CNR_PATH;
	return 0;
}

/* One port rule of the pattern f->key names (rule f->hj_rule), then the next; past its last,
 * the next shorter pattern (entries add up: the longest first, then ever shorter ones). */
FB_STEP(hj_rule_step)
{
	struct name_rules *v = bpf_map_lookup_elem(&names_allow, &f->key);
	u32 k = f->hj_rule, id;

	(void)i;
	if (!v || (f->seen & 1))
		return 1;
	if (k >= v->a.nrules || k >= RULES_MAX || (v->one_label && v->dots != f->ev.dots)) {
		if (v->a.prefix == 0)
			return 1;
		f->key.prefixlen = v->a.prefix - 1;
		f->hj_rule = 0;
		return 0;
	}
	f->hj_rule = k + 1;
	k &= RULES_MAX - 1;
	if (!(v->a.r[k].proto & RPROTO_TCP) ||
	    (!(f->hj_how & HJ_ANY_PORT) &&
	     (f->hj_port < v->a.r[k].lo || f->hj_port > v->a.r[k].hi)))
		return 0;
	id = v->req[k];
	if (!id)
		f->seen |= 1;
	else if (f->hj_how & HJ_ANY_REQ)
		f->seen |= 1u << CNR_METHOD;
	else
		f->seen |= 1u << (hj_rule_admit(f, id, f->hj_mbit) & 15);
	return 0;
}

/*
 * The request in f (parsed, FBF_NAMED, f->key its name's key) against the allow entries that
 * admit its host on port (any TCP port with HJ_ANY_PORT): 0 when one of them admits it,
 * HJ_NO_NAME when none admits the host at all, else CNR_METHOD (no entry admits the method)
 * or CNR_PATH. Global: verified once, called from the egress hook and the SSL_write probe.
 */
__noinline int http_req_admit(struct fb *f, u32 port, u32 how)
{
	u32 seen;

	if (!f)
		return HJ_NO_NAME;
	f->hj_mbit = hj_method_bit(f);
	f->hj_port = port;
	f->hj_how = how;
	f->hj_rule = 0;
	f->unsafe = 2;
	f->seen = 0; /* bit r: a rule for the host answered r */
	f->key.prefixlen = ((f->ev.name_len & (FB_NAME - 1)) + 1) * 8;
	FB_LOOP(LPM_RETRIES * (RULES_MAX + 1), hj_rule_step, f);
	f->key.prefixlen = ((f->ev.name_len & (FB_NAME - 1)) + 1) * 8;
	seen = f->seen;
	return (seen & 1)		     ? 0
	       : (seen & (1u << CNR_PATH))   ? CNR_PATH
	       : (seen & (1u << CNR_METHOD)) ? CNR_METHOD
					     : HJ_NO_NAME;
}

/* Is "h2" the ALPN name at i (f->seen = 1)? */
FB_STEP(hj_alpn_step)
{
	u32 n = f->ev.alpn_len;

	if (i + 1 >= n || i >= FB_ALPN - 1)
		return 1;
	if ((i == 0 || f->ev.alpn[fb_at(i - 1, FB_ALPN - 1)] == ',') &&
	    f->ev.alpn[fb_at(i, FB_ALPN - 1)] == 'h' &&
	    f->ev.alpn[fb_at(i + 1, FB_ALPN - 1)] == '2' &&
	    (i + 2 == n || f->ev.alpn[fb_at(i + 2, FB_ALPN - 1)] == ',')) {
		f->seen = 1;
		return 1;
	}
	return 0;
}

/* Does the ClientHello offer HTTP/2 ("h2" among its ALPN names)? One cut short may: yes. */
__noinline int hj_alpn_h2(struct fb *f)
{
	if (!f)
		return 1;
	if (f->ev.flags & FBF_ALPN_CUT)
		return 1;
	f->seen = 0;
	FB_LOOP(FB_ALPN - 1, hj_alpn_step, f);
	return f->seen;
}

/* ------------------------------------------------------------ inside TLS */

/* The ClientHello's name as the client set it before the handshake: len < 0 for a
 * NUL-terminated name (OpenSSL), else its length (GnuTLS). */
static __always_inline void hj_sni_set(u64 ssl, const void *name, s64 len)
{
	struct hj_ssl_key k = {.ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
	struct hj_sni s = {};
	struct hj_sni *v;
	long n = 0;

	v = bpf_map_lookup_elem(&ssl_sni, &k);
	if (v && (v->state & HJS_USED)) {
		v->state |= HJS_POISONED; /* the hello went with another name, or none */
		return;
	}
	if (name && len < 0) {
		n = bpf_probe_read_user_str(s.name, sizeof(s.name), name);
	} else if (name && len > 0 && len < FB_NAME) {
		u32 l = (u32)len & (FB_NAME - 1);

		if (!bpf_probe_read_user(s.name, l, name))
			n = l + 1; /* as the string read counts, with a NUL */
	} /* longer than any name: none stored, so the Host must be an allowed name */
	if (n > 1) {
		u32 l = (u32)n - 1;

		if (s.name[(l - 1) & (FB_NAME - 1)] == '.')
			s.name[(--l) & (FB_NAME - 1)] = 0;
		s.len = l; /* compared case-blind: hj_host_is_sni */
	}
	bpf_map_update_elem(&ssl_sni, &k, &s, BPF_ANY);
}

/* SSL_set_tlsext_host_name(ssl, name) is
 * SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME = 55, TLSEXT_NAMETYPE_host_name = 0, name). */
SEC("uprobe/SSL_ctrl")
int BPF_KPROBE(rw_ssl_ctrl, void *ssl, int cmd, long larg, void *parg)
{
	if (cmd == 55 && in_scope())
		hj_sni_set((u64)ssl, larg == 0 ? parg : NULL, -1);
	return 0;
}

/* From the handshake on, the name in the hello is fixed. */
static __always_inline void hj_sni_used(u64 ssl)
{
	struct hj_ssl_key k = {.ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
	struct hj_sni *v = bpf_map_lookup_elem(&ssl_sni, &k);

	if (v) {
		v->state |= HJS_USED;
	} else {
		struct hj_sni s = {.state = HJS_USED};

		bpf_map_update_elem(&ssl_sni, &k, &s, BPF_NOEXIST);
	}
}

/* SSL_do_handshake(ssl), SSL_connect(ssl) */
SEC("uprobe/SSL_do_handshake")
int BPF_KPROBE(rw_ssl_handshake, void *ssl)
{
	if (in_scope())
		hj_sni_used((u64)ssl);
	return 0;
}

/* An SSL object freed: its address may be the next one's. */
SEC("uprobe/SSL_free")
int BPF_KPROBE(rw_ssl_free, void *ssl)
{
	struct hj_ssl_key k = {.ssl = (u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32};

	if (in_scope())
		bpf_map_delete_elem(&ssl_sni, &k);
	return 0;
}

/* Eight bytes with their ASCII capitals made small (bytes >= 0x80 are left alone). */
static __always_inline u64 hj_lower8(u64 w)
{
	const u64 ones = 0x0101010101010101ull, high = ones * 0x80;
	u64 h = w & ~high, ge_a = h + ones * (0x80 - 'A'), gt_z = h + ones * (0x80 - 'Z' - 1);

	return w | (((ge_a & ~gt_z & ~w) & high) >> 2);
}

/* Is the request's Host the name the client's own hello carried? */
__noinline int hj_host_is_sni(struct fb *f, u64 ssl)
{
	struct hj_ssl_key k = {.ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
	struct hj_sni *v = bpf_map_lookup_elem(&ssl_sni, &k);
	u32 n;

	if (!f || !v || (v->state & HJS_POISONED) || !v->len || v->len != f->ev.name_len)
		return 0;
	n = v->len;
	for (int w = 0; w < FB_NAME / 8; w++) {
		u64 a, b, mask = ~0ull;

		if (w * 8 >= n)
			break;
		if (n - w * 8 < 8)
			mask = hj_first_bytes(n - w * 8);
		a = hj_word(&f->ev.name[w * 8]);
		b = hj_lower8(hj_word(&v->name[w * 8]));
		if ((a & mask) != (b & mask))
			return 0;
	}
	return 1;
}

/* The verdict on a parsed request inside TLS; e->reason says why. */
static __always_inline u8 hj_tls_verdict(struct fb *f, const struct rw_config *c, u64 ssl)
{
	struct ev_conn_name *e = &f->ev;
	int r;

	e->reason = CNR_NONE;
	if ((e->flags & FBF_NAMED) && name_blocked(&f->key, 0, RPROTO_TCP, e->dots)) {
		e->reason = CNR_NAME_BLOCKED;
		return VERDICT_BLOCK;
	}
	if (!c || !c->policy)
		return VERDICT_ALLOW;
	/* A head longer than the bytes read, cut after its whole Host: what follows cannot name
	 * another host (servers refuse a second Host) nor change the request line. */
	if ((e->flags & (FBF_CUT | FBF_NAMED)) == (FBF_CUT | FBF_NAMED) &&
	    f->name_at + f->name_max < f->len)
		e->flags &= ~FBF_CUT;
	if (e->flags & (FBF_MALFORMED | FBF_BAD_NAME | FBF_CUT | FBF_NO_NAME)) {
		/* no Host: which host's rules apply cannot be told */
		e->reason = CNR_UNREAD_REQ;
	} else if (e->flags & FBF_LITERAL) {
		return VERDICT_ALLOW; /* an address: the connection was judged by it */
	} else {
		r = http_req_admit(f, 0, HJ_ANY_PORT);
		if (r == HJ_NO_NAME)
			e->reason = hj_host_is_sni(f, ssl) ? CNR_NONE : CNR_HOST_MISMATCH;
		else
			e->reason = r;
		if (e->reason == CNR_NONE)
			return VERDICT_ALLOW;
	}
	return c->mode == MODE_ENFORCE ? VERDICT_DENY : VERDICT_AUDIT;
}

/* A slot of fb_scratch other than the egress hook's: NULL when all are busy on this CPU. */
static __always_inline struct fb *hj_slot(void)
{
	for (u32 s = 1; s < FB_SLOTS; s++) {
		struct fb *f = bpf_map_lookup_elem(&fb_scratch, &s);

		if (!f)
			continue;
		if (__sync_fetch_and_add(&f->busy, 1) == 0) {
			f->slot = s;
			return f;
		}
		__sync_fetch_and_add(&f->busy, -1);
	}
	return NULL;
}

/* Records a request that is not allowed; in enforce mode (and for a blocked name in every
 * mode) stops the process first. */
/* Returns whether the writing process was stopped. */
static __always_inline bool hj_refuse(struct fb *f, u64 ssl, u8 verdict)
{
	struct ev_conn_name *e = &f->ev;

	fill_hdr(&e->h, EV_HTTP_VERDICT);
	e->cookie = ssl;
	e->family = 0;
	e->dport = e->sport = 0;
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	__builtin_memset(e->saddr, 0, sizeof(e->saddr));
	e->verdict = verdict;
	e->flags |= FBF_IN_TLS;
	if (refused(verdict) && !bpf_send_signal(9 /* SIGKILL */))
		e->flags |= FBF_STOPPED;
	if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_FORCE_WAKEUP))
		count_lost(EV_HTTP_VERDICT);
	return e->flags & FBF_STOPPED;
}

/* A write that cannot be judged (its bytes unreadable, no free slot): in enforce mode with a
 * policy the process is stopped, the request unseen; elsewhere it goes, counted as lost. */
static __always_inline void hj_unjudged(const struct rw_config *c)
{
	count_lost(EV_HTTP_VERDICT);
	if (c && c->policy && c->mode == MODE_ENFORCE)
		bpf_send_signal(9 /* SIGKILL */);
}

/* A byte of an HTTP token (RFC 9110 5.6.2): what a method is made of. */
static __always_inline bool hj_tchar(u8 c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
	       c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' ||
	       c == '~';
}

/* The token the write starts with: its length in f->seen. A step, not a loop here: the length
 * comes back from memory, so what follows is verified once, not once per length. */
FB_STEP_N(hj_token_step, FB_BATCH)
{
	if (i >= f->len || !hj_tchar(fb_u8(f, i)))
		return 1;
	f->seen = i + 1;
	return 0;
}

/* The first line of the write: does it say " HTTP/" (f->seen = 1)? */
FB_STEP_N(hj_line_step, FB_BATCH)
{
	if (i + 6 > f->len || fb_u8(f, i) == '\n')
		return 1;
	if (fb_u8(f, i) == ' ' && fb_u8(f, i + 1) == 'H' && fb_u8(f, i + 2) == 'T' &&
	    fb_u8(f, i + 3) == 'T' && fb_u8(f, i + 4) == 'P' && fb_u8(f, i + 5) == '/') {
		f->seen = 1;
		return 1;
	}
	return 0;
}

/*
 * A write the parser did not read as a whole request line, yet that a server could take for a
 * request: a token and a space first (a method), then either a first line that names a version
 * (" HTTP/": a method too long or in small letters, a target with bytes no target has), or a
 * method of HTTP_METHODS and a target ("GET /x" with a newline in the target, or HTTP/0.9).
 * Such a write is judged unreadable, not passed as a body. A body whose first line reads so
 * ("GET /index.html" at the start of an uploaded log) is refused with it: fail closed.
 */
__noinline int hj_request_like(struct fb *f)
{
	u32 t;

	if (!f)
		return 1;
	/* HTTP/2's connection preface: judged at the ClientHello (hj_alpn_h2), not here */
	if (f->len >= 16 && fb_u8(f, 0) == 'P' && fb_u8(f, 1) == 'R' && fb_u8(f, 2) == 'I' &&
	    fb_u8(f, 3) == ' ' && fb_u8(f, 4) == '*' && fb_u8(f, 5) == ' ' && fb_u8(f, 6) == 'H' &&
	    fb_u8(f, 7) == 'T' && fb_u8(f, 8) == 'T' && fb_u8(f, 9) == 'P' && fb_u8(f, 10) == '/' &&
	    fb_u8(f, 11) == '2' && fb_u8(f, 12) == '.' && fb_u8(f, 13) == '0' &&
	    fb_u8(f, 14) == '\r' && fb_u8(f, 15) == '\n')
		return 0;
	f->seen = 0;
	FB_LOOP(64, hj_token_step, f);
	t = f->seen;
	if (!t || t + 2 > f->len || fb_u8(f, t) != ' ')
		return 0;
	f->seen = 0;
	FB_LOOP(FB_CAP, hj_line_step, f);
	if (f->seen)
		return 1;
	if (t != f->ev.method_len || !hj_method_bit(f))
		return 0;
	return fb_u8(f, t + 1) == '/' || fb_u8(f, t + 1) == '*' ||
	       (t + 5 <= f->len && fb_lower(fb_u8(f, t + 1)) == 'h' &&
		fb_lower(fb_u8(f, t + 2)) == 't' && fb_lower(fb_u8(f, t + 3)) == 't' &&
		fb_lower(fb_u8(f, t + 4)) == 'p');
}

/* The first bytes of a write, read once for the judge and the head test after it (tls.bpf.h):
 * ok when first[0, min(num, 16)) holds them. */
struct hj_lead {
	u8 b[16];
	bool ok;
};

/* Called first in the SSL_write probe, for a process in scope: SSL_write(ssl, buf, num) or
 * SSL_write_ex(ssl, buf, num, written), and gnutls_record_send's. True when it stopped the
 * process: the request never leaves, so no `http` line says it did (the `http_verdict` line
 * says what happened). pre gets the write's first bytes when it read them. */
static __always_inline bool http_judge(u64 ssl, u64 buf, u64 num, struct hj_lead *pre)
{
	struct rw_config *c;
	u8 *first = pre->b;
	struct fb *f;
	bool stopped = false;
	u32 n;
	u8 v;

	if (!buf || !num || !have_bpf_loop)
		return false;
	c = cfg();
	/* whole-job mode: the CI runner's own requests are its control plane, allowed as its
	 * connections are (bpf/skb.bpf.h runner_socket) */
	if (c && c->runner_tgid && c->runner_tgid == bpf_get_current_pid_tgid() >> 32)
		return false;
	hj_sni_used(ssl);
	n = num < sizeof(pre->b) ? (u32)num : sizeof(pre->b); /* HTTP/0.9's "GET /\r\n" is 7 */
	asm volatile("" : "+r"(n));
	n = ((n - 1) & (sizeof(pre->b) - 1)) + 1;
	if (bpf_probe_read_user(first, n, (const void *)buf)) {
		hj_unjudged(c);
		return false;
	}
	pre->ok = true;
	/* a request starts with a method, a token: anything else (most bodies, HTTP/2 frames:
	 * see hj_alpn_h2) passes without a copy */
	if (!hj_tchar(first[0]))
		return false;
	f = hj_slot();
	if (!f) {
		hj_unjudged(c);
		return false;
	}
	n = num > FB_CAP ? FB_CAP : (u32)num;
	asm volatile("" : "+r"(n));
	n = ((n - 1) & FB_MASK) + 1;
	if (bpf_probe_read_user(f->buf, n, (const void *)buf)) {
		__sync_fetch_and_add(&f->busy, -1);
		hj_unjudged(c);
		return false;
	}
	f->len = n;
	if (fb_parse_any(f) == FB_HTTP && f->hdr_end) {
		v = hj_tls_verdict(f, c, ssl);
	} else if (f->ev.app != FB_TLS && hj_request_like(f)) {
		f->ev.app = FB_HTTP;
		f->ev.flags |= FBF_MALFORMED;
		v = hj_tls_verdict(f, c, ssl);
	} else {
		v = VERDICT_ALLOW; /* a body, or the rest of a request already judged */
	}
	if (v != VERDICT_ALLOW)
		stopped = hj_refuse(f, ssl, v);
	__sync_fetch_and_add(&f->busy, -1);
	return stopped;
}
