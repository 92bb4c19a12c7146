// policy/genesis.ts: a genesis verifies only when every founding administrator signed exactly
// the document at hand. Missing signatures, members edited after signing (an endpoint, a
// signer's identity, an administrator removed, the threshold), signatures moved between
// administrators and enrolments sealed to other signers are refused, each with a reason that
// names what is wrong.
import { describe, expect, it } from 'vitest';
import { enrol } from '../../cli/enrolment.js';
import { exportPublicIdentity, identityFromSecrets, type IdentitySecrets } from '../../contract/identity/identity.js';
import { newPrincipal } from '../../gateway/principals.js';
import { adminFile, createGenesis, GenesisError, signGenesis, verifyGenesisFile, type GenesisFile } from '../../policy/index.js';
import { seededRng } from '../helpers/rng.js';
import { seededIdentity } from '../helpers/signer.js';

const KDF = { salt: '00'.repeat(16), iterations: 1000 };
const adminSecret = (name: string) => Uint8Array.from(seededRng(`${name}/approval`)(32));
const ADMINS = ['admin1', 'admin2'];
const signerFile = (name: string, id: IdentitySecrets = seededIdentity(name), port = 4601) => ({
  Signer: 'mpchsm-signer-v1',
  Name: name,
  Endpoint: `https://127.0.0.1:${port}`,
  Identity: exportPublicIdentity(id),
  Seal: 'software',
});
const SIGNERS = ['signer1', 'signer2', 'signer3'];
const gatewayFile = {
  Gateway: 'mpchsm-gateway-v1',
  Identity: exportPublicIdentity(seededIdentity('gateway')),
  Kms: 'http://127.0.0.1:4600',
  Pkcs11: '127.0.0.1:4700',
  Region: 'us-east-1',
  Account: '111122223333',
  PinKdf: KDF,
};

function unsigned(clusterId = 'mpchsm-test'): GenesisFile {
  return createGenesis({
    clusterId,
    threshold: 2,
    gateway: gatewayFile,
    signers: SIGNERS.map((s, i) => signerFile(s, seededIdentity(s), 4601 + i)),
    admins: ADMINS.map((a) => adminFile(a, adminSecret(a))),
  });
}

