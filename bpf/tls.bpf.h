/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: HTTP inside TLS, read where the client hands it to
 * OpenSSL (libssl.so.3) before encryption, and where OpenSSL hands back what
 * it decrypted: uprobes on SSL_write/SSL_write_ex (entry: the buffer is the
 * plaintext about to be sent) and SSL_read/SSL_read_ex (entry notes the
 * buffer, return reads what was put in it). The probes are on the library
 * file, for every process that maps it; everything outside the job costs the
 * trap and one scope check. Heads are sent (an HTTP/1.x request or status
 * line, HTTP/2's preface), their first TLS_HEAD bytes; user space
 * (src/observe/tlshttp.c) pairs them. More is streamed only as far as user
 * space asks per SSL object (map tls_want: a capture level's headers and
 * bodies, an HTTP/2 connection's frames), in chunks (ev_tls_chunk).
 * Hooks: uprobe/SSL_write (also SSL_write_ex), uprobe/SSL_read (also
 * SSL_read_ex), uretprobe/SSL_read, uretprobe/SSL_read_ex, uretprobe/SSL_write,
 * uretprobe/SSL_write_ex (streaming what was written).
 */

/* An SSL_read in flight on a thread: its arguments, for the return probe. */
struct ssl_read_args {
	u64 ssl;
	u64 buf;
	u64 readbytes; /* SSL_read_ex's size_t *; unused for SSL_read */
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct ssl_read_args);
} ssl_reads SEC(".maps");

/* SSL objects whose first SSL_write was seen: each is announced once (an ev_tls_data without
 * data), so user space can tell a TLS connection whose content passed through these probes
 * from one that did not (another TLS library, a static OpenSSL). */
struct ssl_key {
	u64 ssl;
	u32 tgid;
	u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ssl_key);
	__type(value, u32);
} ssl_seen SEC(".maps");

struct tls_scratch {
	u64 busy;
	struct ev_tls_data ev;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct tls_scratch);
} tls_scratch SEC(".maps");

/* A request line's method and space, a status line, or HTTP/2's preface: what is sent. */
static __always_inline bool http_head(const u8 *b, u32 dir)
{
	if (dir == TLSD_READ)
		return b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' && b[4] == '/' &&
		       b[5] == '1' && b[6] == '.';
	for (int i = 0; i < 8; i++) {
		if (b[i] == ' ')
			return i >= 3;
		if (b[i] < 'A' || b[i] > 'Z')
			return false;
	}
	return false;
}

/* The head record: the first TLS_HEAD bytes of a call that starts a head, with the library
 * that saw it. */
static __always_inline void tls_head_emit(u64 ssl, u64 buf, s64 len, u32 dir, u32 lib)
{
	u32 zero = 0, n;
	struct tls_scratch *s;

	s = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!s)
		return;
	if (__sync_fetch_and_add(&s->busy, 1) != 0) {
		__sync_fetch_and_add(&s->busy, -1);
		count_lost(EV_TLS_DATA);
		return;
	}
	fill_hdr(&s->ev.h, EV_TLS_DATA);
	s->ev.ssl = ssl;
	s->ev.dir = dir;
	s->ev.lib = lib;
	s->ev.len = len > 0xffffffff ? 0xffffffff : (u32)len;
	n = len > TLS_HEAD ? TLS_HEAD : (u32)len;
	asm volatile("" : "+r"(n));
	n = ((n - 1) & (TLS_HEAD - 1)) + 1;
	if (bpf_probe_read_user(s->ev.data, n, (const void *)buf)) {
		__sync_fetch_and_add(&s->busy, -1);
		return;
	}
	s->ev.data_len = n;
	emit(&s->ev, sizeof(s->ev) - TLS_HEAD + n, EV_TLS_DATA);
	__sync_fetch_and_add(&s->busy, -1);
}

/* The call's first 8 bytes (len >= 8) into first: from what the request judge already read
 * of a write (lead, NULL for none), else from the buffer. */
static __always_inline bool tls_first8(u8 *first, u64 buf, const struct hj_lead *lead)
{
	if (lead && lead->ok) {
		__builtin_memcpy(first, lead->b, 8);
		return true;
	}
	return !bpf_probe_read_user(first, 8, (const void *)buf);
}

/* The emission path of every TLS library's probes (gnutls.bpf.h too): a head, sent with the
 * library that saw it. Returns before any map work when the buffer is not a head. */
static __always_inline void tls_data_lib(u64 ssl, u64 buf, s64 len, u32 dir, u32 lib,
					 const struct hj_lead *lead)
{
	u8 first[8];

	if (len < 8 || !buf)
		return;
	if (!tls_first8(first, buf, lead) || !http_head(first, dir))
		return;
	tls_head_emit(ssl, buf, len, dir, lib);
}

