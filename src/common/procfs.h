/* Reading what /proc says about a process that may be hostile, within fixed bounds. */
#ifndef RW_PROCFS_H
#define RW_PROCFS_H
#include <stddef.h>
#include <sys/types.h>

/*
 * /proc/PID/cmdline as one line of text for a summary or a status reply: the arguments
 * joined by spaces, trailing separators dropped, at most cap - 1 bytes and NUL-terminated
 * (cap >= 1). The process owns those bytes (it can rewrite its argv), so they are only ever
 * text to escape: newlines and any other bytes are kept as they are. Returns the length; 0
 * when the process is gone or shows no command line (a kernel thread, a zombie).
 */
size_t proc_cmdline(pid_t pid, char *out, size_t cap);
/* The same bytes as the kernel gives them: the arguments NUL-separated (for redacting one
 * argument at a time), at most cap - 1 bytes, NUL-terminated. */
size_t proc_cmdline_args(pid_t pid, char *out, size_t cap);

#endif