/** `name`'s signature, with its KMS secrets sealed to the document's signers. */
function sign(file: GenesisFile, name: string): GenesisFile {
  const recipients = file.Genesis.Signers.map((s) => ({ party: s.Id, identity: seededIdentity(s.Name).public }));
  return signGenesis(file, name, adminSecret(name), enrol(newPrincipal(name, 'admin', KDF), recipients));
}
const signedByAll = (file = unsigned()) => ADMINS.reduce(sign, file);
/** A deep copy to edit. */
const copy = (f: GenesisFile): GenesisFile => JSON.parse(JSON.stringify(f)) as GenesisFile;
const refusal = (raw: unknown, opts?: { complete: boolean }): string => {
  try {
    verifyGenesisFile(raw, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(GenesisError);
    return (e as Error).message;
  }
  throw new Error('the genesis verified');
};

describe('verifyGenesisFile', () => {
  it('accepts a genesis every founding administrator signed, in any order, and founds the same cluster from it', () => {
    const a = verifyGenesisFile(signedByAll());
    const b = verifyGenesisFile(sign(sign(unsigned(), 'admin2'), 'admin1'));
    expect(a.digest).toBe(b.digest);
    expect(a.signers.map((s) => [s.id, s.name, s.endpoint])).toEqual([
      [1, 'signer1', 'https://127.0.0.1:4601'],
      [2, 'signer2', 'https://127.0.0.1:4602'],
      [3, 'signer3', 'https://127.0.0.1:4603'],
    ]);
    expect(a.enrolments.map((e) => e.Name).sort()).toEqual(ADMINS);
    expect(a.governance.signatures.map((s) => s.admin).sort()).toEqual(ADMINS);
  });

  it("refuses a genesis missing one founding administrator's signature, naming them; signing may still go on", () => {
    const partial = sign(unsigned(), 'admin1');
    expect(refusal(partial)).toBe('the genesis lacks the signature of founding administrator admin2');
    expect(refusal(unsigned())).toBe('the genesis lacks the signature of founding administrators admin1, admin2');
    // `genesis sign` checks what is there, and lets the rest sign.
    expect(verifyGenesisFile(partial, { complete: false }).enrolments.map((e) => e.Name)).toEqual(['admin1']);
  });

  it('refuses a genesis whose signature was removed after all had signed', () => {
    const f = signedByAll();
    f.Signatures = f.Signatures.filter((s) => s.Admin !== 'admin1');
    expect(refusal(f)).toBe('the genesis lacks the signature of founding administrator admin1');
  });

  const edits: [string, (f: GenesisFile) => void][] = [
    ["a signer's endpoint", (f) => (f.Genesis.Signers[1]!.Endpoint = 'https://203.0.113.9:4602')],
    ["a signer's identity swapped for another of the same name", (f) => (f.Genesis.Signers[1]!.Identity = exportPublicIdentity(impostor('signer2')))],
    ["the gateway's identity", (f) => (f.Genesis.Gateway.Identity = exportPublicIdentity(impostor('gateway')))],
    ['the threshold lowered', (f) => (f.Genesis.Threshold = 1)],
    ['a signer removed', (f) => (f.Genesis.Signers = f.Genesis.Signers.slice(0, 2))],
    ['the KMS endpoint', (f) => (f.Genesis.Gateway.Kms = 'http://203.0.113.9:4600')],
  ];
  for (const [what, edit] of edits)
    it(`refuses a genesis edited after signing: ${what}`, () => {
      const f = copy(signedByAll());
      edit(f);
      expect(refusal(f)).toMatch(/^admin[12]'s signature does not verify: the genesis was changed after it was signed$|^admin[12]'s secrets are not sealed to exactly the genesis signers$/);
    });

  it('refuses a genesis with a founding administrator removed, with their signature, after signing', () => {
    const f = copy(signedByAll());
    f.Genesis.Administrators = f.Genesis.Administrators.filter((a) => a.Name !== 'admin2');
    f.Genesis.Governance.administrators = f.Genesis.Governance.administrators.filter((a) => a.name !== 'admin2');
    for (const op of Object.keys(f.Genesis.Governance.quorum)) f.Genesis.Governance.quorum[op] = 1;
    f.Signatures = f.Signatures.filter((s) => s.Admin !== 'admin2');
    expect(refusal(f)).toBe("admin1's signature does not verify: the genesis was changed after it was signed");
  });

  it('refuses a genesis with an administrator added after signing, even one that then signs', () => {
    const f = copy(signedByAll());
    const intruder = adminFile('admin3', adminSecret('admin3'));
    f.Genesis.Administrators.push(intruder);
    f.Genesis.Governance.administrators.push({ name: 'admin3', approvalKey: intruder.ApprovalKey });
    expect(refusal(sign(f, 'admin3'))).toBe("admin1's signature does not verify: the genesis was changed after it was signed");
  });

  it("refuses one administrator's signature presented as another's, and a signature by someone not listed", () => {
    const f = copy(signedByAll());
    const [one, two] = [f.Signatures.find((s) => s.Admin === 'admin1')!, f.Signatures.find((s) => s.Admin === 'admin2')!];
    one.Signature = two.Signature;
    expect(refusal(f)).toBe("admin1's signature does not verify: the genesis was changed after it was signed");
    const g = copy(signedByAll());
    g.Signatures[0]!.Admin = 'mallory';
    expect(refusal(g)).toBe('the genesis is signed by mallory, who is not a founding administrator');
  });

  it("refuses an administrator's enrolment swapped for another after signing (the gateway cannot substitute its own secrets)", () => {
    const f = copy(signedByAll());
    const recipients = f.Genesis.Signers.map((s) => ({ party: s.Id, identity: seededIdentity(s.Name).public }));
    f.Signatures[0]!.Enrolment = enrol(newPrincipal(f.Signatures[0]!.Admin, 'admin', KDF), recipients);
    expect(refusal(f)).toMatch(/^admin[12]'s signature does not verify: the genesis was changed after it was signed$/);
  });

  it('refuses a governance document the administrators did not sign as version 1 of the cluster', () => {
    const f = copy(signedByAll());
    f.Genesis.Governance.quorum['kms:CreateKey'] = 2;
    expect(refusal(f)).toMatch(/signature does not verify: the genesis was changed after it was signed/);
  });
});

/** An identity named `name` with other keys than the seeded one: an impostor's. */
function impostor(name: string): IdentitySecrets {
  return identityFromSecrets(name, seededRng(`impostor/${name}/sign`)(32), seededRng(`impostor/${name}/kex`)(32));
}