/* ---- streaming for capture levels and HTTP/2 (user space: src/observe/capture.c) ---- */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TLS_WANT_MAX);
	__type(key, struct tls_want_key);
	__type(value, struct tls_want);
} tls_want SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct tls_capcfg);
} tls_capcfg SEC(".maps");

struct tls_chunk_scratch {
	u64 busy;
	struct ev_tls_chunk ev;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct tls_chunk_scratch);
} tls_chunk_scratch SEC(".maps");

/* What user space wants of this call. A head re-arms its direction; the first head of an SSL
 * object user space has not seen yet gets the job's pre-arm (tls_capcfg), so the bytes that
 * follow a request head at once (its body) are not lost while user space picks the level.
 * HTTP/2's preface arms both directions for every byte: HPACK needs every header block. */
static __always_inline struct tls_want *tls_want_of(u64 ssl, u32 d, bool head, bool preface)
{
	struct tls_want_key k = {.ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
	struct tls_want *w = bpf_map_lookup_elem(&tls_want, &k), n = {};
	struct tls_capcfg *c;
	u32 zero = 0;

	if (!head || (w && !preface)) {
		if (w && head && !w->h2)
			w->left[d] = w->arm[d];
		return w;
	}
	c = bpf_map_lookup_elem(&tls_capcfg, &zero);
	if (!c)
		return w;
	if (preface) {
		if (!c->h2_bytes)
			return w;
		n.h2 = 1;
		n.left[0] = n.left[1] = c->h2_bytes;
	} else {
		if (!c->arm[0] && !c->arm[1])
			return NULL;
		n.arm[0] = c->arm[0];
		n.arm[1] = c->arm[1];
		n.left[d] = n.arm[d];
	}
	bpf_map_update_elem(&tls_want, &k, &n, BPF_ANY);
	return bpf_map_lookup_elem(&tls_want, &k);
}

/* One chunk of the call's buffer: chunk i of [0, n). 1 stops the walk. */
struct tls_chunk_walk {
	struct tls_chunk_scratch *s;
	u64 buf;
	u32 n;
};

static __always_inline long tls_chunk_one(u32 i, struct tls_chunk_walk *w)
{
	struct tls_chunk_scratch *s = w->s;
	u32 off = i * TLS_CHUNK, m;

	if (i >= TLS_CHUNKS_PER_CALL || off >= w->n)
		return 1;
	m = w->n - off;
	if (m > TLS_CHUNK)
		m = TLS_CHUNK;
	asm volatile("" : "+r"(m));
	m = ((m - 1) & (TLS_CHUNK - 1)) + 1;
	s->ev.off = off;
	if (bpf_probe_read_user(s->ev.data, m, (const void *)(w->buf + off))) {
		/* an unreadable page: say where the stream breaks */
		s->ev.data_len = 0;
		s->ev.flags |= TLSC_CUT;
		emit(&s->ev, sizeof(s->ev) - TLS_CHUNK, EV_TLS_CHUNK);
		return 1;
	}
	s->ev.data_len = m;
	if (i == TLS_CHUNKS_PER_CALL - 1 && off + m < w->n)
		s->ev.flags |= TLSC_CUT;
	emit(&s->ev, sizeof(s->ev) - TLS_CHUNK + m, EV_TLS_CHUNK);
	return 0;
}

static long tls_chunk_step(u32 i, void *ctx)
{
	return tls_chunk_one(i, ctx);
}

/* Sends bytes [0, n) of the call's buffer as chunks; past TLS_CHUNKS_PER_CALL chunks the rest
 * is flagged, not sent. bpf_loop where there is one: its step is verified once, not per
 * chunk, which keeps the three programs that stream cheap to load. */
static __always_inline void tls_chunks(struct tls_chunk_scratch *s, u64 buf, u32 n)
{
	struct tls_chunk_walk w = {.s = s, .buf = buf, .n = n};

	if (have_bpf_loop) {
		bpf_loop(TLS_CHUNKS_PER_CALL, tls_chunk_step, &w, 0);
		return;
	}
	for (int i = 0; i < TLS_CHUNKS_PER_CALL; i++)
		if (tls_chunk_one(i, &w))
			break;
}

/* Sends what user space still wants of the call's bytes [0, len) (what the call moved). */
static __always_inline void tls_send(u64 ssl, u64 buf, s64 len, u32 dir, bool head)
{
	struct tls_want_key k = {.ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
	u32 d = (dir - 1) & 1, zero = 0, left, n;
	struct tls_chunk_scratch *s;
	struct tls_want *w = bpf_map_lookup_elem(&tls_want, &k);

	if (!w || len <= 0)
		return;
	left = w->left[d];
	if (!left)
		return;
	n = len > left ? left : (u32)len;
	w->left[d] = left - n;
	s = bpf_map_lookup_elem(&tls_chunk_scratch, &zero);
	if (!s)
		return;
	if (__sync_fetch_and_add(&s->busy, 1) != 0) {
		__sync_fetch_and_add(&s->busy, -1);
		count_lost(EV_TLS_CHUNK);
		return;
	}
	fill_hdr(&s->ev.h, EV_TLS_CHUNK);
	s->ev.ssl = ssl;
	s->ev.dir = dir;
	s->ev.call_len = len > 0xffffffff ? 0xffffffff : (u32)len;
	s->ev.flags = (head ? TLSC_HEAD : 0) | (w->h2 ? TLSC_H2 : 0);
	tls_chunks(s, buf, n);
	__sync_fetch_and_add(&s->busy, -1);
}

/* A call's start: its head record when it starts a head, and the SSL object (re-)armed.
 * Returns whether user space wants bytes of this direction now. */
static __always_inline bool tls_begin(u64 ssl, u64 buf, s64 len, u32 dir, bool *head,
				      const struct hj_lead *lead)
{
	u8 first[8];
	bool preface = false;
	struct tls_want *w;

	*head = false;
	if (len <= 0 || !buf)
		return false;
	if (len >= 8 && tls_first8(first, buf, lead) && http_head(first, dir)) {
		*head = true;
		preface = dir == TLSD_WRITE && first[0] == 'P' && first[1] == 'R' &&
			  first[2] == 'I' && first[3] == ' ';
		tls_head_emit(ssl, buf, len, dir, TLSL_OPENSSL);
	}
	w = tls_want_of(ssl, (dir - 1) & 1, *head, preface);
	return w && w->left[(dir - 1) & 1];
}

/* What SSL_read put in the buffer. */
static __always_inline void tls_data(u64 ssl, u64 buf, s64 len, u32 dir)
{
	bool head;

	if (tls_begin(ssl, buf, len, dir, &head, NULL))
		tls_send(ssl, buf, len, dir, head);
}

/* An SSL_write in flight on a thread, when its bytes are wanted: they are streamed at its
 * return, as many as it wrote. At entry they would not be: a write that returns
 * SSL_ERROR_WANT_WRITE is called again with the same bytes, and a partial write sends the
 * rest in the next call, so an entry copy would stream them twice. */
struct ssl_write_args {
	u64 ssl;
	u64 buf;
	u64 written; /* SSL_write_ex's size_t *; unused for SSL_write */
	u64 head;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct ssl_write_args);
} ssl_writes SEC(".maps");

/* A connection's first write through a library's probes, announced once per (process,
 * connection object) so user space can tell TLS whose content was seen from TLS that was not. */
static __always_inline void tls_announce(u64 ssl, u32 lib)
{
	struct ssl_key k = {.ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
	struct ev_tls_data_head ev = {.ssl = ssl, .dir = TLSD_WRITE, .lib = lib};
	u32 one = 1;

	if (bpf_map_lookup_elem(&ssl_seen, &k))
		return;
	bpf_map_update_elem(&ssl_seen, &k, &one, BPF_ANY);
	fill_hdr(&ev.h, EV_TLS_DATA);
	emit(&ev, sizeof(ev), EV_TLS_DATA);
}

/* SSL_write(ssl, buf, num), SSL_write_ex(ssl, buf, num, written) and
 * gnutls_record_send(session, data, size): the plaintext before it is encrypted. One program
 * for them all, told apart by the attach cookie (events.h TLSW_*): the request judge is the
 * largest part of the verifier's work, paid once. */
SEC("uprobe/SSL_write")
int BPF_KPROBE(rw_ssl_write, void *ssl, const void *buf, u64 num, void *written)
{
	u64 ck = have_attach_cookie ? bpf_get_attach_cookie(ctx) : 0;
	u32 lib = (u32)(ck & TLSW_LIB), tid = (u32)bpf_get_current_pid_tgid();
	s64 len = (ck & TLSW_SIZE_T) ? (s64)num : (s64)(s32)num;
	struct hj_lead lead = {};
	bool head;

	if (lib >= TLSL_MAX || !in_scope())
		return 0;
	/* methods, paths, Host (httpjudge.bpf.h); it reads the first bytes the head test uses */
	if (http_judge((u64)ssl, (u64)buf, (u64)len, &lead))
		return 0;
	tls_announce((u64)ssl, lib);
	secret_scan_tls((u64)ssl, (u64)buf, len); /* secrets: secretscan.bpf.h */
	if (lib != TLSL_OPENSSL) { /* heads only: the streaming's return probes are OpenSSL's */
		tls_data_lib((u64)ssl, (u64)buf, len, TLSD_WRITE, lib, &lead);
		return 0;
	}
	if (tls_begin((u64)ssl, (u64)buf, len, TLSD_WRITE, &head, &lead)) {
		struct ssl_write_args a = {
		    .ssl = (u64)ssl, .buf = (u64)buf, .written = (u64)written, .head = head};

		bpf_map_update_elem(&ssl_writes, &tid, &a, BPF_ANY);
	}
	return 0;
}

static __always_inline struct ssl_write_args *ssl_write_take(struct ssl_write_args *out)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct ssl_write_args *a = bpf_map_lookup_elem(&ssl_writes, &tid);

	if (!a)
		return NULL;
	*out = *a;
	bpf_map_delete_elem(&ssl_writes, &tid);
	return out;
}

/* SSL_write returns the bytes written (<= 0: none yet, the call is repeated). */
SEC("uretprobe/SSL_write")
int BPF_KRETPROBE(rw_ssl_write_ret, int ret)
{
	struct ssl_write_args a;

	if (!ssl_write_take(&a) || ret <= 0)
		return 0;
	tls_send(a.ssl, a.buf, ret, TLSD_WRITE, a.head);
	return 0;
}

/* SSL_write_ex returns 1 and puts the bytes written in *written. */
SEC("uretprobe/SSL_write_ex")
int BPF_KRETPROBE(rw_ssl_write_ex_ret, int ret)
{
	struct ssl_write_args a;
	u64 n = 0;

	if (!ssl_write_take(&a) || ret != 1 || !a.written)
		return 0;
	if (bpf_probe_read_user(&n, sizeof(n), (const void *)a.written))
		return 0;
	tls_send(a.ssl, a.buf, (s64)n, TLSD_WRITE, a.head);
	return 0;
}

/* Notes a read's arguments for its return probe. The thread's slot is rewritten in place, and
 * emptied (buf 0) by the return probe rather than deleted: a hash update and a delete on every
 * read cost more than the rest of the probes together. A slot the LRU recycles for another
 * thread meanwhile at worst points the return probe at a buffer that holds no head. */
static __always_inline void ssl_read_note(u64 ssl, u64 buf, u64 readbytes)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct ssl_read_args *a = bpf_map_lookup_elem(&ssl_reads, &tid);
	struct ssl_read_args n = {.ssl = ssl, .buf = buf, .readbytes = readbytes};

	if (!a) {
		bpf_map_update_elem(&ssl_reads, &tid, &n, BPF_ANY);
		return;
	}
	a->ssl = ssl;
	a->readbytes = readbytes;
	a->buf = buf;
}

