#!/usr/bin/env bash
# PKCS#11 conformance, GnuPG step (called by conformance/run): gpg-agent with gnupg-pkcs11-scd
# as its smart-card daemon, configured with nothing but the module's path (no
# provider-p1-cert-private), as for a hardware token. Shows that the token's certificate and
# key are listed before any login (public objects in a public session), that signing asks the
# PIN through gpg-agent and is done on the cluster (verified by OpenSSL against the token's
# certificate), and that gpg makes and verifies an OpenPGP signature with the key.
#
# Usage: MODULE=<module .so> USER_PIN=<application PIN> MODLOG=<module log> \
#          MPCHSM_PKCS11_CONF=<module configuration> conformance/gnupg-scd.sh <CKA_ID in hex>
# The key with that CKA_ID must be RSA, allowed to sign, and have a certificate with the same
# CKA_ID on the token (gnupg-pkcs11-scd offers only keys that have one).
set -euo pipefail
ID=${1:?usage: gnupg-scd.sh <CKA_ID in hex>}
: "${MODULE:?}" "${USER_PIN:?}" "${MODLOG:?}" "${MPCHSM_PKCS11_CONF:?}"
for tool in gpg gpg-agent gpg-connect-agent gpgconf gnupg-pkcs11-scd pkcs11-tool openssl node; do
  command -v "$tool" >/dev/null || { echo "gnupg-scd: $tool is missing (Debian: gnupg, gnupg-pkcs11-scd)" >&2; exit 1; }
done

export GNUPGHOME
GNUPGHOME=$(mktemp -d "${TMPDIR:-/tmp}/mpchsm-gnupg-XXXXXX")
chmod 700 "$GNUPGHOME"
# gnupg-pkcs11-scd makes its socket directory here (default: TMPDIR), so it goes with the home.
export GNUPG_PKCS11_SOCKETDIR=$GNUPGHOME
cleanup() {
  status=$?
  [ $status -eq 0 ] || tail -n 20 "$GNUPGHOME/agent.log" >&2 2>/dev/null || true
  gpgconf --kill gpg-agent >/dev/null 2>&1 || true # the agent stops its scdaemon as it exits
  rm -rf "$GNUPGHOME"
}
trap cleanup EXIT
fail() { echo "FAIL (gnupg-pkcs11-scd): $*" >&2; exit 1; }
# Every agent conversation is bounded; the PIN reaches gpg-agent as the answer to its loopback
# inquiry, read from a pipe (never a file or a command line).
agent() { timeout 30 gpg-connect-agent --no-autostart "$@" /bye; }
with_pin() { "$@" 3< <(printf '%s' "$USER_PIN"); }

printf 'scdaemon-program %s\n' "$(command -v gnupg-pkcs11-scd)" >"$GNUPGHOME/gpg-agent.conf"
printf 'providers p1\nprovider-p1-library %s\n' "$MODULE" >"$GNUPGHOME/gnupg-pkcs11-scd.conf"
# Started here so that it and the scdaemon it spawns have this environment (MPCHSM_PKCS11_CONF);
# `--daemon` returns once the agent listens.
timeout 30 gpg-agent --daemon --log-file "$GNUPGHOME/agent.log" >/dev/null 2>>"$GNUPGHOME/agent.log" ||
  { cat "$GNUPGHOME/agent.log"; fail "gpg-agent did not start"; }

logins() { grep -c 'logged in as' "$MODLOG" || true; }
before=$(logins)
agent 'SCD LEARN --force' >"$GNUPGHOME/learn.out" 2>&1 || { cat "$GNUPGHOME/learn.out"; fail "SCD LEARN"; }
cat "$GNUPGHOME/learn.out"
pair=$(grep -E "^S KEYPAIRINFO [0-9A-F]{40} .*/$ID\$" "$GNUPGHOME/learn.out" | head -n 1) || fail "SCD LEARN lists no key with CKA_ID $ID"
grep -q '^S KEY-FRIEDNLY ' "$GNUPGHOME/learn.out" || fail "SCD LEARN names no certificate subject"
[ "$(logins)" = "$before" ] || fail "listing the token's keys logged in (public objects must be visible without a login)"
GRIP=$(echo "$pair" | cut -d' ' -f3)
echo "listed before login: key $GRIP (CKA_ID $ID)"

