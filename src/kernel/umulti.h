/*
 * uprobe_multi links (kernel 6.6+) for the TLS library probes.
 *
 * A uprobe attached through a perf event is detached under the kernel's
 * tracing event lock, and the detach waits for an RCU grace period while it
 * holds it: with ~30 probes, a copy being unloaded (a private copy's end, the
 * holder unloading an idle one) held every other load's uprobe attach for
 * seconds. A uprobe_multi link is attached and detached without that lock.
 * Debian 12's libbpf (1.1) predates these links, so they are made here with
 * the bpf(2) command itself; older kernels keep the perf-event uprobes.
 */
#ifndef RW_UMULTI_H
#define RW_UMULTI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpf_program;

/* True when the kernel has uprobe_multi links (its BTF has the link's type)
 * and RUNWARDEN_NO_UPROBE_MULTI is not set. Looked up once. */
bool umulti_supported(void);
/* Marks a program for uprobe_multi links: call before the object is loaded. */
int umulti_prepare(struct bpf_program *p);
/* The file offset of function func in the ELF file path (its dynamic or
 * static symbols): 0, or -1 with the reason in err. */
int umulti_func_offset(const char *path, const char *func, uint64_t *off, char *err, size_t errlen);
/* A link running prog_fd at offset off of path (on return when ret), with the
 * attach cookie: the link's fd, or -1 with errno set. */
int umulti_attach(int prog_fd, const char *path, uint64_t off, uint64_t cookie, bool ret);

#endif
