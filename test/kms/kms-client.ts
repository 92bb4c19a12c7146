// AWS SDK clients for a test cluster's principals, configured only with the endpoint and the
// credentials from the principal's env file — the change a real application makes.
import { KMSClient, type KMSClientConfig } from '@aws-sdk/client-kms';
import { expect } from 'vitest';
import type { TestCluster } from '../helpers/cluster.js';

export function kmsClient(tc: TestCluster, name: string, opts: { maxAttempts?: number } = {}): KMSClient {
  return new KMSClient(kmsConfig(tc, name, opts));
}

/** The client configuration for principal `name`: what any AWS SDK KMS client (or a library building one) is given. */
export function kmsConfig(tc: TestCluster, name: string, opts: { maxAttempts?: number } = {}): KMSClientConfig {
  const p = tc.principal(name);
  return {
    endpoint: p.MPCHSM_KMS_ENDPOINT,
    region: p.AWS_REGION,
    credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
    maxAttempts: opts.maxAttempts ?? 1,
  };
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
