/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: secrets leaving. What a job process hands to
 * OpenSSL's SSL_write (the plaintext, before encryption) and every plain TCP
 * segment it sends are scanned, whole and joined to the end of what the same
 * connection sent before (see secret_tail), for the job's own secrets (the values
 * of its secret environment variables and the tokens of the credential files
 * it read: src/secrets/ writes them here) and for well-known token formats.
 * A secret about to leave for a destination not allowed to receive it is
 * stopped in enforce mode: the writer is killed from the uprobe (SIGKILL is
 * taken before the process returns to user space, so the library never
 * writes), a plain segment is dropped and its connection reset as
 * conn.bpf.h does for refused names. Observe mode records it.
 *
 * The scan, per position of the data: a 2-byte window is looked up in a
 * bitmap (secret_pairs: the first two bytes of every anchor and format
 * prefix), which almost every position fails; a hit is a candidate, looked up
 * by its 8 bytes in secret_anchors (a job secret's first bytes) and compared
 * with the format prefixes; a hit there is verified in full (the FNV-1a hash
 * of the secret's first SECRET_VMAX bytes, or the format's own shape). The
 * data is read in chunks (bpf_loop: one step verified once, whatever the
 * length); each step finds at most SCAN_CANDS candidates before it verifies
 * them, so the verifier sees one verification per candidate slot, not one
 * per byte.
 *
 * The destination is the name the request names: the Host header of the
 * HTTP/1.x request head that starts a write or segment, remembered per SSL
 * object or socket for the writes that follow (bodies). Without one (HTTP/2,
 * a protocol without names) only a secret allowed to go anywhere may leave.
 * Hooks: none of its own; called from rw_ssl_write (tls.bpf.h) and on_skb
 * (skb.bpf.h).
 */

#define SCAN_STRIDE	  3			     /* a pair is looked up at every third byte */
#define SCAN_CHUNK	  64			     /* positions looked up per step */
#define SCAN_BYTES	  (SCAN_STRIDE * SCAN_CHUNK) /* starts covered per step */
#define SCAN_CANDS	  8    /* candidates noted per step before they are verified */
#define SCAN_HEAD	  1024 /* bytes of a request head searched for its Host */
#define SCAN_TASK_SLOTS	  4    /* scratch per CPU for task context (uprobes; preemptible) */
#define SCAN_SOFTIRQ_SLOT SCAN_TASK_SLOTS
#define SCAN_FMT_MAX	  64	      /* bytes of a format token looked at */
#define SCAN_MAX_STEPS	  (1 << 23)   /* bpf_loop's own limit */
#define SCAN_TAIL	  SECRET_VMAX /* bytes of a connection's stream kept for its next write */

/* Where a scan reads its data: a scan is instantiated once per source (each a constant). */
enum scan_src {
	SRC_USER, /* user memory at s->ubuf (SSL_write's buffer) */
	SRC_SKB,  /* an skb's payload from s->base */
	SRC_MEM,  /* a junction, in s->buf from its start */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct secret_cfg);
} secret_cfg_map SEC(".maps");

struct secret_pairs_v {
	u64 w[SECRET_PAIRS];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct secret_pairs_v);
} secret_pairs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SECRETS_MAX);
	__type(key, u64);
	__type(value, struct secret_anchor);
} secret_anchors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SECRET_TO_MAX);
	__type(key, struct secret_to_key);
	__type(value, u8);
} secret_to SEC(".maps");

/* A destination name and the hashes it is judged by (see struct secret_to_key). */
struct secret_dest {
	u64 rhash;
	u64 suf[SECRET_SUFFIXES];
	u32 nsuf;
	u16 len;
	u16 _pad;
	char host[SECRET_HOST];
};
/* The destination of the writes that follow a request head, per SSL object or socket. */
struct secret_conn_key {
	u64 conn;
	u32 tgid; /* 0 for sockets (a cookie is unique machine-wide) */
	u32 chan;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct secret_conn_key);
	__type(value, struct secret_dest);
} secret_dests SEC(".maps");

/* Repeats of one secret from one process to one destination are recorded when their count
 * reaches 1, 2, 4, 8, ... (observe mode: an upload loop makes a few records, not millions). */
struct secret_seen_key {
	u64 rhash;
	u32 tgid;
	u32 id;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct secret_seen_key);
	__type(value, u64);
} secret_seen SEC(".maps");

/*
 * Secrets split across writes. Hostile code can write a token in pieces (SSL_write("ghp_ab"),
 * SSL_write("cd..."), or two send()s with TCP_NODELAY: two segments), each harmless alone. So
 * each connection keeps the last SCAN_TAIL bytes it sent (a secret is verified by its first
 * SECRET_VMAX bytes, so a split one starts within them), and each write or segment is also
 * scanned as a junction: those bytes, then its own first SCAN_TAIL - 1, for matches that start
 * in the kept bytes and end in the new ones. A secret cut in any number of pieces, down to a
 * byte each, is found at the write that completes it: stopped there in enforce mode, as a whole
 * one is. What earlier writes sent is gone; those were pieces, not the secret.
 */
struct secret_tail {
	u32 len;  /* bytes kept in b: the stream's last, oldest first */
	u32 next; /* plain TCP: the sequence number of the byte after them */
	u8 b[SCAN_TAIL];
};
/* Per SSL object (or GnuTLS session) and process. LRU: a process can make many; see
 * docs/policy.md for what evicting one costs. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct secret_conn_key);
	__type(value, struct secret_tail);
} secret_tls_tails SEC(".maps");
/* Per socket, freed with it: nothing for a job to evict by opening more. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct secret_tail);
} secret_sk_tails SEC(".maps");

struct sscan {
	u64 busy;
	u64 hash; /* secret_fnv's result */
	u64 ubuf; /* user data: its address */
	u32 base; /* skb data: the payload's offset */
	u32 len;  /* bytes of data */
	u32 formats;
	u32 v_i;     /* the candidate being verified: its index in buf */
	u32 v_a;     /* and its position in the data */
	u32 ncand;   /* candidates noted by this step */
	u32 end;     /* the starts this step covered */
	u32 lim;     /* the step's bytes less one */
	u32 host_at; /* secret_host: where the Host header's value starts, 0: none */
	u32 pos;     /* the scan: next position */
	u32 lead;    /* the step: bytes read before pos (the word-start check) */
	u32 found;   /* the id of the first secret not allowed to go where it goes, 0: none */
	u32 at;	     /* where it starts */
	u32 failed;  /* bytes that could not be read */
	u32 have_dest;
	u32 jtail; /* a junction scan: the kept bytes before the write's (0: a write's own scan) */
	u32 jlen;  /* this write's junction: its bytes (0: none to scan) */
	u32 split; /* the match found began this many bytes before the write (0: in it) */
	u32 seq;   /* plain TCP: the segment's first sequence number */
	struct secret_conn_key ck; /* the connection's (here: the egress hook's stack is full) */
	u32 cand[SCAN_CANDS];	   /* their positions in buf */
	struct secret_dest dest;
	struct ev_secret ev;
	struct secret_tail tail; /* the connection's, after this write */
	u8 vbuf[SECRET_VMAX];
	/* a step's bytes, a request head, or a junction (kept bytes, then new ones) */
	u8 buf[SCAN_HEAD + 16] __attribute__((aligned(8)));
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCAN_TASK_SLOTS + 1);
	__type(key, u32);
	__type(value, struct sscan);
} sscan_slots SEC(".maps");

