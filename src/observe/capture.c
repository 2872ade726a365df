/* Capture levels, HTTP/2 streams and WebSocket frames from streamed plaintext (capture.h). */
#include "observe/capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/jsonw.h"
#include "common/xalloc.h"
#include "observe/h2.h"

/* One direction of an HTTP/1.x transaction: its head (raw, up to header_bytes) and body. */
struct cap_side {
	struct strbuf hdr, body;
	bool started, hdr_done, hdr_cut, body_cut, no_body, chunked, stopped;
	int64_t length; /* Content-Length, -1 when none */
	uint64_t body_seen;
};

struct h2_stream {
	uint32_t id;
	struct ev_hdr h; /* the chunk that carried the request's headers: who sent it */
	enum capture_level level;
	char method[FB_METHOD], authority[FB_NAME], path[FB_PATH];
	bool path_cut, reset, hdr_cut[2], body_cut[2];
	int status;
	int64_t bytes[2];
	uint64_t t_resp;
	struct strbuf hdrs[2], body[2]; /* headers as JSON array members; raw bodies */
};

/* One direction of a WebSocket: the frame being read. */
struct ws_dir {
	uint8_t fh[14];
	uint32_t fh_have, fh_need;
	bool in_frame, fin, masked, cut;
	uint8_t opcode, key[4];
	uint64_t len, got;
	struct strbuf payload;
	struct ev_hdr h;
};

struct cap_conn {
	struct httpcap *cap;
	uint32_t pid;
	uint64_t ssl;
	enum capture_level level;
	bool head_method;	 /* the request was HEAD: its response has no body */
	struct cap_side side[2]; /* [0] what the job wrote (request), [1] what it read */
	bool h2, ws;
	bool ws_live; /* the upgrade's line is written: what follows is frames */
	struct h2_conn *h2c;
	struct ev_hdr last_h[2];
	uint64_t h2_seen[2];
	struct h2_stream *streams[CAPTURE_STREAMS_MAX];
	size_t nstreams;
	struct ws_dir wsd[2];
	bool said[2]; /* an HTTP/2 direction's decoding stopped, and its line was written */
};

/* ------------------------------------------------------------------ config */

void capture_cfg_from_policy(struct capture_cfg *c, const struct policy_capture *p)
{
	memset(c, 0, sizeof(*c));
	c->allowed = p && p->allowed != CAPTURE_UNSET ? p->allowed : CAPTURE_SUMMARY;
	c->not_allowed = p && p->not_allowed != CAPTURE_UNSET ? p->not_allowed : c->allowed;
	c->header_bytes = CAPTURE_HEADER_BYTES;
	c->body_bytes = p && p->body_bytes ? p->body_bytes : CAPTURE_BODY_DEFAULT;
	c->budget_bytes = p && p->budget_bytes ? p->budget_bytes : CAPTURE_BUDGET_DEFAULT;
	c->h2_bytes = p && p->h2_bytes ? p->h2_bytes : CAPTURE_H2_DEFAULT;
}

static uint32_t level_bytes(const struct capture_cfg *c, enum capture_level l)
{
	if (l == CAPTURE_FULL)
		return c->header_bytes + c->body_bytes;
	return l == CAPTURE_DETAILS ? c->header_bytes : 0;
}

/* The most any transaction can want, until user space has chosen; per-entry levels above the
 * defaults are folded in by the caller (capture_kernel_cfg_raise). */
void capture_kernel_cfg(const struct capture_cfg *c, struct tls_capcfg *out)
{
	enum capture_level top = c->allowed > c->not_allowed ? c->allowed : c->not_allowed;

	if (c->top > top)
		top = c->top;

	memset(out, 0, sizeof(*out));
	out->arm[0] = out->arm[1] = level_bytes(c, top);
	out->h2_bytes = c->h2_bytes;
}

void capture_init(struct httpcap *c)
{
	struct capture_cfg cfg = c->cfg;

	memset(&c->st, 0, sizeof(c->st));
	if (!cfg.header_bytes)
		capture_cfg_from_policy(&c->cfg, NULL);
	strmap_init(&c->conns);
	strmap_init(&c->told);
	c->held = 0;
}

enum capture_level capture_level_of(struct httpcap *c, const char *authority)
{
	enum capture_level l = c->level_of ? c->level_of(c->judge_ctx, authority) : c->cfg.allowed;

	return l == CAPTURE_UNSET ? CAPTURE_SUMMARY : l;
}

/* ------------------------------------------------------------------ buffers */

/* Appends up to cap bytes in all to sb, within the bytes all connections may hold; false when
 * something was left out. */
