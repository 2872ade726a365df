/*
 * Who may open connections to the job: the policy's `inbound:` entries (or,
 * when it has none, 127.0.0.1 and ::1) in the kernel's inbound tries. The
 * kernel judges each peer's SYN against them (cgroup_skb/ingress, enforce
 * mode drops) and each accepted connection (accept4 exit, recorded).
 */
#ifndef RW_INBOUND_H
#define RW_INBOUND_H
#include <stddef.h>

#include "kernel/loader.h"
#include "policy/policy.h"

/* 0, or -1 with a one-line reason in err. */
int inbound_arm(const struct policy *pol, const struct loader *ld, char *err, size_t errlen);

#endif
