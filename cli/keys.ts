// `mpchsm key refresh KEY --as ADMIN`: new shares of a key at its active signers
// (MpcHsm.RefreshKeyShares), the same public key. It also finishes the resharing a signer
// removal left undone (the retired signer is left out). The request is the administrator's
// approval at each signer; where the governance asks for more, the answer names a proposal that
// `mpchsm approve` completes.
import { z } from 'zod';
import { call } from './approve.js';
import { LiveProgress } from './progress.js';

const answerSchema = z.object({ KeyId: z.string(), Holders: z.array(z.number().int()) });

export async function keyRefresh(dir: string, key: string, as: string, json: boolean): Promise<void> {
  const r = answerSchema.parse(await new LiveProgress().during(`mpchsm: refreshing the shares of ${key} at the active signers`, call(dir, as, 'MpcHsm.RefreshKeyShares', { KeyId: key })));
  if (json) return console.log(JSON.stringify(r));
  console.log(`key ${r.KeyId}: shares refreshed at signers ${r.Holders.join(', ')}; the public key is unchanged`);
}
