/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: HTTP inside TLS for GnuTLS (libgnutls.so.30: apt's https method,
 * git over https through libcurl-gnutls, wget), read like OpenSSL's in tls.bpf.h, whose
 * emission path (tls_data_lib, tls_announce) and per-thread read arguments (ssl_read_note,
 * ssl_read_take) it shares: the records differ only in their `lib`.
 *
 * Which entry points: the ones the clients import, gnutls_record_send and gnutls_record_recv
 * (checked with nm -D on apt's https method, libcurl-gnutls and wget). Not gnutls_record_send2
 * as well: gnutls_record_send tail-calls it through the PLT, so a probe on both would see each
 * write twice. gnutls_record_recv does not go through another exported function.
 * Hooks: uprobe/gnutls_record_send (tls.bpf.h's write program), uprobe/gnutls_record_recv,
 * uretprobe/gnutls_record_recv, uprobe/gnutls_server_name_set, uprobe/gnutls_handshake,
 * uprobe/gnutls_deinit.
 */

/* gnutls_record_send(session, data, data_size) is read by tls.bpf.h's write probe, attached
 * with the cookie that says GnuTLS (one program for every write function). */

/* gnutls_record_recv(session, data, data_size): the buffer is filled by the time it returns. */
SEC("uprobe/gnutls_record_recv")
int BPF_KPROBE(rw_gnutls_recv, void *session, void *data)
{
	if (!in_scope())
		return 0;
	ssl_read_note((u64)session, (u64)data, 0);
	return 0;
}

/* It returns the bytes read (ssize_t; <= 0: none, or an error code). */
SEC("uretprobe/gnutls_record_recv")
int BPF_KRETPROBE(rw_gnutls_recv_ret, s64 ret)
{
	struct ssl_read_args a;

	if (!ssl_read_take(&a) || ret <= 0)
		return 0;
	tls_data_lib(a.ssl, a.buf, ret, TLSD_READ, TLSL_GNUTLS, NULL);
	return 0;
}

/* The server name a GnuTLS client puts in its hello, for http_judge's Host check:
 * gnutls_server_name_set(session, GNUTLS_NAME_DNS = 1, name, name_length); the handshake fixes
 * it; gnutls_deinit frees the session (its address may be the next one's). */
SEC("uprobe/gnutls_server_name_set")
int BPF_KPROBE(rw_gnutls_sni, void *session, int type, const void *name, u64 len)
{
	if (type == 1 && in_scope())
		hj_sni_set((u64)session, name, len > FB_NAME ? FB_NAME : (s64)len);
	return 0;
}

SEC("uprobe/gnutls_handshake")
int BPF_KPROBE(rw_gnutls_handshake, void *session)
{
	if (in_scope())
		hj_sni_used((u64)session);
	return 0;
}

SEC("uprobe/gnutls_deinit")
int BPF_KPROBE(rw_gnutls_deinit, void *session)
{
	struct hj_ssl_key k = {.ssl = (u64)session, .tgid = bpf_get_current_pid_tgid() >> 32};

	if (in_scope())
		bpf_map_delete_elem(&ssl_sni, &k);
	return 0;
}