static bool keep(struct httpcap *c, struct strbuf *sb, const void *p, size_t n, size_t cap)
{
	size_t m = sb->len < cap ? cap - sb->len : 0;
	bool all = true;

	if (m > n)
		m = n;
	if (m < n)
		all = false;
	if (c->held + m > CAPTURE_HELD_MAX) {
		size_t room = c->held < CAPTURE_HELD_MAX ? CAPTURE_HELD_MAX - c->held : 0;

		c->st.held_refused += m - room;
		m = room;
		all = false;
	}
	if (m) {
		sb_add(sb, p, m);
		c->held += m;
	}
	return all;
}

static void drop(struct httpcap *c, struct strbuf *sb)
{
	c->held -= sb->len <= c->held ? sb->len : c->held;
	sb_release(sb);
}

static void side_reset(struct httpcap *c, struct cap_side *s)
{
	drop(c, &s->hdr);
	drop(c, &s->body);
	memset(s, 0, sizeof(*s));
	s->length = -1;
}

static void key_of(char *key, size_t n, uint32_t pid, uint64_t ssl)
{
	snprintf(key, n, "%u:%llx", pid, (unsigned long long)ssl);
}

/* The arm last written for an SSL object, so a request on a connection the kernel already
 * arms as wanted costs no map update (at most CAPTURE_TOLD_MAX remembered, least recent out). */
#define CAPTURE_TOLD_MAX 4096

static bool kernel_armed(struct httpcap *c, uint32_t pid, uint64_t ssl, uint32_t arm)
{
	char key[48];
	struct strmap_entry *e;

	key_of(key, sizeof(key), pid, ssl);
	e = strmap_get(&c->told, key);
	return e && (uint32_t)(uintptr_t)e->val == arm;
}

static void tell_kernel(struct httpcap *c, uint32_t pid, uint64_t ssl, uint32_t arm_w,
			uint32_t arm_r, uint32_t left_w, uint32_t left_r, bool h2)
{
	struct tls_want w = {.left = {left_w, left_r}, .arm = {arm_w, arm_r}, .h2 = h2};
	struct strmap_entry *e;
	char key[48];

	if (!c->want)
		return;
	c->want(c->judge_ctx, pid, ssl, &w);
	key_of(key, sizeof(key), pid, ssl);
	if (c->told.count >= CAPTURE_TOLD_MAX && !strmap_get(&c->told, key))
		strmap_del(&c->told, c->told.first->key);
	e = strmap_put(&c->told, key, NULL);
	e->val = (void *)(uintptr_t)arm_w;
	strmap_touch(&c->told, e);
}

/* ------------------------------------------------------------------ connections */

static void stream_free(struct httpcap *c, struct h2_stream *s)
{
	for (int i = 0; i < 2; i++) {
		drop(c, &s->hdrs[i]);
		drop(c, &s->body[i]);
	}
	free(s);
}

static void stream_emit(struct cap_conn *k, struct h2_stream *s);

/* An HTTP/2 connection whose decoding stopped says so once, on its own line. */
static void h2_say_broken(struct cap_conn *k)
{
	struct httpcap *c = k->cap;

	for (int s = 0; s < 2; s++) {
		struct h2_dir *d = &k->h2c->d[s];
		struct http_line l = {.h = &k->last_h[s],
				      .h2 = true,
				      .status = 0,
				      .req_bytes = -1,
				      .resp_bytes = -1,
				      .duration_ns = -1,
				      .undecoded = d->broken};

		if (!d->broken || k->said[s])
			continue;
		k->said[s] = true;
		c->st.h2_undecoded++;
		if (c->emit && !c->finished)
			c->emit(c->ctx, &l);
	}
}

static void conn_free(struct cap_conn *k)
{
	struct httpcap *c = k->cap;

	if (k->h2c) {
		for (size_t i = 0; i < k->nstreams; i++) {
			if (!c->finished)
				stream_emit(k, k->streams[i]);
			stream_free(c, k->streams[i]);
		}
		k->nstreams = 0;
		h2_say_broken(k);
		h2_free(k->h2c);
		free(k->h2c);
	}
	for (int i = 0; i < 2; i++) {
		side_reset(c, &k->side[i]);
		drop(c, &k->wsd[i].payload);
	}
	free(k);
}

/* Something in flight: an HTTP/1.x transaction or an HTTP/2 stream waiting. */
static bool conn_busy(const struct cap_conn *k)
{
	return k->side[0].started || k->nstreams || k->ws_live;
}

static struct cap_conn *conn_get(struct httpcap *c, uint32_t pid, uint64_t ssl, bool create)
{
	char key[48];
	struct strmap_entry *e;
	struct cap_conn *k;

	key_of(key, sizeof(key), pid, ssl);
	e = strmap_get(&c->conns, key);
	if (e) {
		strmap_touch(&c->conns, e);
		return e->val;
	}
	if (!create)
		return NULL;
	if (c->conns.count >= CAPTURE_CONNS_MAX) {
		/* the least recently used idle one makes room; none idle: this one goes untracked
		 */
		struct strmap_entry *v = NULL;

		strmap_for_each(x, &c->conns)
		{
			if (!conn_busy(x->val)) {
				v = x;
				break;
			}
		}
		if (!v) {
			c->st.conns_untracked++;
			return NULL;
		}
		k = strmap_del(&c->conns, v->key);
		conn_free(k);
	}
	k = xcalloc(1, sizeof(*k));
	k->cap = c;
	k->pid = pid;
	k->ssl = ssl;
	k->side[0].length = k->side[1].length = -1;
	e = strmap_put(&c->conns, key, NULL);
	e->val = k;
	return k;
}