SEC("uprobe/SSL_read")
int BPF_KPROBE(rw_ssl_read, void *ssl, void *buf, s64 num, void *readbytes)
{
	if (!in_scope())
		return 0;
	ssl_read_note((u64)ssl, (u64)buf, (u64)readbytes);
	return 0;
}

static __always_inline struct ssl_read_args *ssl_read_take(struct ssl_read_args *out)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct ssl_read_args *a = bpf_map_lookup_elem(&ssl_reads, &tid);

	if (!a || !a->buf)
		return NULL;
	*out = *a;
	a->buf = 0;
	return out;
}

/* SSL_read returns the bytes read (<= 0: none). */
SEC("uretprobe/SSL_read")
int BPF_KRETPROBE(rw_ssl_read_ret, int ret)
{
	struct ssl_read_args a;

	if (!ssl_read_take(&a) || ret <= 0)
		return 0;
	tls_data(a.ssl, a.buf, ret, TLSD_READ);
	return 0;
}

/* SSL_read_ex returns 1 and puts the bytes read in *readbytes. */
SEC("uretprobe/SSL_read_ex")
int BPF_KRETPROBE(rw_ssl_read_ex_ret, int ret)
{
	struct ssl_read_args a;
	u64 n = 0;

	if (!ssl_read_take(&a) || ret != 1 || !a.readbytes)
		return 0;
	if (bpf_probe_read_user(&n, sizeof(n), (const void *)a.readbytes))
		return 0;
	tls_data(a.ssl, a.buf, (s64)n, TLSD_READ);
	return 0;
}
