// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * runwarden's kernel side: every program that observes a job.
 *
 * Scope: tracepoint programs ask bpf_current_task_under_cgroup() whether the
 * current task lives in the job's cgroup subtree (map `scope`, slot 0), so a
 * process outside the job costs one helper call and produces nothing. The
 * cgroup programs (connect/sendmsg/skb) are attached to that subtree and need
 * no check.
 *
 * Loss: every record is sent with bpf_ringbuf_output() at its used length;
 * a failed send, or a scratch buffer found busy (preempted user on this CPU),
 * increments lost[kind]. Nothing is dropped without being counted.
 *
 * One translation unit, one object, one skeleton: the programs and maps live
 * in the parts below by hook family. The parts are not headers in the usual
 * sense: each is included once, here, and may use anything an earlier one
 * defines, so the order is the dependency order.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* In dependency order: each part uses only what the parts above it define. */
#include "core.bpf.h"	  /* ring, loss counters, scratch, config, scope check, socket owners */
#include "judge.bpf.h"	  /* policy maps and the destination judge */
#include "path.bpf.h"	  /* path walk (dentry chain to a path string) */
#include "fence.bpf.h"	  /* fence state and integrity: cgroup moves, pidfd_getfd, inbound */
#include "memread.bpf.h"  /* another process's memory: ptrace, process_vm_*, /proc/PID/mem */
#include "file.bpf.h"	  /* file identity, sensitive names, opens */
#include "host.bpf.h"	  /* engine sockets, mounts, standard descriptors at exec */
#include "proc.bpf.h"	  /* exec, fork, exit */
#include "sockaddr.bpf.h" /* connect/sendmsg hooks and the connect tracepoints */
#include "skb.bpf.h"	  /* packets: parse, backstop, DNS capture */
#include "conn.bpf.h"	  /* a TCP connection's first bytes: SNI, ALPN, HTTP Host, judged */
/* secrets leaving: SSL_write plaintext and plain TCP segments, scanned */
#include "secretscan.bpf.h"
/* HTTP requests by `methods:`/`paths:`; inside TLS at SSL_write and gnutls_record_send */
#include "httpjudge.bpf.h"
#include "socket.bpf.h" /* socket creation: raw sockets, egress families */
#include "tls.bpf.h"	/* HTTP inside TLS: uprobes on OpenSSL's SSL_write/SSL_read */
#include "gnutls.bpf.h" /* the same for GnuTLS: gnutls_record_send/gnutls_record_recv */