static void conn_forget(struct httpcap *c, struct cap_conn *k)
{
	char key[48];

	key_of(key, sizeof(key), k->pid, k->ssl);
	strmap_del(&c->conns, key);
	conn_free(k);
}

void capture_release(struct httpcap *c)
{
	strmap_for_each(e, &c->conns) conn_free(e->val);
	strmap_clear(&c->conns, NULL);
	strmap_clear(&c->told, NULL);
}

/* ------------------------------------------------------------------ headers */

static bool credential_header(const char *name, size_t n)
{
	static const char *const names[] = {
	    "authorization", "proxy-authorization", "cookie",	    "set-cookie",
	    "x-api-key",     "x-auth-token",	    "x-csrf-token", NULL};

	for (int i = 0; names[i]; i++)
		if (strlen(names[i]) == n && !strncasecmp(names[i], name, n))
			return true;
	return false;
}

void capture_header_json(const struct redactor *r, const char *name, size_t nl, const char *value,
			 size_t vl, struct strbuf *sb)
{
	struct strbuf v = STRBUF_INIT;

	redact_text(r, value, vl, credential_header(name, nl), &v);
	sb_addch(sb, '[');
	json_str(sb, name, nl);
	sb_addch(sb, ',');
	json_str(sb, v.buf ? v.buf : "", v.len);
	sb_addch(sb, ']');
	sb_release(&v);
}

/* An HTTP/1.x head's header lines (after the request or status line) as JSON array members. */
static void h1_headers_json(const struct redactor *r, const char *p, size_t n, struct strbuf *sb)
{
	const char *end = p + n, *line = memchr(p, '\n', n);
	bool first = true;

	if (!line)
		return;
	for (line++; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line)), *colon;
		size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
		size_t vs, ve;

		if (ll && line[ll - 1] == '\r')
			ll--;
		if (!ll)
			break;
		colon = memchr(line, ':', ll);
		if (colon) {
			vs = (size_t)(colon - line) + 1;
			while (vs < ll && (line[vs] == ' ' || line[vs] == '\t'))
				vs++;
			ve = ll;
			while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
				ve--;
			if (!first)
				sb_addch(sb, ',');
			first = false;
			capture_header_json(r, line, (size_t)(colon - line), line + vs, ve - vs,
					    sb);
		}
		if (!nl)
			break;
		line = nl + 1;
	}
}

/* Content-Length and Transfer-Encoding: chunked of a complete head. */
static void h1_framing(struct cap_side *s)
{
	const char *p = s->hdr.buf, *end = p + s->hdr.len;

	for (const char *l = p; l && l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t ll = nl ? (size_t)(nl - l) : (size_t)(end - l);

		if (ll > 15 && !strncasecmp(l, "content-length:", 15)) {
			int64_t v = 0;
			size_t i = 15;

			while (i < ll && (l[i] == ' ' || l[i] == '\t'))
				i++;
			for (; i < ll && l[i] >= '0' && l[i] <= '9' && v < INT64_MAX / 10 - 9; i++)
				v = v * 10 + (l[i] - '0');
			s->length = v;
		} else if (ll > 18 && !strncasecmp(l, "transfer-encoding:", 18) &&
			   memmem(l, ll, "chunked", 7)) {
			s->chunked = true;
		}
		l = nl ? nl + 1 : NULL;
	}
}

/* ------------------------------------------------------------------ HTTP/1.x */

void capture_h1_request(struct httpcap *c, const struct ev_tls_data *e, enum capture_level level,
			const char *method)
{
	struct cap_conn *k = conn_get(c, e->h.pid, e->ssl, level > CAPTURE_SUMMARY);
	uint32_t arm = level_bytes(&c->cfg, level);
	struct tls_capcfg pre;

	capture_kernel_cfg(&c->cfg, &pre);
	if (k && k->h2)
		return;
	if (!k || level == CAPTURE_SUMMARY) {
		if (k)
			conn_forget(c, k);
		/* the kernel armed this SSL object for the most a rule wants: it wants nothing */
		if ((pre.arm[0] || pre.arm[1]) && !kernel_armed(c, e->h.pid, e->ssl, 0))
			tell_kernel(c, e->h.pid, e->ssl, 0, 0, 0, 0, false);
		return;
	}
	side_reset(c, &k->side[0]);
	side_reset(c, &k->side[1]);
	k->level = level;
	k->side[0].started = true;
	k->head_method = method && !strcmp(method, "HEAD");
	/* the kernel re-arms each head from the arm it holds: only a change needs telling */
	if (!kernel_armed(c, e->h.pid, e->ssl, arm))
		tell_kernel(c, e->h.pid, e->ssl, arm, arm, arm, arm, false);
}

