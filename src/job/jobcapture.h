/* The job's capture levels (src/observe/capture.h) from its policy: the level of each
 * transaction by the entry that admits its authority, and the kernel told what to stream. */
#ifndef RW_JOBCAPTURE_H
#define RW_JOBCAPTURE_H
#include <stddef.h>

#include "job/enforce.h"
#include "kernel/loader.h"
#include "observe/capture.h"

/* Sets cap's config and hooks from the policy and writes the kernel's tls_capcfg. */
int job_capture_arm(struct httpcap *cap, const struct enforce *e, const struct loader *ld,
		    char *err, size_t errlen);

#endif
