/* Helpers shared by the policy module's own files (parser, block list, learn); not an API. */
#ifndef RW_POLICY_INT_H
#define RW_POLICY_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "policy/policy.h"

/* Appends a copy of e (host string duplicated). */
void policy_list_add(struct policy_list *l, const struct policy_entry *e);
/* Sorts and merges rules in place; returns the new count (may exceed POLICY_RULES_MAX). */
size_t policy_rules_merge(struct policy_rule *r, size_t n);
/* ::ffff:a.b.c.d */
bool policy_v4mapped(const uint8_t a[16]);
/* Appends s as a YAML double-quoted scalar. */
void policy_yaml_quote(struct strbuf *sb, const char *s);

#endif