bool capture_captures(const struct httpcap *c, uint32_t pid, uint64_t ssl)
{
	char key[48];
	struct strmap_entry *e;
	const struct cap_conn *k;

	key_of(key, sizeof(key), pid, ssl);
	e = strmap_get(&c->conns, key);
	k = e ? e->val : NULL;
	return k && !k->h2 && k->side[0].started;
}

/* Stops the kernel streaming a direction whose part the level needs is in. */
static void side_enough(struct cap_conn *k, int dir)
{
	struct cap_side *s = &k->side[dir];
	struct httpcap *c = k->cap;

	uint32_t arm = level_bytes(&c->cfg, k->level);

	if (s->stopped || k->ws)
		return;
	s->stopped = true;
	/* the response's own head re-arms its direction in the kernel */
	tell_kernel(c, k->pid, k->ssl, arm, arm, 0, dir == 0 ? arm : 0, false);
}

static bool side_complete(const struct cap_conn *k, int dir)
{
	const struct cap_side *s = &k->side[dir];

	if (!s->started || !s->hdr_done)
		return false;
	if (k->level < CAPTURE_FULL || s->no_body || s->hdr_cut || s->body_cut)
		return true;
	if (s->length >= 0)
		return s->body_seen >= (uint64_t)s->length;
	if (s->chunked)
		return s->body.len >= 5 && !memcmp(s->body.buf + s->body.len - 5, "0\r\n\r\n", 5);
	return dir == 0; /* a request without a length has no body; a response runs to the end */
}

static void ws_feed(struct cap_conn *k, int dir, const struct ev_hdr *h, const uint8_t *p,
		    size_t n);

bool capture_h1_response(struct httpcap *c, const struct ev_tls_data *e, int status, int64_t length,
			 bool websocket)
{
	struct cap_conn *k = conn_get(c, e->h.pid, e->ssl, false);
	struct cap_side *s;

	if (!k || k->h2 || !k->side[0].started)
		return false;
	s = &k->side[1];
	side_reset(c, s);
	s->started = true;
	s->length = length;
	s->no_body = k->head_method || status == 204 || status == 304 || status < 200;
	if (status == 101 && websocket) {
		k->ws = true;
		if (k->level == CAPTURE_FULL) {
			uint32_t b = c->cfg.body_bytes * CAPTURE_WS_BODIES;

			tell_kernel(c, k->pid, k->ssl, 0, 0, b, b, false);
		}
	}
	return false;
}

/* HTTP/1.x bytes of one direction of the transaction in flight. */
static void h1_bytes(struct cap_conn *k, int dir, const struct ev_hdr *h, const uint8_t *p,
		     size_t n)
{
	struct httpcap *c = k->cap;
	struct cap_side *s = &k->side[dir];

	if (!s->started)
		return;
	if (!s->hdr_done) {
		size_t from = s->hdr.len > 3 ? s->hdr.len - 3 : 0, before = s->hdr.len;
		const char *end;

		keep(c, &s->hdr, p, n, c->cfg.header_bytes);
		end = memmem(s->hdr.buf + from, s->hdr.len - from, "\r\n\r\n", 4);
		if (!end) {
			if (s->hdr.len >= c->cfg.header_bytes || s->hdr.len - before < n) {
				s->hdr_done = s->hdr_cut = true;
				c->st.headers_cut++;
			}
			return;
		}
		s->hdr_done = true;
		{
			size_t head = (size_t)(end - s->hdr.buf) + 4, used = head - before;

			c->held -= s->hdr.len - head;
			s->hdr.len = head;
			s->hdr.buf[head] = 0;
			h1_framing(s);
			p += used;
			n -= used;
		}
		if (dir == 0 && s->length < 0 && !s->chunked)
			s->no_body = true;
		if (dir == 1 && k->ws) { /* frames may follow the 101 in the same read */
			if (k->level == CAPTURE_FULL && n)
				ws_feed(k, dir, h, p, n);
			return;
		}
		/* a body the kernel's arm covers anyway is not worth a map update to stop */
		if (k->level < CAPTURE_FULL && !s->no_body &&
		    (s->length < 0 || (uint64_t)s->length > c->cfg.header_bytes / 4))
			side_enough(k, dir);
	}
	if (!n || s->no_body)
		return;
	s->body_seen += n;
	if (!keep(c, &s->body, p, n, c->cfg.body_bytes) && !s->body_cut) {
		s->body_cut = true;
		c->st.bodies_cut++;
		side_enough(k, dir);
	}
}

static void body_json(const struct redactor *r, const char *name, const struct cap_side *s,
		      struct strbuf *sb)
{
	struct strbuf v = STRBUF_INIT;

