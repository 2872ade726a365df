/* The enforce-mode job's seccomp filter (see seccomp.h). */
#include "job/seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "rwnet.h"

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
// cppcheck-suppress preprocessorErrorDirective
#error "runwarden: add this architecture's AUDIT_ARCH_ value"
#endif

#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#define X32_BIT 0x40000000u

/* Families whose sockets reach other machines without IP (vsock to the
 * hypervisor, Bluetooth, CAN, TIPC, ...): no cgroup hook sees them. */
#define REMOTE_FAMILY_(nr, name, cls) +((cls) == FC_REMOTE)
enum { N_REMOTE = 0 RW_FAMILIES(REMOTE_FAMILY_) };
#undef REMOTE_FAMILY_

#define DENY  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/*
 * What is refused, and why each cannot be left to the kernel programs:
 * - system calls of another ABI (32-bit int 0x80 on x86-64, x32): the
 *   per-syscall tracepoints do not fire for them, so an open or a socket made
 *   that way would go unrecorded. ENOSYS, as on a kernel built without them.
 * - pidfd_getfd(2): a socket taken from a process outside the job keeps that
 *   process's cgroup, and the fence's hooks follow the socket's cgroup.
 * - socket(2) of a non-IP network family: cgroup/sock_create runs for IPv4
 *   and IPv6 only, and these need no capability the job lacks.
 * - process_vm_writev(2): a job may write the memory of any process of its
 *   uid outside the job (the CI runner's worker under `--user runner`) and
 *   make that process connect, unfenced. The write is done inside the one
 *   call, so seeing it at the exit tracepoint is too late; ptrace and
 *   /proc/PID/mem writes are stopped in the kernel programs instead.
 * - io_uring_setup(2): io_uring opens files into its own fixed-file table
 *   and writes through it without a descriptor or a syscall tracepoint ever
 *   seeing them (a linked open of another process's /proc/PID/mem and write);
 *   failed opens and IORING_OP_SOCKET go unrecorded. Container runtimes
 *   refuse it by default for the same reasons, and its users fall back.
 */
int job_seccomp_install(void)
{
	struct sock_filter f[12 + 2 * N_REMOTE + 4];
	unsigned n = 0, fam_start;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, X32_BIT, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pidfd_getfd, 0, 1);
	f[n++] = (struct sock_filter)DENY;
	f[n++] =
	    (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_writev, 0, 1);
	f[n++] = (struct sock_filter)DENY;
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1);
	f[n++] = (struct sock_filter)DENY;
	/* socket(): anything else is allowed; for socket, compare the family
	 * (args[0], low word on little-endian) against each remote family. */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0);
	f[n++] = (struct sock_filter)ALLOW;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, args[0]));
	fam_start = n;
#define REMOTE_JUMP_(nr, name, cls)                                                                \
	if ((cls) == FC_REMOTE)                                                                    \
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 0);
	RW_FAMILIES(REMOTE_JUMP_)
#undef REMOTE_JUMP_
	/* Each family test jumps, when equal, to the DENY right after the list. */
	for (unsigned i = fam_start; i < n; i++)
		f[i].jt = (unsigned char)(n - i);
	f[n++] = (struct sock_filter)ALLOW;
	f[n++] = (struct sock_filter)DENY;

	struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};

	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}
