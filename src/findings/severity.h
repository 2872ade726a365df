/*
 * Finding severities, once: the policy (`on_finding:`), the findings engine and
 * every report name them from this list, lowest first.
 */
#ifndef RW_SEVERITY_H
#define RW_SEVERITY_H

#define FINDING_SEVERITIES(X)                                                                      \
	X(INFO, "info")                                                                            \
	X(LOW, "low")                                                                              \
	X(MEDIUM, "medium")                                                                        \
	X(HIGH, "high")                                                                            \
	X(CRITICAL, "critical")

enum finding_severity {
#define SEV_ENUM_(e, name) SEV_##e,
	FINDING_SEVERITIES(SEV_ENUM_)
#undef SEV_ENUM_
	    SEV_COUNT
};

/* What a policy asks for when a finding of a severity is raised (`on_finding:`). */
enum finding_action {
	FINDING_ACT_NONE = 0,
	FINDING_ACT_KILL, /* enforce mode: end the whole job at once (lockdown) */
};

/* "high" -> SEV_HIGH; -1 for anything else. */
int finding_severity_parse(const char *s);
const char *finding_severity_name(int sev);

#endif