	if (!s->started || s->no_body || s->hdr_cut)
		return;
	redact_text(r, s->body.buf ? s->body.buf : "", s->body.len, false, &v);
	sb_addf(sb, ",\"%s\":", name);
	json_str(sb, v.buf ? v.buf : "", v.len);
	sb_addf(sb, ",\"%s_cut\":%s", name, s->body_cut ? "true" : "false");
	if (s->chunked)
		sb_addf(sb, ",\"%s_encoding\":\"chunked\"", name);
	sb_release(&v);
}

/* The budget: a transaction whose captured bytes do not fit is written at summary, said. */
static bool budget_take(struct httpcap *c, uint64_t n, struct strbuf *sb)
{
	if (c->st.bytes_logged + n > c->cfg.budget_bytes) {
		c->st.budget_skipped++;
		sb_addstr(sb, ",\"capture_skipped\":\"budget\"");
		return false;
	}
	c->st.bytes_logged += n;
	return true;
}

enum capture_level capture_h1_render(struct httpcap *c, uint32_t pid, uint64_t ssl,
				     struct strbuf *sb)
{
	struct cap_conn *k = conn_get(c, pid, ssl, false);
	enum capture_level l;

	if (!k || k->h2 || !k->side[0].started) {
		c->st.transactions[CAPTURE_SUMMARY]++;
		return CAPTURE_SUMMARY;
	}
	l = k->level;
	c->st.transactions[l]++;
	if (budget_take(c,
			k->side[0].hdr.len + k->side[1].hdr.len + k->side[0].body.len +
			    k->side[1].body.len,
			sb)) {
		const char *names[2] = {"request_headers", "response_headers"};

		for (int d = 0; d < 2; d++) {
			struct cap_side *s = &k->side[d];

			if (!s->started)
				continue;
			sb_addf(sb, ",\"%s\":[", names[d]);
			if (s->hdr.len)
				h1_headers_json(c->redact, s->hdr.buf, s->hdr.len, sb);
			sb_addch(sb, ']');
			if (s->hdr_cut)
				sb_addf(sb, ",\"%s_cut\":true", names[d]);
		}
		if (l == CAPTURE_FULL) {
			body_json(c->redact, "request_body", &k->side[0], sb);
			body_json(c->redact, "response_body", &k->side[1], sb);
		}
	}
	side_reset(c, &k->side[0]);
	side_reset(c, &k->side[1]);
	if (!k->ws)
		conn_forget(c, k);
	else
		k->ws_live = true;
	return l;
}

/* ------------------------------------------------------------------ WebSocket */

static const char *ws_opcode(uint8_t op)
{
	static const char *const names[16] = {"continuation", "text", "binary", NULL,	NULL,  NULL,
					      NULL,	      NULL,   "close",	"ping", "pong"};

	return names[op & 15];
}

static void ws_emit(struct cap_conn *k, int dir, struct ws_dir *w, bool complete)
{
	struct httpcap *c = k->cap;
	struct strbuf sb = STRBUF_INIT, v = STRBUF_INIT;
	const char *op = ws_opcode(w->opcode);

	if (c->st.bytes_logged + w->payload.len > c->cfg.budget_bytes || !c->emit_ws) {
		c->st.ws_frames_skipped++;
		goto out;
	}
	c->st.bytes_logged += w->payload.len;
	c->st.ws_frames++;
	sb_addstr(&sb, ",\"direction\":");
	sb_addstr(&sb, dir ? "\"received\"" : "\"sent\"");
	sb_addstr(&sb, ",\"opcode\":");
	if (op)
		json_cstr(&sb, op);
	else
		sb_addu(&sb, w->opcode);
	sb_addf(&sb,
		",\"fin\":%s,\"masked\":%s,\"length\":%llu,\"payload\":", w->fin ? "true" : "false",
		w->masked ? "true" : "false", (unsigned long long)w->len);
	redact_text(c->redact, w->payload.buf ? w->payload.buf : "", w->payload.len, false, &v);
	json_str(&sb, v.buf ? v.buf : "", v.len);
	sb_addf(&sb, ",\"payload_cut\":%s", w->cut || !complete ? "true" : "false");
	if (!complete)
		sb_addstr(&sb, ",\"incomplete\":true");
	c->emit_ws(c->ctx, &w->h, sb.buf);
out:
	drop(c, &w->payload);
	sb_release(&sb);
	sb_release(&v);
}

