/* Bounded reads of /proc (see procfs.h). */
#include "common/procfs.h"

#include <stdio.h>

#include "common/util.h"

size_t proc_cmdline_args(pid_t pid, char *out, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_text_bounded(path, out, cap);
	return n > 0 ? (size_t)n : 0;
}

size_t proc_cmdline(pid_t pid, char *out, size_t cap)
{
	ssize_t n = (ssize_t)proc_cmdline_args(pid, out, cap);

	for (ssize_t i = 0; i < n; i++)
		if (!out[i])
			out[i] = ' ';
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = 0;
	return (size_t)n;
}