# The token's certificate, read without a login; its public key checks the signatures below.
pkcs11-tool --module "$MODULE" --read-object --type cert --id "$ID" --output-file "$GNUPGHOME/cert.der" >/dev/null 2>&1 ||
  fail "the certificate with CKA_ID $ID cannot be read without a login"
openssl x509 -inform DER -in "$GNUPGHOME/cert.der" -noout -pubkey >"$GNUPGHOME/pub.pem"

# gpg-agent's own path for a card key: LEARN writes the key's stub (shadowed key), then
# SIGKEY/SETHASH/PKSIGN divert to gnupg-pkcs11-scd, which asks the PIN (NEEDPIN) and signs.
printf 'signed through gpg-agent and gnupg-pkcs11-scd\n' >"$GNUPGHOME/data"
HASH=$(openssl dgst -sha256 -r "$GNUPGHOME/data" | cut -d' ' -f1)
with_pin agent 'LEARN' 'OPTION pinentry-mode=loopback' '/definqfile PASSPHRASE /dev/fd/3' \
  "/datafile $GNUPGHOME/sig.sexp" "SIGKEY $GRIP" "SETHASH --hash=sha256 $HASH" 'PKSIGN' >"$GNUPGHOME/pksign.out" 2>&1 ||
  { cat "$GNUPGHOME/pksign.out"; fail "gpg-agent PKSIGN"; }
[ -s "$GNUPGHOME/sig.sexp" ] || { cat "$GNUPGHOME/pksign.out"; fail "gpg-agent PKSIGN returned no signature"; }
[ "$(logins)" -gt "$before" ] || fail "a signature was made without a login"
# The agent answers (sig-val(rsa(s <big-endian integer>))); OpenSSL wants it at the modulus' size.
node -e '
const fs = require("fs");
const [sexp, pem, out] = process.argv.slice(1);
const b = fs.readFileSync(sexp);
const m = /^\(7:sig-val\(3:rsa\(1:s(\d+):/.exec(b.toString("latin1"));
if (!m) throw new Error("not an RSA sig-val: " + b.subarray(0, 32).toString("latin1"));
let s = b.subarray(m[0].length, m[0].length + Number(m[1]));
const size = require("crypto").createPublicKey(fs.readFileSync(pem)).asymmetricKeyDetails.modulusLength / 8;
while (s.length > size && s[0] === 0) s = s.subarray(1);
fs.writeFileSync(out, Buffer.concat([Buffer.alloc(Math.max(0, size - s.length)), s]));
' "$GNUPGHOME/sig.sexp" "$GNUPGHOME/pub.pem" "$GNUPGHOME/sig.bin"
openssl dgst -sha256 -verify "$GNUPGHOME/pub.pem" -signature "$GNUPGHOME/sig.bin" "$GNUPGHOME/data" ||
  fail "the signature through gpg-agent does not verify against the token's certificate"

# gpg: an OpenPGP key whose secret part is the card key (by keygrip), a detached signature, gpg --verify.
cat >"$GNUPGHOME/keyparams" <<EOF
Key-Type: RSA
Key-Grip: $GRIP
Key-Usage: sign
Name-Real: mpchsm conformance
Name-Email: conformance@mpchsm.invalid
Expire-Date: 1d
%commit
EOF
gpg_pin() { with_pin timeout 30 gpg --batch --pinentry-mode loopback --passphrase-fd 3 "$@"; }
gpg_pin --gen-key "$GNUPGHOME/keyparams" >"$GNUPGHOME/gpg.out" 2>&1 || { cat "$GNUPGHOME/gpg.out"; fail "gpg key from the card's keygrip"; }
gpg_pin -u conformance@mpchsm.invalid --detach-sign -o "$GNUPGHOME/data.sig" "$GNUPGHOME/data" >"$GNUPGHOME/gpg.out" 2>&1 ||
  { cat "$GNUPGHOME/gpg.out"; fail "gpg --detach-sign"; }
timeout 30 gpg --batch --verify "$GNUPGHOME/data.sig" "$GNUPGHOME/data" >"$GNUPGHOME/verify.out" 2>&1 || true
grep '^gpg: Good signature from "mpchsm conformance' "$GNUPGHOME/verify.out" || { cat "$GNUPGHOME/verify.out"; fail "gpg --verify"; }
echo "gpg-agent PKSIGN verified by OpenSSL; gpg --detach-sign verified by gpg"