/* RFC 6455 frames of one direction: header, then payload (unmasked), one line per frame. */
static void ws_feed(struct cap_conn *k, int dir, const struct ev_hdr *h, const uint8_t *p, size_t n)
{
	struct ws_dir *w = &k->wsd[dir];
	struct httpcap *c = k->cap;

	while (n) {
		if (!w->in_frame) {
			if (!w->fh_have)
				w->fh_need = 2;
			while (n && w->fh_have < w->fh_need) {
				w->fh[w->fh_have++] = *p++;
				n--;
				if (w->fh_have == 2) {
					uint8_t l7 = w->fh[1] & 0x7f;

					w->fh_need = 2 +
						     (l7 == 126	  ? 2
						      : l7 == 127 ? 8
								  : 0) +
						     ((w->fh[1] & 0x80) ? 4 : 0);
				}
			}
			if (w->fh_have < w->fh_need)
				return;
			{
				uint8_t l7 = w->fh[1] & 0x7f;
				uint32_t at = 2, ext = l7 == 126 ? 2 : l7 == 127 ? 8 : 0;

				w->len = ext ? 0 : l7;
				for (uint32_t i = 0; i < ext; i++)
					w->len = w->len << 8 | w->fh[at++];
				w->fin = w->fh[0] & 0x80;
				w->opcode = w->fh[0] & 0x0f;
				w->masked = w->fh[1] & 0x80;
				if (w->masked)
					memcpy(w->key, w->fh + at, 4);
			}
			w->fh_have = 0;
			w->got = 0;
			w->cut = false;
			w->in_frame = true;
			w->h = *h;
		}
		{
			uint64_t m = w->len - w->got;
			size_t take = m < n ? (size_t)m : n;
			size_t room = w->payload.len < c->cfg.body_bytes
					  ? c->cfg.body_bytes - w->payload.len
					  : 0;
			size_t k2 = take < room ? take : room;
			uint8_t tmp[4096];

			for (size_t i = 0; i < k2;) {
				size_t j = k2 - i < sizeof(tmp) ? k2 - i : sizeof(tmp);

				for (size_t x = 0; x < j; x++)
					tmp[x] = p[i + x] ^
						 (w->masked ? w->key[(w->got + i + x) & 3] : 0);
				if (!keep(c, &w->payload, tmp, j, c->cfg.body_bytes))
					w->cut = true;
				i += j;
			}
			if (k2 < take)
				w->cut = true;
			w->got += take;
			p += take;
			n -= take;
		}
		if (w->got == w->len) {
			w->in_frame = false;
			ws_emit(k, dir, w, true);
		}
	}
}

/* ------------------------------------------------------------------ HTTP/2 */

static struct h2_stream *stream_find(struct cap_conn *k, uint32_t id, size_t *at)
{
	for (size_t i = 0; i < k->nstreams; i++)
		if (k->streams[i]->id == id) {
			if (at)
				*at = i;
			return k->streams[i];
		}
	return NULL;
}

static void stream_emit(struct cap_conn *k, struct h2_stream *s)
{
	struct httpcap *c = k->cap;
	struct strbuf x = STRBUF_INIT;
	static const char *const hn[2] = {"request_headers", "response_headers"};
	static const char *const bn[2] = {"request_body", "response_body"};
	struct http_line l = {
	    .h = &s->h,
	    .h2 = true,
	    .method = s->method[0] ? s->method : NULL,
	    .authority = s->authority[0] ? s->authority : NULL,
	    .path = s->path[0] ? s->path : NULL,
	    .path_cut = s->path_cut,
	    .status = s->status,
	    .req_bytes = s->bytes[0],
	    .resp_bytes = s->status ? s->bytes[1] : -1,
	    .duration_ns = s->t_resp >= s->h.ts && s->status ? (int64_t)(s->t_resp - s->h.ts) : -1,
	    .stream = s->id,
	};

	if (s->reset)
		sb_addstr(&x, ",\"reset\":true");
	if (s->level > CAPTURE_SUMMARY &&
	    budget_take(c, s->hdrs[0].len + s->hdrs[1].len + s->body[0].len + s->body[1].len, &x)) {
		for (int d = 0; d < 2; d++) {
			sb_addf(&x, ",\"%s\":[", hn[d]);
			sb_add(&x, s->hdrs[d].buf ? s->hdrs[d].buf : "", s->hdrs[d].len);
			sb_addch(&x, ']');
			if (s->hdr_cut[d])
				sb_addf(&x, ",\"%s_cut\":true", hn[d]);
		}
		for (int d = 0; s->level == CAPTURE_FULL && d < 2; d++) {
			struct strbuf v = STRBUF_INIT;

			redact_text(c->redact, s->body[d].buf ? s->body[d].buf : "", s->body[d].len,
				    false, &v);
			sb_addf(&x, ",\"%s\":", bn[d]);
			json_str(&x, v.buf ? v.buf : "", v.len);
			sb_addf(&x, ",\"%s_cut\":%s", bn[d], s->body_cut[d] ? "true" : "false");
			sb_release(&v);
		}
	}
	l.level = s->level > CAPTURE_SUMMARY ? capture_level_name(s->level) : NULL;
	l.extra = x.buf;
	c->st.transactions[s->level]++;
	c->st.h2_streams++;
	if (c->emit)
		c->emit(c->ctx, &l);
	sb_release(&x);
}

