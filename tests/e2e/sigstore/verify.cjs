// Verifies a runwarden attestation.sigstore.json with @sigstore/verify, offline,
// trusting only the given public key: no transparency log, no timestamps.
// usage: node verify.cjs BUNDLE.json PUB.pem   (exit 0 verified, 1 rejected, 2 usage)
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

// protobuf-specs PublicKeyDetails values.
const PKIX_ECDSA_P256_SHA_256 = 5;
const PKIX_ED25519 = 7;

function main(argv) {
  if (argv.length !== 2) {
    console.error('usage: node verify.cjs BUNDLE.json PUB.pem');
    return 2;
  }
  const json = JSON.parse(fs.readFileSync(argv[0], 'utf8'));
  const key = crypto.createPublicKey(fs.readFileSync(argv[1]));
  const keyDetails = key.asymmetricKeyType === 'ed25519' ? PKIX_ED25519 : PKIX_ECDSA_P256_SHA_256;
  const hint = json.verificationMaterial.publicKey.hint;
  const emptyRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
  };
  const trust = toTrustMaterial(emptyRoot, {
    [hint]: { rawBytes: key.export({ type: 'spki', format: 'der' }), keyDetails },
  });
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  try {
    const signer = verifier.verify(toSignedEntity(bundleFromJSON(json)));
    console.log(`verified: key ${signer.key.asymmetricKeyType}, hint ${hint}`);
    return 0;
  } catch (e) {
    console.log(`rejected: ${e.code || ''} ${e.message}`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
