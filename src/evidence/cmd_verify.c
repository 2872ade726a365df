/* `runwarden verify`: offline check of a run's evidence against a pinned public key. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "common/cli.h"
#include "common/util.h"
#include "evidence/codec.h"
#include "evidence/verify.h"

static const char verify_usage[] =
    "usage: runwarden verify --key PUB.pem [--log events.ndjson] [--policy FILE] [--json]\n"
    "                        [--payload-out FILE] ATTESTATION\n"
    "\n"
    "Checks ATTESTATION (attestation.dsse.json or attestation.sigstore.json) with the pinned\n"
    "public key, then the statement, the event log's hash chain and closing record against the\n"
    "statement's digests, and the policy file's digest.\n"
    "\n"
    "  --key PUB.pem       the public key you trust (never the envelope's key id)\n"
    "  --log FILE          event log (default: events.ndjson beside ATTESTATION)\n"
    "  --policy FILE       also check this policy file against the attested digest\n"
    "  --json              print a machine-readable report\n"
    "  --payload-out FILE  when valid, write the verified statement bytes there\n"
    "\n"
    "Exit status: 0 valid, 1 invalid, 2 usage or key error, 3 self-consistent only\n"
    "(signed by the ephemeral key written beside the evidence).\n";

static void print_text(const struct verify_report *r, const char *att)
{
	const char *base;
	size_t i;
	json_t *n;

	switch (r->verdict) {
	case VERDICT_INVALID:
	case VERDICT_ERROR:
		/* One line: verdict, file, then the reason (which may name the line). */
		base = r->file ? r->file : att;
		printf("%s: ", r->verdict == VERDICT_ERROR ? "error" : "invalid");
		if (!strstr(r->reason, base))
			printf("%s: ", base);
		printf("%s\n", r->reason);
		break;
	case VERDICT_SELF_CONSISTENT:
		printf("self-consistent only: %s\n", r->reason);
		break;
	case VERDICT_VALID:
		printf("valid: %s is signed by the pinned key and matches its event log\n", att);
		break;
	}
	if (r->verdict == VERDICT_VALID || r->verdict == VERDICT_SELF_CONSISTENT) {
		printf("  key:    %s %s\n", r->key_type, r->keyid);
		printf(
		    "  log:    %s: %llu lines, chain intact, closing record present, sha256 %s\n",
		    r->log_path, (unsigned long long)r->log_lines, r->log_sha256);
		if (r->run_complete)
			printf("  run:    complete (no hook missing, no event lost)\n");
		else
			printf("  run:    PARTIAL: %lld events lost or hooks missing; the log is "
			       "authentic "
			       "but does not show everything\n",
			       (long long)r->events_lost);
		printf("  policy: %s%s\n",
		       r->policy == 0	? "none recorded"
		       : r->policy == 1 ? "digest recorded (pass --policy FILE to check it) "
					: "matches ",
		       r->policy ? r->policy_sha256 : "");
	}
	json_array_foreach(r->notes, i, n) printf("  note:   %s\n", json_string_value(n));
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, 0, 'k'},
	    {"log", required_argument, 0, 'l'},
	    {"policy", required_argument, 0, 'p'},
	    {"json", no_argument, 0, 'j'},
	    {"payload-out", required_argument, 0, 'o'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	struct verify_opts o = {0};
	struct verify_report r;
	const char *payload_out = NULL;
	bool json = false;
	char err[EV_ERRLEN];
	int c, rc;

	optind = 1;
	while ((c = cli_getopt("verify", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'k':
			o.key_path = optarg;
			break;
		case 'l':
			o.log_path = optarg;
			break;
		case 'p':
			o.policy_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'o':
			payload_out = optarg;
			break;
		case 'h':
			fputs(verify_usage, stdout);
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (!o.key_path)
		return cli_usage("verify", "--key PUB.pem is required: the public key you trust");
	if (optind != argc - 1)
		return cli_usage("verify", "give exactly one attestation file");
	o.attestation = argv[optind];
	rc = verify_evidence(&o, &r);
	if (json) {
		json_t *j = verify_report_json(&r);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
	} else if (rc != VERDICT_ERROR) {
		print_text(&r, o.attestation);
	}
	/* An error (unreadable key or file) is said once, on stderr. */
	if (rc == VERDICT_ERROR)
		rw_err_cmd("verify", "error: %s", r.reason);
	if (rc == VERDICT_VALID && payload_out &&
	    ev_write_file(payload_out, sb_str(&r.payload), r.payload.len, err)) {
		rw_err("verify: %s", err);
		rc = 2;
	}
	verify_report_release(&r);
	return rc;
}