static void stream_done(struct cap_conn *k, uint32_t id)
{
	size_t at;
	struct h2_stream *s = stream_find(k, id, &at);

	if (!s)
		return;
	stream_emit(k, s);
	stream_free(k->cap, s);
	k->streams[at] = k->streams[--k->nstreams];
}

static void copy_field(char *dst, size_t cap, const struct h2_field *f, bool *cut)
{
	size_t n = f->value_len < cap - 1 ? f->value_len : cap - 1;

	memcpy(dst, f->value, n);
	dst[n] = 0;
	if (cut && n < f->value_len)
		*cut = true;
}

static bool field_is(const struct h2_field *f, const char *name)
{
	return f->name_len == strlen(name) && !memcmp(f->name, name, f->name_len);
}

static void h2_headers(void *ctx, int side, uint32_t id, const struct h2_field *f, size_t n,
		       size_t dropped, bool end_stream)
{
	struct cap_conn *k = ctx;
	struct httpcap *c = k->cap;
	struct h2_stream *s = stream_find(k, id, NULL);

	if (side == H2_CLIENT && !s) {
		if (k->nstreams >= CAPTURE_STREAMS_MAX) {
			c->st.h2_streams_untracked++;
			return;
		}
		s = xcalloc(1, sizeof(*s));
		s->id = id;
		s->h = k->last_h[H2_CLIENT];
		k->streams[k->nstreams++] = s;
		for (size_t i = 0; i < n; i++) {
			if (field_is(&f[i], ":method"))
				copy_field(s->method, sizeof(s->method), &f[i], NULL);
			else if (field_is(&f[i], ":authority"))
				copy_field(s->authority, sizeof(s->authority), &f[i], NULL);
			else if (field_is(&f[i], ":path"))
				copy_field(s->path, sizeof(s->path), &f[i], &s->path_cut);
		}
		s->level = capture_level_of(c, s->authority[0] ? s->authority : NULL);
	} else if (!s) {
		return; /* a stream we do not follow (pushed, untracked) */
	}
	if (side == H2_SERVER) {
		int status = 0;

		for (size_t i = 0; i < n; i++)
			if (field_is(&f[i], ":status") && f[i].value_len == 3)
				status = (f[i].value[0] - '0') * 100 + (f[i].value[1] - '0') * 10 +
					 (f[i].value[2] - '0');
		if (status >= 200) { /* 1xx heads are interim: the final one follows */
			s->status = status;
			s->t_resp = k->last_h[H2_SERVER].ts;
		}
	}
	if (s->level > CAPTURE_SUMMARY) {
		struct strbuf *hb = &s->hdrs[side];
		struct strbuf one = STRBUF_INIT;

		for (size_t i = 0; i < n; i++) {
			sb_reset(&one);
			if (hb->len)
				sb_addch(&one, ',');
			capture_header_json(c->redact, (const char *)f[i].name, f[i].name_len,
					    (const char *)f[i].value, f[i].value_len, &one);
			/* rendered JSON: a field is kept whole or not at all */
			if (hb->len + one.len > c->cfg.header_bytes * 2 ||
			    c->held + one.len > CAPTURE_HELD_MAX) {
				s->hdr_cut[side] = true;
				c->st.headers_cut++;
				break;
			}
			keep(c, hb, one.buf, one.len, c->cfg.header_bytes * 2);
		}
		if (dropped)
			s->hdr_cut[side] = true;
		sb_release(&one);
	}
	if (end_stream && side == H2_SERVER)
		stream_done(k, id);
}

static void h2_data(void *ctx, int side, uint32_t id, const uint8_t *p, size_t n, bool end_stream)
{
	struct cap_conn *k = ctx;
	struct h2_stream *s = stream_find(k, id, NULL);

	if (!s)
		return;
	s->bytes[side] += (int64_t)n;
	if (n && s->level == CAPTURE_FULL && !s->body_cut[side] &&
	    !keep(k->cap, &s->body[side], p, n, k->cap->cfg.body_bytes)) {
		s->body_cut[side] = true;
		k->cap->st.bodies_cut++;
	}
	if (end_stream && side == H2_SERVER)
		stream_done(k, id);
}

static void h2_reset(void *ctx, int side, uint32_t id)
{
	struct cap_conn *k = ctx;
	struct h2_stream *s = stream_find(k, id, NULL);

	(void)side;
	if (s) {
		s->reset = true;
		stream_done(k, id);
	}
}

bool capture_h2_start(struct httpcap *c, const struct ev_tls_data *e)
{
	struct cap_conn *k = conn_get(c, e->h.pid, e->ssl, true);
	struct h2_sink sink = {.headers = h2_headers, .data = h2_data, .reset = h2_reset};

	if (!k)
		return false;
	if (k->h2c || k->side[0].started) { /* an SSL object's address reused for a new one */
		conn_forget(c, k);
		k = conn_get(c, e->h.pid, e->ssl, true);
		if (!k)
			return false;
	}
	sink.ctx = k;
	k->h2c = xmalloc(sizeof(*k->h2c));
	if (h2_init(k->h2c, &sink)) {
		free(k->h2c);
		k->h2c = NULL;
		conn_forget(c, k);
		return false;
	}
	k->h2 = true;
	c->st.h2_connections++;
	return true;
}

