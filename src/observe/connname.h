/* The name a TCP connection's first bytes asked for (bpf/conn.bpf.h): its log members, and the
 * reset of a connection the kernel refused. */
#ifndef RUNWARDEN_CONNNAME_H
#define RUNWARDEN_CONNNAME_H

#include "common/strbuf.h"
#include "events.h"

/* The record's own members, from ",\"proto\"" on (docs/events.md, conn_name). */
void conn_name_members(struct strbuf *sb, const struct ev_conn_name *e);
/* "sni_mismatch", ...; NULL for none. */
const char *conn_name_reason(unsigned reason);
/* Ends the connection the record names (SOCK_DESTROY through sock_diag, matched by its
 * addresses, ports and socket cookie): the client fails at once rather than retransmitting
 * a segment the kernel keeps dropping. 0, or -1 with errno (ENOENT: already gone). */
int conn_name_reset(const struct ev_conn_name *e);

#endif
