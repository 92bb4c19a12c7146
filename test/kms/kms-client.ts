// AWS SDK clients for a test cluster's principals, configured only with the endpoint and the
// credentials from the principal's env file — the change a real application makes.
import { KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'vitest';
import type { TestCluster } from '../helpers/cluster.js';

export function kmsClient(tc: TestCluster, name: string, opts: { maxAttempts?: number } = {}): KMSClient {
  const p = tc.principal(name);
  return new KMSClient({
    endpoint: p.MPCHSM_KMS_ENDPOINT,
    region: p.AWS_REGION,
    credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
    maxAttempts: opts.maxAttempts ?? 1,
  });
}

export interface AwsError {
  name: string;
  message: string;
  status: number | undefined;
}

/** The AWS error a call fails with (fails the test if it succeeds). */
export async function awsError(p: Promise<unknown>): Promise<AwsError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as { name: string; message: string; $metadata?: { httpStatusCode?: number } },
  );
  expect(e, 'the call should have failed').toBeDefined();
  return { name: e!.name, message: e!.message, status: e!.$metadata?.httpStatusCode };
}
