/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: HTTP inside TLS, read where the client hands it to
 * OpenSSL (libssl.so.3) before encryption, and where OpenSSL hands back what
 * it decrypted: uprobes on SSL_write/SSL_write_ex (entry: the buffer is the
 * plaintext about to be sent) and SSL_read/SSL_read_ex (entry notes the
 * buffer, return reads what was put in it). The probes are on the library
 * file, for every process that maps it; everything outside the job costs the
 * trap and one scope check. Only heads are sent (an HTTP/1.x request or
 * status line, HTTP/2's preface), their first TLS_HEAD bytes: bodies stay in
 * the process. User space (src/observe/tlshttp.c) pairs them.
 * Hooks: uprobe/SSL_write (also SSL_write_ex), uprobe/SSL_read (also
 * SSL_read_ex), uretprobe/SSL_read, uretprobe/SSL_read_ex.
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

/* The emission path of every TLS library's probes (gnutls.bpf.h too): a head, sent with the
 * library that saw it. Returns before any map work when the buffer is not a head. */
static __always_inline void tls_data_lib(u64 ssl, u64 buf, s64 len, u32 dir, u32 lib)
{
	u32 zero = 0, n;
	u8 first[8];
	struct tls_scratch *s;

	if (len < 8 || !buf)
		return;
	if (bpf_probe_read_user(first, sizeof(first), (const void *)buf) || !http_head(first, dir))
		return;
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

static __always_inline void tls_data(u64 ssl, u64 buf, s64 len, u32 dir)
{
	tls_data_lib(ssl, buf, len, dir, TLSL_OPENSSL);
}

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
int BPF_KPROBE(rw_ssl_write, void *ssl, const void *buf, u64 num)
{
	u64 ck = have_attach_cookie ? bpf_get_attach_cookie(ctx) : 0;
	u32 lib = (u32)(ck & TLSW_LIB);
	s64 len = (ck & TLSW_SIZE_T) ? (s64)num : (s64)(s32)num;

	if (lib >= TLSL_MAX)
		return 0;
	if (http_judge((u64)ssl, (u64)buf, (u64)len)) /* methods, paths, Host: httpjudge.bpf.h */
		return 0;
	if (!in_scope())
		return 0;
	tls_announce((u64)ssl, lib);
	secret_scan_tls((u64)ssl, (u64)buf, len); /* secrets: secretscan.bpf.h */
	tls_data_lib((u64)ssl, (u64)buf, len, TLSD_WRITE, lib);
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
