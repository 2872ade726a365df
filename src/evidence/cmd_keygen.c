/* `runwarden keygen`: writes a signing key pair (PREFIX.key, mode 0600, and PREFIX.pub). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "common/cli.h"
#include "common/util.h"
#include "evidence/codec.h"
#include "evidence/keys.h"

static const char keygen_usage[] =
    "usage: runwarden keygen --out PREFIX [--ecdsa] [--force]\n"
    "\n"
    "Writes PREFIX.key (private, PEM PKCS#8, mode 0600) and PREFIX.pub (public, PEM SPKI)\n"
    "and prints the key id (SHA-256 of the public key's SubjectPublicKeyInfo DER).\n"
    "\n"
    "  --out PREFIX   where to write the pair\n"
    "  --ecdsa        ECDSA P-256 instead of Ed25519\n"
    "  --force        replace existing files\n"
    "\n"
    "Keep PREFIX.key where the watched job cannot read it (docs/evidence.md).\n";

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, 0, 'o'},
	    {"ecdsa", no_argument, 0, 'e'},
	    {"force", no_argument, 0, 'f'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	const char *prefix = NULL;
	enum key_type type = KEY_ED25519;
	bool force = false;
	char err[EV_ERRLEN];
	struct strbuf priv = STRBUF_INIT, pub = STRBUF_INIT;
	struct key k;
	int c, rc = 1;

	optind = 1;
	while ((c = cli_getopt("keygen", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'o':
			prefix = optarg;
			break;
		case 'e':
			type = KEY_ECDSA_P256;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			fputs(keygen_usage, stdout);
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (!prefix)
		return cli_usage("keygen", "--out PREFIX is required");
	if (optind != argc)
		return cli_usage("keygen", "unexpected argument '%s'", argv[optind]);
	sb_addf(&priv, "%s.key", prefix);
	sb_addf(&pub, "%s.pub", prefix);
	if (key_generate(&k, type, err)) {
		rw_err("keygen: %s", err);
		goto out;
	}
	if (key_write_private(&k, priv.buf, force, err) ||
	    key_write_public(&k, pub.buf, force, err)) {
		rw_err("keygen: %s", err);
		key_free(&k);
		goto out;
	}
	printf("%s key written: %s (private, 0600), %s (public)\nkeyid %s\n",
	       type == KEY_ED25519 ? "Ed25519" : "ECDSA P-256", priv.buf, pub.buf, k.keyid);
	key_free(&k);
	rc = 0;
out:
	sb_release(&priv);
	sb_release(&pub);
	return rc;
}