static void h2_bytes(struct cap_conn *k, const struct ev_tls_chunk *e, int side)
{
	struct httpcap *c = k->cap;
	struct h2_dir *d = &k->h2c->d[side];

	if (d->broken)
		return;
	k->last_h[side] = e->h;
	if (k->h2_seen[side] == 0 && side == H2_CLIENT && !(e->flags & TLSC_HEAD)) {
		h2_gap(k->h2c, side, "HTTP/2 stream begins without its preface");
		h2_say_broken(k);
		return;
	}
	h2_feed(k->h2c, side, e->data, e->data_len < TLS_CHUNK ? e->data_len : TLS_CHUNK);
	k->h2_seen[side] += e->data_len;
	if (e->flags & TLSC_CUT) {
		c->st.gaps++;
		h2_gap(k->h2c, side, "bytes of one call past the per-call cap were not streamed");
	} else if (k->h2_seen[side] >= c->cfg.h2_bytes) {
		h2_gap(k->h2c, side, "the connection's h2_bytes were spent");
	}
	if (d->broken)
		h2_say_broken(k);
}

/* ------------------------------------------------------------------ chunks */

bool capture_chunk(struct httpcap *c, const struct ev_tls_chunk *e)
{
	int dir = e->dir == TLSD_READ ? 1 : 0;
	struct cap_conn *k = conn_get(c, e->h.pid, e->ssl, false);
	size_t n = e->data_len < TLS_CHUNK ? e->data_len : TLS_CHUNK;

	if (!k)
		return false;
	if (k->h2) {
		h2_bytes(k, e, dir);
		return false;
	}
	if (k->ws_live) {
		if (k->level == CAPTURE_FULL)
			ws_feed(k, dir, &e->h, e->data, n);
		return false;
	}
	if (e->flags & TLSC_CUT)
		c->st.gaps++;
	h1_bytes(k, dir, &e->h, e->data, n);
	return dir == 1 && side_complete(k, 1);
}

void capture_finish(struct httpcap *c)
{
	strmap_for_each(e, &c->conns)
	{
		struct cap_conn *k = e->val;

		for (int d = 0; k->ws && d < 2; d++)
			if (k->wsd[d].in_frame)
				ws_emit(k, d, &k->wsd[d], false);
		if (k->h2c) {
			while (k->nstreams)
				stream_done(k, k->streams[0]->id);
			h2_say_broken(k);
		}
	}
	c->finished = true; /* the log is closed next: nothing more is written */
}

void capture_stats_json(const struct httpcap *c, struct strbuf *sb)
{
	const struct capture_stats *s = &c->st;

	sb_addf(sb,
		"{\"levels\":{\"default\":\"%s\",\"not_allowed\":\"%s\"},\"body_bytes\":%u,"
		"\"budget_bytes\":%llu,\"h2_bytes\":%u,\"transactions\":{\"summary\":%llu,"
		"\"details\":%llu,\"full\":%llu},\"bytes_logged\":%llu,\"budget_skipped\":%llu,"
		"\"headers_cut\":%llu,\"bodies_cut\":%llu,\"held_refused\":%llu,"
		"\"conns_untracked\":%llu,\"gaps\":%llu,\"h2\":{\"connections\":%llu,"
		"\"streams\":%llu,\"streams_untracked\":%llu,\"undecoded\":%llu},"
		"\"websocket\":{\"upgrades\":%llu,\"frames\":%llu,\"frames_skipped\":%llu}}",
		capture_level_name(c->cfg.allowed), capture_level_name(c->cfg.not_allowed),
		c->cfg.body_bytes, (unsigned long long)c->cfg.budget_bytes, c->cfg.h2_bytes,
		(unsigned long long)s->transactions[CAPTURE_SUMMARY] +
		    (unsigned long long)s->transactions[CAPTURE_UNSET],
		(unsigned long long)s->transactions[CAPTURE_DETAILS],
		(unsigned long long)s->transactions[CAPTURE_FULL],
		(unsigned long long)s->bytes_logged, (unsigned long long)s->budget_skipped,
		(unsigned long long)s->headers_cut, (unsigned long long)s->bodies_cut,
		(unsigned long long)s->held_refused, (unsigned long long)s->conns_untracked,
		(unsigned long long)s->gaps, (unsigned long long)s->h2_connections,
		(unsigned long long)s->h2_streams, (unsigned long long)s->h2_streams_untracked,
		(unsigned long long)s->h2_undecoded, (unsigned long long)s->ws_upgrades,
		(unsigned long long)s->ws_frames, (unsigned long long)s->ws_frames_skipped);
}