/* One scan: the bpf_loop steps' context (constant; the state is in s, see host_find). */
struct scan_ctx {
	struct sscan *s;
	struct __sk_buff *skb; /* SRC_SKB's */
	const struct secret_pairs_v *pairs;
	u32 len;
	u32 stop; /* the starts scanned: [0, stop) (a junction's are in its kept bytes) */
};

/* A read the compiler may not replace by the value it last stored there: values that leave a
 * loop go through memory so that the verifier meets one state after the loop. */
#define SCAN_READ(v) (*(volatile typeof(v) *)&(v))

#define FNV_OFF 0xcbf29ce484222325ULL
#define FNV_MUL 0x100000001b3ULL

/* Global, verified once: the FNV-1a hash of s->vbuf's first n bytes into s->hash. */
__noinline int secret_fnv(struct sscan *s, u32 n)
{
	u64 h = FNV_OFF;

	if (!s)
		return 0;
	for (u32 i = 0; i < SECRET_VMAX; i++) {
		if (i >= n)
			break;
		h ^= s->vbuf[i];
		h *= FNV_MUL;
	}
	s->hash = h;
	return 1;
}

static __always_inline bool fmt_alnum(u8 c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static __always_inline bool fmt_word(u8 c)
{
	return fmt_alnum(c) || c == '_' || c == '-';
}

/* Byte classes of the token formats, one bit each (the cls of fmt_run). */
#define FMT_ALNUM	 0 /* letters and digits */
#define FMT_ALNUM_US	 1 /* and '_' */
#define FMT_WORD	 2 /* and '_' and '-' */
#define FMT_UPPER_DIGITS 3 /* capitals and digits */
static const u8 fmt_classes[256] = {
    ['0' ... '9'] = 1 << FMT_ALNUM | 1 << FMT_ALNUM_US | 1 << FMT_WORD | 1 << FMT_UPPER_DIGITS,
    ['A' ... 'Z'] = 1 << FMT_ALNUM | 1 << FMT_ALNUM_US | 1 << FMT_WORD | 1 << FMT_UPPER_DIGITS,
    ['a' ... 'z'] = 1 << FMT_ALNUM | 1 << FMT_ALNUM_US | 1 << FMT_WORD,
    ['_'] = 1 << FMT_ALNUM_US | 1 << FMT_WORD,
    ['-'] = 1 << FMT_WORD,
};

/* Global, verified once (inlined at each of its six calls it was the largest part of the
 * verifier's work on the scan): the run of bytes of class cls at s->vbuf[from..n). A table
 * lookup, not a chain of comparisons, so each byte is one path. */
__noinline int fmt_run(const struct sscan *s, u32 from, u32 n, u32 cls)
{
	u32 r = 0;

	if (!s)
		return 0;
	for (u32 i = 0; i < SCAN_FMT_MAX; i++) {
		u32 j = from + i;

		if (j >= n || j >= SCAN_FMT_MAX)
			break;
		asm volatile("" : "+r"(j)); /* the mask where the verifier sees it */
		if (!((fmt_classes[s->vbuf[j & (SCAN_FMT_MAX - 1)]] >> (cls & 7)) & 1))
			break;
		r++;
	}
	return r;
}

static __always_inline bool vb_is(const struct sscan *s, u32 at, const char *lit, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (s->vbuf[(at + i) & (SECRET_VMAX - 1)] != (u8)lit[i])
			return false;
	return true;
}

/* "PRIVATE KEY-----" compared as two words: a byte loop there was walked per byte and per
 * place the words may start. */
static const char pem_tail[16] __attribute__((aligned(8))) = "PRIVATE KEY-----";

static __always_inline u64 pem_word(u32 at)
{
	u64 w;

	__builtin_memcpy(&w, __builtin_assume_aligned(&pem_tail[at & 8], 8), sizeof(w));
	return w;
}

/* Eight bytes of s->vbuf from at (below SECRET_VMAX - 8), as pem_word loads them. */
static __always_inline u64 vb_word(const struct sscan *s, u32 at)
{
	u64 w;

	asm volatile("" : "+r"(at)); /* the mask where the verifier sees it */
	__builtin_memcpy(&w, &s->vbuf[at & (SECRET_VMAX / 2 - 1)], sizeof(w));
	return w;
}

/* Global, verified once: which token format starts s->vbuf (n bytes of it), 0 for none. The
 * shapes are the ones src/secrets/ gives Hyperscan: same prefixes, same lengths. */
__noinline int secret_format_at(struct sscan *s, u32 n, u32 formats)
{
	u32 r;

	if (!s || n < 10)
		return 0;
	if (s->vbuf[0] == 'g' && s->vbuf[1] == 'h' && s->vbuf[3] == '_' &&
	    (s->vbuf[2] == 'p' || s->vbuf[2] == 'o' || s->vbuf[2] == 'u' || s->vbuf[2] == 's' ||
	     s->vbuf[2] == 'r')) {
		r = fmt_run(s, 4, n, FMT_ALNUM);
		return (formats & (1 << SF_GITHUB)) && r >= 30 ? SF_GITHUB : 0;
	}
	if (vb_is(s, 0, "github_pat_", 11)) {
		r = fmt_run(s, 11, n, FMT_ALNUM_US);
		return (formats & (1 << SF_GITHUB)) && r >= 22 ? SF_GITHUB : 0;
	}
	if (vb_is(s, 0, "npm_", 4)) {
		r = fmt_run(s, 4, n, FMT_ALNUM);
		return (formats & (1 << SF_NPM)) && r >= 36 ? SF_NPM : 0;
	}
	if (s->vbuf[0] == 'A' && s->vbuf[2] == 'I' && s->vbuf[3] == 'A' &&
	    (s->vbuf[1] == 'K' || s->vbuf[1] == 'S')) {
		/* exactly 16 more: an access key id, not a word that starts like one */
		r = fmt_run(s, 4, n, FMT_UPPER_DIGITS);
		return (formats & (1 << SF_AWS)) && r == 16 && (n <= 20 || !fmt_alnum(s->vbuf[20]))
			   ? SF_AWS
			   : 0;
	}
	if (s->vbuf[0] == 'x' && s->vbuf[1] == 'o' && s->vbuf[2] == 'x' && s->vbuf[4] == '-' &&
	    (s->vbuf[3] == 'a' || s->vbuf[3] == 'b' || s->vbuf[3] == 'p' || s->vbuf[3] == 'r' ||
	     s->vbuf[3] == 's')) {
		r = fmt_run(s, 5, n, FMT_WORD);
		return (formats & (1 << SF_SLACK)) && r >= 10 ? SF_SLACK : 0;
	}
	if (vb_is(s, 0, "-----BEGIN ", 11) && (formats & (1 << SF_PRIVATE_KEY))) {
		/* "-----BEGIN [RSA |EC |DSA |OPENSSH |ENCRYPTED ]PRIVATE KEY-----" */
		for (u32 k = 11; k <= 21; k++) {
			if (k + 16 > n)
				break;
			if (vb_word(s, k) == pem_word(0) && vb_word(s, k + 8) == pem_word(8))
				return SF_PRIVATE_KEY;
		}
	}
	return 0;
}

/* Global, verified once: the Host header of the HTTP/1.x request head in s->buf (n bytes) into
 * s->dest: lower case, without port or trailing dot, and the hashes it is judged by (reversed
 * FNV-1a: the whole name's, and each parent's from its dot: ".b.test" of "a.b.test"). 1 when
 * there was one. */
/* A bpf_loop step's context holds only what does not change; what the steps find goes to the
 * per-CPU scratch. Stack slots a callback writes with new values each time keep the verifier
 * from seeing the steps converge (it walked the callback a million instructions' worth). */
struct host_find {
	struct sscan *s;
	u32 n;
};

/* One position of the head: the end of the head, or "\nHost:" (any case). */
static long host_find_step(u64 k, void *ctx)
{
	struct host_find *h = ctx;
	struct sscan *s = h->s;
	u32 i = (u32)k;

	if (!s || i + 6 >= h->n || i + 6 >= SCAN_HEAD)
		return 1;
	asm volatile("" : "+r"(i));
	i &= SCAN_HEAD - 1;
	if (s->buf[i] == '\r' && s->buf[i + 1] == '\n' && s->buf[i + 2] == '\r')
		return 1; /* the head ended without one */
	if (s->buf[i] == '\n' && (s->buf[i + 1] | 0x20) == 'h' && (s->buf[i + 2] | 0x20) == 'o' &&
	    (s->buf[i + 3] | 0x20) == 's' && (s->buf[i + 4] | 0x20) == 't' &&
	    s->buf[i + 5] == ':') {
		s->host_at = i + 6;
		return 1;
	}
	return 0;
}

/* The blanks before the Host's value: s->host_at moves past them. */
static long host_skip_step(u64 k, void *ctx)
{
	struct host_find *h = ctx;
	struct sscan *s = h->s;
	u32 j;

	(void)k;
	if (!s)
		return 1;
	j = s->host_at;
	if (j >= h->n || j >= SCAN_HEAD)
		return 1;
	asm volatile("" : "+r"(j));
	j &= SCAN_HEAD - 1;
	if (s->buf[j] != ' ' && s->buf[j] != '\t')
		return 1;
	s->host_at = j + 1;
	return 0;
}

/* Byte i of the Host's value into s->dest.host, in lower case; its end stops the walk. */
static long host_copy_step(u64 k, void *ctx)
{
	struct host_find *h = ctx;
	struct sscan *s = h->s;
	u32 i = (u32)k, j;
	u8 c;

	if (!s || i >= SECRET_HOST - 1)
		return 1;
	j = s->host_at + i;
	if (j >= h->n || j >= SCAN_HEAD)
		return 1;
	asm volatile("" : "+r"(j));
	c = s->buf[j & (SCAN_HEAD - 1)];
	if (c == ':' || c == '\r' || c == '\n' || c == ' ' || c == '\t' || c == '/')
		return 1;
	if (c >= 'A' && c <= 'Z')
		c |= 0x20;
	s->dest.host[i & (SECRET_HOST - 1)] = c;
	s->dest.len = i + 1;
	return 0;
}

/* Byte i from the end of the name into the reversed hash (s->dest.rhash), and the hash so far
 * at each dot: a parent's (s->dest.suf). */
static long host_hash_step(u64 k, void *ctx)
{
	struct host_find *h = ctx;
	struct sscan *s = h->s;
	u32 i = (u32)k, len, ns;
	u64 rh;
	u8 c;

	if (!s)
		return 1;
	len = s->dest.len;
	if (i >= len || i >= SECRET_HOST)
		return 1;
	c = s->dest.host[(len - 1 - i) & (SECRET_HOST - 1)];
	rh = (s->dest.rhash ^ c) * FNV_MUL;
	s->dest.rhash = rh;
	if (c == '.') {
		ns = s->dest.nsuf;
		if (ns < SECRET_SUFFIXES) {
			s->dest.suf[ns & (SECRET_SUFFIXES - 1)] = rh;
			s->dest.nsuf = ns + 1;
		}
	}
	return 0;
}

/* Each walk is a bpf_loop step (verified once, not once per byte and per way out of the
 * loop); what the steps find stays in s, so the verifier meets one state after each walk. */
__noinline int secret_host(struct sscan *s, u32 n)
{
	struct host_find h = {.s = s, .n = n};
	u32 len;

	if (!s)
		return 0;
	s->host_at = 0;
	bpf_loop(SCAN_HEAD, host_find_step, &h, 0);
	if (!SCAN_READ(s->host_at))
		return 0;
	bpf_loop(16, host_skip_step, &h, 0);
	s->dest.len = 0;
	bpf_loop(SECRET_HOST - 1, host_copy_step, &h, 0);
	len = SCAN_READ(s->dest.len);
	if (len && s->dest.host[(len - 1) & (SECRET_HOST - 1)] == '.')
		len--;
	if (!len || len >= SECRET_HOST)
		return 0;
	s->dest.len = len;
	s->dest.host[len & (SECRET_HOST - 1)] = 0;
	s->dest.nsuf = 0;
	s->dest.rhash = FNV_OFF;
	bpf_loop(SECRET_HOST, host_hash_step, &h, 0);
	return 1;
}

/* n bytes of the data at off into dst (each caller masks n to its buffer). */
static __always_inline int scan_load_user(const struct sscan *s, void *dst, u32 off, u32 n)
{
	return bpf_probe_read_user(dst, n, (const void *)(s->ubuf + off));
}

static __always_inline int scan_load_skb(struct __sk_buff *skb, const struct sscan *s, void *dst,
					 u32 off, u32 n)
{
	return bpf_skb_load_bytes(skb, s->base + off, dst, n);
}

/* A junction's bytes from off (below 2 * SCAN_TAIL): a constant size (no helper reads kernel
 * memory in every program type on 5.8), more than any caller uses; buf's slack keeps it in. */
#define SCAN_LOAD_MEM(s, dst, off, size)                                                           \
	({                                                                                         \
		u32 o_ = (off);                                                                    \
		asm volatile("" : "+r"(o_));                                                       \
		__builtin_memcpy(dst, &(s)->buf[o_ & (2 * SCAN_TAIL - 1)], size);                  \
		0;                                                                                 \
	})

/* A candidate's bytes out of a junction, global: verified once, not at every place (and
 * state) the verification uses it (a copy of unknown alignment is a byte at a time). */
__noinline int scan_mem_vbuf(struct sscan *s, u32 off)
{
	if (!s)
		return 0;
	return SCAN_LOAD_MEM(s, s->vbuf, off, SECRET_VMAX);
}

/* Global, verified once: may secret id go to s->dest (have_dest: there is one)? */
__noinline int secret_allowed(struct sscan *s, u32 id, u32 have_dest)
{
	struct secret_to_key k = {.id = id, .how = 2};

	if (!s)
		return 0;
	if (bpf_map_lookup_elem(&secret_to, &k))
		return 1;
	if (!have_dest)
		return 0;
	k.how = 0;
	k.rhash = s->dest.rhash;
	if (bpf_map_lookup_elem(&secret_to, &k))
		return 1;
	k.how = 1;
	for (u32 i = 0; i < SECRET_SUFFIXES; i++) {
		if (i >= s->dest.nsuf)
			break;
		k.rhash = s->dest.suf[i];
		if (bpf_map_lookup_elem(&secret_to, &k))
			return 1;
	}
	return 0;
}

/*
 * The candidate at buf index s->v_i (data position s->v_a): a job secret whose anchor starts
 * there, else a token format. Its id, 0 for none, -1 when the data could not be read. LOAD
 * reads n bytes of the data at an offset into s->vbuf. JUNCTION (a constant): the data is a
 * junction, whose starts in the kept bytes are judged here only if their match reaches the new
 * ones. Instantiated once per data source as a global function, verified once.
 */
#define SCAN_VERIFY_BODY(LOAD, JUNCTION)                                                           \
	struct secret_anchor *an;                                                                  \
	u32 i, a, rem, n;                                                                          \
	u64 key;                                                                                   \
                                                                                                   \
	if (!s)                                                                                    \
		return 0;                                                                          \
	/* a junction stays where it was built: its candidates are at their own positions */       \
	i = ((JUNCTION) ? s->v_a : s->v_i) & (SCAN_HEAD - 1);                                      \
	a = s->v_a;                                                                                \
	if (a >= s->len)                                                                           \
		return 0;                                                                          \
	/* a junction's starts in the new bytes are the write's own scan's */                      \
	if ((JUNCTION) && a >= s->jtail)                                                           \
		return 0;                                                                          \
	rem = s->len - a;                                                                          \
	if (rem >= SECRET_ANCHOR) {                                                                \
		__builtin_memcpy(&key, &s->buf[i], sizeof(key));                                   \
		an = bpf_map_lookup_elem(&secret_anchors, &key);                                   \
		for (u32 c = 0; an && c < SECRET_ALIASES; c++) {                                   \
			u32 vlen;                                                                  \
                                                                                                   \
			if (c >= an->n)                                                            \
				break;                                                             \
			vlen = an->c[c].vlen;                                                      \
			if (vlen < SECRET_ANCHOR || vlen > SECRET_VMAX || vlen > rem)              \
				continue;                                                          \
			/* all in the kept bytes: judged when they were written */                 \
			if ((JUNCTION) && a + vlen <= s->jtail)                                    \
				continue;                                                          \
			n = vlen;                                                                  \
			asm volatile("" : "+r"(n));                                                \
			n = ((n - 1) & (SECRET_VMAX - 1)) + 1;                                     \
			if (LOAD)                                                                  \
				return -1;                                                         \
			if (secret_fnv(s, n) && s->hash == an->c[c].hash)                          \
				return an->c[c].id;                                                \
		}                                                                                  \
	}                                                                                          \
	if (!s->formats)                                                                           \
		return 0;                                                                          \
	/* only at the start of a word: "xnpm_..." is no npm token */                              \
	if (i > 0 && fmt_word(s->buf[(i - 1) & (SCAN_HEAD - 1)]) && s->buf[i] != '-')              \
		return 0;                                                                          \
	n = rem > SCAN_FMT_MAX ? SCAN_FMT_MAX : rem;                                               \
	if (n < 10)                                                                                \
		return 0;                                                                          \
	asm volatile("" : "+r"(n));                                                                \
	n = ((n - 1) & (SCAN_FMT_MAX - 1)) + 1;                                                    \
	if (LOAD)                                                                                  \
		return -1;                                                                         \
	return (JUNCTION) ? secret_format_here(s, a, n) : secret_format_at(s, n, s->formats);

/* The format at s->vbuf (n bytes, from data position a), unless the kept bytes of a junction
 * hold it whole: those were judged when they were written. Inlined: a call more would pass
 * the verifier's eight frames. */
static __always_inline int secret_format_here(struct sscan *s, u32 a, u32 n)
{
	u32 id, k;

	if (!s)
		return 0;
	id = secret_format_at(s, n, s->formats);
	if (!id || !s->jtail || a >= s->jtail)
		return id;
	k = s->jtail - a;
	if (k >= n)
		return 0; /* every byte looked at is a kept one */
	if (k < 10)
		return id;
	asm volatile("" : "+r"(k));
	k &= SCAN_FMT_MAX - 1;
	return secret_format_at(s, k, s->formats) == id ? 0 : id;
}

__noinline int secret_verify_user(struct sscan *s){
    SCAN_VERIFY_BODY(scan_load_user(s, s->vbuf, a, n), 0)}

__noinline int secret_verify_skb(struct __sk_buff *skb, struct sscan *s){
    SCAN_VERIFY_BODY(scan_load_skb(skb, s, s->vbuf, a, n), 0)}

__noinline int secret_verify_mem(struct sscan *s){SCAN_VERIFY_BODY(scan_mem_vbuf(s, a), 1)}

/* The candidates a step noted, verified in turn: 1 when the scan ends here (a secret not
 * allowed where it goes: s->found, s->at; or bytes that could not be read: s->failed). Global,
 * one per data source, verified once. */
#define SCAN_CANDS_BODY(VERIFY)                                                                    \
	u32 start;                                                                                 \
                                                                                                   \
	if (!s)                                                                                    \
		return 1;                                                                          \
	start = s->v_a;                                                                            \
	for (u32 c = 0; c < SCAN_CANDS; c++) {                                                     \
		u32 i;                                                                             \
                                                                                                   \
		if (c >= SCAN_READ(s->ncand))                                                      \
			break;                                                                     \
		i = s->cand[c];                                                                    \
		/* the pair at i: a start at i - 2, i - 1 or i */                                  \
		for (u32 d = 0; d < SCAN_STRIDE; d++) {                                            \
			int id;                                                                    \
                                                                                                   \
			s->v_i = i + d - (SCAN_STRIDE - 1);                                        \
			s->v_a = start + s->v_i;                                                   \
			id = VERIFY;                                                               \
			if (id < 0) {                                                              \
				s->failed = 1;                                                     \
				return 1;                                                          \
			}                                                                          \
			if (id > 0 && !secret_allowed(s, id, s->have_dest)) {                      \
				s->found = id;                                                     \
				s->at = s->v_a;                                                    \
				return 1;                                                          \
			}                                                                          \
		}                                                                                  \
	}                                                                                          \
	return 0;

__noinline int scan_cands_user(struct sscan *s){SCAN_CANDS_BODY(secret_verify_user(s))}

__noinline int scan_cands_skb(struct __sk_buff *skb,
			      struct sscan *s){SCAN_CANDS_BODY(secret_verify_skb(skb, s))}

__noinline int scan_cands_mem(struct sscan *s)
{
	SCAN_CANDS_BODY(secret_verify_mem(s))
}

/* One step: positions pos.. up to SCAN_CHUNK of them or SCAN_CANDS candidates, then the
 * candidates verified. src: a constant, so each callback holds only its own source's code. */
static __always_inline long scan_step(struct scan_ctx *x, enum scan_src src)
{
	struct sscan *s = x->s;
	const struct secret_pairs_v *p = x->pairs;
	/* a junction's starts are in its kept bytes: fewer positions, fewer for the verifier */
	const u32 chunk = src == SRC_MEM ? SCAN_TAIL / SCAN_STRIDE + 1 : SCAN_CHUNK;
	u32 lead, start, pos, rem, n, k, base;
	int rc;

	if (!s || !p || s->pos >= x->stop)
		return 1;
	/* starts pos .. pos + SCAN_STRIDE * SCAN_CHUNK - 1: one byte before them (the word-start
	 * check), 8 past the last (its anchor) */
	s->lead = s->pos ? 1 : 0;
	/* both back from memory: the two ways above meet in one state, and the chunk below is
	 * walked once, not once with lead 0 and once with lead 1 */
	pos = SCAN_READ(s->pos);
	lead = SCAN_READ(s->lead);
	start = pos - lead;
	rem = x->len - start;
	n = rem > SCAN_BYTES + 9 ? SCAN_BYTES + 9 : rem;
	if (n < lead + 3) {
		s->pos = x->len; /* too few bytes left for a pair at the first scanned position */
		return 1;
	}
	/* a no-op for n in [3, SCAN_BYTES + 9] that states the bound where the verifier sees it */
	asm volatile("" : "+r"(n));
	n = ((n - 1) & (SCAN_HEAD - 1)) + 1;
	/* a junction is in buf already, from its start: its steps read it at their place */
	base = src == SRC_MEM ? start : 0;
	if (src == SRC_SKB)
		rc = scan_load_skb(x->skb, s, s->buf, start, n);
	else if (src == SRC_USER)
		rc = scan_load_user(s, s->buf, start, n);
	else
		rc = 0;
	if (rc) {
		s->failed = 1;
		return 1;
	}
	/* Branch-free but for the exits, and nothing that outlives the loop kept in registers: the
	 * verifier walks it once per position, not once per path. The pair at every third byte
	 * (the bitmap holds each anchor's pairs at offsets 0, 1 and 2) covers every start. */
	s->ncand = 0;
	s->end = SCAN_STRIDE * chunk;
	s->lim = n - 1;
	/* a junction: the pairs of its starts only (a pair at i stands for i - 2 .. i) */
	if (src == SRC_MEM && x->stop + SCAN_STRIDE - 1 - start < n - 1)
		s->lim = x->stop + SCAN_STRIDE - 1 - start;
	for (k = 0; k < chunk; k++) {
		u32 i = lead + SCAN_STRIDE * k + SCAN_STRIDE - 1, pr;

		if (i >= SCAN_READ(s->lim))
			break;
		pr = (u32)s->buf[(base + i) & (SCAN_HEAD - 1)] << 8 |
		     s->buf[(base + i + 1) & (SCAN_HEAD - 1)];
		s->cand[s->ncand & (SCAN_CANDS - 1)] = i;
		s->ncand += (p->w[(pr >> 6) & (SECRET_PAIRS - 1)] >> (pr & 63)) & 1;
		if (SCAN_READ(s->ncand) >= SCAN_CANDS) {
			s->end = SCAN_STRIDE * (k + 1);
			break;
		}
	}
	s->v_a = start; /* the step's first byte's position, for the candidates' */
	if (src == SRC_SKB)
		rc = scan_cands_skb(x->skb, s);
	else if (src == SRC_USER)
		rc = scan_cands_user(s);
	else
		rc = scan_cands_mem(s);
	if (rc)
		return 1;
	s->pos = pos + SCAN_READ(s->end);
	if (s->pos + 1 >= x->stop)
		s->pos = x->stop;
	return 0;
}

static long scan_step_user(u64 k, void *ctx)
{
	(void)k;
	return scan_step(ctx, SRC_USER);
}

static long scan_step_skb(u64 k, void *ctx)
{
	(void)k;
	return scan_step(ctx, SRC_SKB);
}

static long scan_step_mem(u64 k, void *ctx)
{
	(void)k;
	return scan_step(ctx, SRC_MEM);
}

/* A scratch slot: task context tries each of its own, softirq has one. */
static __always_inline struct sscan *scan_slot(bool softirq)
{
	for (u32 k = 0; k < SCAN_TASK_SLOTS + 1; k++) {
		u32 slot = softirq ? SCAN_SOFTIRQ_SLOT : k;
		struct sscan *s;

		if (!softirq && k == SCAN_TASK_SLOTS)
			break;
		s = bpf_map_lookup_elem(&sscan_slots, &slot);
		if (!s)
			return NULL;
		if (__sync_fetch_and_add(&s->busy, 1) == 0)
			return s;
		__sync_fetch_and_add(&s->busy, -1);
		if (softirq)
			break;
	}
	return NULL;
}

static __always_inline void scan_begin(struct sscan *s)
{
	s->pos = s->found = s->at = s->failed = s->have_dest = s->jtail = s->split = 0;
}

/* The whole data scanned. x->s->found is the first secret not allowed where it goes. */
static __always_inline void scan_all(struct scan_ctx *x, enum scan_src src)
{
	u32 zero = 0, steps;
	struct secret_cfg *cf = bpf_map_lookup_elem(&secret_cfg_map, &zero);

	x->pairs = bpf_map_lookup_elem(&secret_pairs, &zero);
	if (!cf || !x->pairs)
		return;
	x->s->formats = cf->formats;
	x->s->len = x->len;
	/* each step moves on at least SCAN_CANDS * SCAN_STRIDE starts */
	steps = x->len / (SCAN_CANDS * SCAN_STRIDE) + 2;
	if (steps > SCAN_MAX_STEPS)
		steps = SCAN_MAX_STEPS;
	if (src == SRC_SKB)
		bpf_loop(steps, scan_step_skb, x, 0);
	else if (src == SRC_USER)
		bpf_loop(steps, scan_step_user, x, 0);
	else
		bpf_loop(steps, scan_step_mem, x, 0);
	if (x->s->pos < x->stop && !x->s->found)
		x->s->failed = 1; /* past bpf_loop's reach */
}

/* Global, one per data source: the steps are verified once, not once per state the caller
 * reaches the scan in (the destination found or not, ...). */
__noinline int scan_all_user(struct sscan *s, u32 len)
{
	struct scan_ctx x = {.s = s, .len = len, .stop = len};

	if (!s)
		return 0;
	scan_all(&x, SRC_USER);
	return 0;
}

__noinline int scan_all_skb(struct __sk_buff *skb, struct sscan *s, u32 len)
{
	struct scan_ctx x = {.s = s, .skb = skb, .len = len, .stop = len};

	if (!s || !skb)
		return 0;
	scan_all(&x, SRC_SKB);
	return 0;
}

/* The junction in s->buf (len bytes: kept ones, then new ones, see secret_tail) scanned for
 * the matches that start in the kept bytes and end in the new ones. A match is reported as
 * starting at the write's first byte, s->split bytes of it before. */
__noinline int scan_all_mem(struct sscan *s, u32 len)
{
	struct scan_ctx x = {.s = s, .len = len};
	u32 kept;

	if (!s)
		return 0;
	kept = s->jtail;
	if (!kept || kept >= len)
		return 0;
	x.stop = kept;
	scan_all(&x, SRC_MEM);
	if (s->found && s->at < kept) {
		s->split = kept - s->at;
		s->at = 0;
	}
	s->jtail = 0;
	s->pos = 0;
	return 0;
}

static __always_inline bool scan_enabled(void)
{
	u32 zero = 0;
	struct secret_cfg *cf = bpf_map_lookup_elem(&secret_cfg_map, &zero);

	return cf && cf->on && have_bpf_loop;
}

/* Is this the start of an HTTP/1.x request (a method in capitals and a space)? */
static __always_inline bool scan_request_start(const u8 *b, u32 n)
{
	if (n < 8)
		return false;
	for (int i = 0; i < 8; i++) {
		if (b[i] == ' ')
			return i >= 3;
		if (b[i] < 'A' || b[i] > 'Z')
			return false;
	}
	return false;
}

#define SCAN_LOAD(x, dst, off, n)                                                                  \
	((x)->skb ? scan_load_skb((x)->skb, (x)->s, dst, off, n)                                   \
		  : scan_load_user((x)->s, dst, off, n))

/* The destination of this write: the Host of the request head it starts with (remembered for
 * the writes that follow on the same connection), else the one remembered. */
static __always_inline void scan_dest(struct scan_ctx *x, struct secret_conn_key *ck)
{
	struct sscan *s = x->s;
	struct secret_dest *d;
	u32 n = x->len > SCAN_HEAD ? SCAN_HEAD : x->len;

	if (n < 8)
		goto known;
	asm volatile("" : "+r"(n));
	n = ((n - 1) & (SCAN_HEAD - 1)) + 1;
	/* the first bytes say whether it is a request; only then is the head read */
	if (!SCAN_LOAD(x, s->buf, 0, 8) && scan_request_start(s->buf, 8) &&
	    !SCAN_LOAD(x, s->buf, 0, n)) {
		__builtin_memset(&s->dest, 0, sizeof(s->dest));
		if (secret_host(s, n)) {
			x->s->have_dest = 1;
			bpf_map_update_elem(&secret_dests, ck, &s->dest, BPF_ANY);
			return;
		}
		/* a request without a Host: what follows goes nowhere known */
		bpf_map_delete_elem(&secret_dests, ck);
		return;
	}
known:
	d = bpf_map_lookup_elem(&secret_dests, ck);
	if (d) {
		s->dest = *d;
		x->s->have_dest = 1;
	}
}

/* First of its kind (or a power-of-two repeat) from this process to this destination. */
static __always_inline bool scan_worth_recording(const struct scan_ctx *x, u32 tgid)
{
	struct secret_seen_key k = {
	    .rhash = x->s->have_dest ? x->s->dest.rhash : 0, .tgid = tgid, .id = x->s->found};
	u64 one = 1, v, *n = bpf_map_lookup_elem(&secret_seen, &k);

	if (!n) {
		bpf_map_update_elem(&secret_seen, &k, &one, BPF_ANY);
		return true;
	}
	v = __sync_add_and_fetch(n, 1);
	return (v & (v - 1)) == 0;
}

static __always_inline void scan_fill_ev(struct scan_ctx *x, u8 channel, u8 verdict, u8 flags)
{
	struct ev_secret *e = &x->s->ev;
	u32 hl = x->s->have_dest ? x->s->dest.len : 0;

	e->id = x->s->found;
	e->offset = x->s->at;
	e->write_len = x->len;
	e->channel = channel;
	e->verdict = verdict;
	e->flags = flags | (x->s->have_dest ? 0 : SECF_NO_HOST) | (x->s->split ? SECF_SPLIT : 0);
	e->earlier = x->s->split;
	e->host_len = hl > SECRET_HOST - 1 ? SECRET_HOST - 1 : hl;
	if (x->s->have_dest)
		__builtin_memcpy(e->host, x->s->dest.host, SECRET_HOST);
	else
		e->host[0] = 0;
}

/* The junction's new bytes are its first h, h = min(n, SCAN_TAIL - 1): what a split match can
 * need after the kept bytes. A constant bound the verifier sees. */
static __always_inline u32 junction_head(u32 n)
{
	u32 h = n < SCAN_TAIL - 1 ? n : SCAN_TAIL - 1;

	asm volatile("" : "+r"(h));
	return ((h - 1) & (SCAN_TAIL - 1)) + 1;
}

/* The kept bytes t (NULL: none) into the junction, before the new ones. Their count. */
static __always_inline u32 junction_kept(struct sscan *s, const struct secret_tail *t)
{
	u32 kept;

	if (!t)
		return 0;
	kept = t->len > SCAN_TAIL ? SCAN_TAIL : t->len;
	__builtin_memcpy(s->buf, t->b, SCAN_TAIL);
	return kept;
}

/* What to keep after a write whose first h bytes follow `kept` in the junction, when that was
 * all of it: the stream's last SCAN_TAIL bytes, from the junction. Global: its copy (a byte at
 * a time) is verified once, not on every path of its callers. */
__noinline int junction_keep(struct sscan *s, u32 kept, u32 h)
{
	u32 total, n;

	if (!s)
		return 0;
	total = (kept & (2 * SCAN_TAIL - 1)) + (h & (SCAN_TAIL - 1));
	n = total > SCAN_TAIL ? SCAN_TAIL : total;
	SCAN_LOAD_MEM(s, s->tail.b, total - n, SCAN_TAIL);
	s->tail.len = n;
	return 0;
}

/* Global, verified once (the caller's paths meet again after it): an SSL write's junction into
 * s->buf (s->jtail kept bytes, s->jlen in all; 0: none), and the SSL object's kept bytes
 * replaced by the stream's new last ones. Whether the write will be let through does not
 * matter: one that is not kills its writer. */
__noinline int tls_junction(struct sscan *s, u64 buf, u32 len)
{
	struct secret_tail *t;
	u32 kept = 0, h;

	if (!s || !len)
		return 0;
	s->jlen = 0;
	s->tail.len = 0;
	t = bpf_map_lookup_elem(&secret_tls_tails, &s->ck);
	kept = junction_kept(s, t);
	h = junction_head(len);
	if (!bpf_probe_read_user(&s->buf[kept & (2 * SCAN_TAIL - 1)], h, (const void *)buf)) {
		s->jtail = kept;
		s->jlen = kept + h;
		if (len == h) /* all of it in the junction: the stream's end is there */
			junction_keep(s, kept, h);
	}
	if (len > h) /* a write longer than the junction: its own last bytes are kept */
		s->tail.len =
		    bpf_probe_read_user(s->tail.b, SCAN_TAIL, (const void *)(buf + len - SCAN_TAIL))
			? 0
			: SCAN_TAIL;
	if (t)
		*t = s->tail;
	else
		bpf_map_update_elem(&secret_tls_tails, &s->ck, &s->tail, BPF_ANY);
	return 0;
}

/* SSL_write's plaintext (rw_ssl_write). In enforce mode a secret not allowed where it goes
 * kills the writer here, before the library encrypts and sends it. Global: verified once, not
 * once per path of the caller. */
__noinline int secret_scan_tls(u64 ssl, u64 buf, s64 len)
{
	struct scan_ctx x = {};
	struct secret_conn_key ck = {.conn = ssl, .chan = SCH_TLS_WRITE};
	struct rw_config *c;
	bool enforce;
	u64 id = bpf_get_current_pid_tgid();
	u8 verdict, flags = 0;

	if (len <= 0 || !buf || !scan_enabled())
		return 0;
	c = cfg();
	enforce = c && c->mode == MODE_ENFORCE;
	ck.tgid = id >> 32;
	x.s = scan_slot(false);
	if (!x.s) {
		/* every slot of this CPU is busy (preempted scans): unscanned is not let through
		 * in enforce mode */
		count_lost(EV_SECRET);
		if (enforce)
			bpf_send_signal(9);
		return 0;
	}
	scan_begin(x.s);
	x.s->ubuf = buf;
	x.len = len > 0x7fffffff ? 0x7fffffff : (u32)len;
	scan_dest(&x, &ck);
	/* the junction with what this SSL object sent before, then the write alone */
	x.s->ck = ck;
	tls_junction(x.s, buf, x.len);
	if (x.s->jlen)
		scan_all_mem(x.s, x.s->jlen);
	if (!x.s->found)
		scan_all_user(x.s, x.len);
	if (!x.s->found && !(x.s->failed && enforce))
		goto out;
	if (x.s->failed && !x.s->found)
		flags |= SECF_UNSCANNED;
	verdict = enforce ? VERDICT_DENY : VERDICT_AUDIT;
	if (enforce) {
		bpf_send_signal(9); /* SIGKILL, taken before the process is back in user space */
		flags |= SECF_KILLED;
	} else if (!scan_worth_recording(&x, ck.tgid)) {
		goto out;
	}
	fill_hdr(&x.s->ev.h, EV_SECRET);
	x.s->ev.conn = ssl;
	x.s->ev.family = 0;
	x.s->ev.dport = x.s->ev.sport = 0;
	__builtin_memset(x.s->ev.daddr, 0, 16);
	__builtin_memset(x.s->ev.saddr, 0, 16);
	scan_fill_ev(&x, SCH_TLS_WRITE, verdict, flags);
	if (bpf_ringbuf_output(&events, &x.s->ev, sizeof(x.s->ev), BPF_RB_FORCE_WAKEUP))
		count_lost(EV_SECRET);
out:
	__sync_fetch_and_add(&x.s->busy, -1);
	return 0;
}

/* Not scanned: connections that speak TLS (their plaintext is scanned at SSL_write, where it
 * can be read), found by their first segment. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, u8);
} secret_tls_conns SEC(".maps");

/* Global, verified once: a segment's junction into s->buf (s->jtail kept bytes, s->jlen in
 * all; 0: none), and the socket's kept bytes (socket storage, created with its first scanned
 * segment) replaced by the stream's new last ones. Sequence numbers say which bytes are new: a
 * retransmission adds nothing (judged when first sent), a resegmented one only its new bytes,
 * and after a gap (bytes never seen here) nothing is joined. A segment that will be dropped
 * refuses its connection: what it keeps is never joined to anything. 0, or -1 when there is no
 * storage for the socket (a split secret would pass unseen). */
__noinline int skb_junction(struct __sk_buff *skb, const struct pkt *p, struct sscan *s, u32 n)
{
	struct bpf_sock *sk;
	struct secret_tail *t;
	u32 skip = 0, kept = 0, h;
	s32 d;

	if (!skb || !p || !s || !n)
		return 0;
	s->jlen = 0;
	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	t = sk ? bpf_sk_storage_get(&secret_sk_tails, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE) : NULL;
	if (!t)
		return -1;
	if (bpf_skb_load_bytes(skb, p->l4 + 4, &s->seq, sizeof(s->seq)))
		return 0;
	s->seq = bpf_ntohl(s->seq) + (p->syn ? 1 : 0); /* a SYN's data follows its number */
	d = (s32)(t->next - s->seq);
	if (t->len && d > 0) {
		if ((u32)d >= n)
			return 0; /* all sent before */
		skip = d;
	}
	if (t->len && d >= 0)
		kept = junction_kept(s, t);
	h = junction_head(n - skip);
	if (bpf_skb_load_bytes(skb, p->off + skip, &s->buf[kept & (2 * SCAN_TAIL - 1)], h))
		return 0;
	s->jtail = kept;
	s->jlen = kept + h;
	if (n - skip > h) {
		/* a segment longer than the junction: its own last bytes are kept */
		if (bpf_skb_load_bytes(skb, p->off + n - SCAN_TAIL, s->tail.b, SCAN_TAIL))
			return 0;
		s->tail.len = SCAN_TAIL;
	} else {
		junction_keep(s, kept, h);
	}
	s->tail.next = s->seq + n;
	*t = s->tail;
	return 0;
}

/* A plain TCP segment on its way out (on_skb). 1: it passes; 0: drop it (enforce: a secret not
 * allowed where it goes; the connection is refused from now on and user space resets it).
 * Global: verified once, not once per path of on_skb. */
__noinline int secret_scan_skb(struct __sk_buff *skb, const struct pkt *p)
{
	struct scan_ctx x = {};
	struct rw_config *c;
	bool enforce;
	u32 plen = p->plen;
	u8 hello[3], verdict, flags = 0;
	u64 cookie;

	if (!skb || !p || p->proto != PROTO_TCP || !scan_enabled())
		return 1;
	if (plen > skb->len)
		plen = skb->len;
	if (plen <= p->off)
		return 1;
	if (is_dns_port(p->dport, p->daddr))
		return 1; /* DNS: the gate judges the names (src/secrets/, Hyperscan) */
	c = cfg();
	if (c && runner_socket(skb, c))
		return 1;
	cookie = bpf_get_socket_cookie(skb);
	if (bpf_map_lookup_elem(&secret_tls_conns, &cookie))
		return 1;
	/* a TLS record header: handshake (a ClientHello) */
	if (!bpf_skb_load_bytes(skb, p->off, hello, 3) && hello[0] == 0x16 && hello[1] == 3) {
		u8 one = 1;

		bpf_map_update_elem(&secret_tls_conns, &cookie, &one, BPF_ANY);
		return 1;
	}
	enforce = c && c->mode == MODE_ENFORCE;
	x.s = scan_slot(true);
	if (!x.s) {
		count_lost(EV_SECRET);
		return !enforce;
	}
	scan_begin(x.s);
	x.skb = skb;
	x.s->base = p->off;
	x.len = plen - p->off;
	x.s->ck = (struct secret_conn_key){.conn = cookie, .chan = SCH_TCP};
	scan_dest(&x, &x.s->ck);
	/* the junction with what this socket sent before, then the segment alone */
	if (skb_junction(skb, p, x.s, x.len)) {
		/* no room to keep the socket's last bytes: a split secret would pass unseen */
		count_lost(EV_SECRET);
		x.s->failed = 1;
	}
	if (x.s->jlen)
		scan_all_mem(x.s, x.s->jlen);
	if (!x.s->found)
		scan_all_skb(skb, x.s, x.len);
	if (!x.s->found && !(x.s->failed && enforce)) {
		__sync_fetch_and_add(&x.s->busy, -1);
		return 1;
	}
	if (x.s->failed && !x.s->found)
		flags |= SECF_UNSCANNED;
	verdict = enforce ? VERDICT_DENY : VERDICT_AUDIT;
	if (enforce) {
		u32 refused = CONN_REFUSED;

		bpf_map_update_elem(&conn_seen, &cookie, &refused, BPF_ANY);
		flags |= SECF_DROPPED;
	} else if (!scan_worth_recording(&x, 0)) {
		__sync_fetch_and_add(&x.s->busy, -1);
		return 1;
	}
	fill_skb_hdr(&x.s->ev.h, EV_SECRET, cookie);
	x.s->ev.conn = cookie;
	x.s->ev.family = p->family;
	x.s->ev.dport = p->dport;
	x.s->ev.sport = p->sport;
	__builtin_memcpy(x.s->ev.daddr, p->daddr, 16);
	__builtin_memcpy(x.s->ev.saddr, p->saddr, 16);
	scan_fill_ev(&x, SCH_TCP, verdict, flags);
	if (bpf_ringbuf_output(&events, &x.s->ev, sizeof(x.s->ev), BPF_RB_FORCE_WAKEUP))
		count_lost(EV_SECRET);
	__sync_fetch_and_add(&x.s->busy, -1);
	return !enforce;
}
