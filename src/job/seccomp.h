/*
 * The seccomp filter `runwarden run` puts on an enforce-mode job: the few
 * things the kernel programs cannot see or refuse, refused before they happen
 * (EPERM), for the job and everything it starts (filters are inherited and
 * cannot be removed). See docs/design.md, "Fence integrity".
 */
#ifndef RW_SECCOMP_H
#define RW_SECCOMP_H

/* Installs the filter on the calling process. 0, or -1 with errno set. */
int job_seccomp_install(void);

#endif
