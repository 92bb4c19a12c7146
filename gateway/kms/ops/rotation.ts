// EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
// ListKeyRotations — for symmetric keys, as in AWS KMS (an asymmetric key does not rotate:
// UnsupportedOperationException). Rotations are made by gateway/key-rotation.ts.
import { z } from 'zod';
import { DAY_MS, rotateKey } from '../../key-rotation.js';
import type { KeyRecord } from '../../keys.js';
import { operation, type OpContext } from '../context.js';
import { KmsError } from '../errors.js';
import { keyIdField, limitField, markerField } from '../input.js';
import { epochSeconds } from '../metadata.js';
import { page, pageFields } from '../paging.js';
import { isSymmetric } from './symmetric.js';

const DEFAULT_PERIOD_DAYS = 365;

/** A symmetric key that may change its rotation: not pending deletion, and (AWS) not disabled. */
function rotatingKey(ctx: OpContext, ref: string, needEnabled: boolean): KeyRecord {
  const key = ctx.key(ref, { aliases: false });
  if (!isSymmetric(key)) throw new KmsError('UnsupportedOperationException', `${ctx.arns.key(key.keyId)} is a ${key.keySpec} key; only symmetric keys rotate.`);
  if (needEnabled) ctx.requireEnabled(key);
  else ctx.requireNotPendingDeletion(key);
  return key;
}

const keyOnly = z.strictObject({ KeyId: keyIdField });

export const EnableKeyRotation = operation(z.strictObject({ KeyId: keyIdField, RotationPeriodInDays: z.number().int().min(90).max(2560).optional() }), async (ctx, input) => {
  const key = rotatingKey(ctx, input.KeyId, true);
  const periodDays = input.RotationPeriodInDays ?? key.rotation?.periodDays ?? DEFAULT_PERIOD_DAYS;
  await ctx.state.exclusive(() => ctx.state.updateKey(key.keyId, (k) => ({ ...k, rotation: { enabled: true, periodDays, next: Date.now() + periodDays * DAY_MS } })));
  return undefined;
});

export const DisableKeyRotation = operation(keyOnly, async (ctx, input) => {
  const key = rotatingKey(ctx, input.KeyId, true);
  await ctx.state.exclusive(() => ctx.state.updateKey(key.keyId, (k) => ({ ...k, rotation: { enabled: false, periodDays: k.rotation?.periodDays ?? DEFAULT_PERIOD_DAYS } })));
  return undefined;
});

export const GetKeyRotationStatus = operation(keyOnly, async (ctx, input) => {
  const key = rotatingKey(ctx, input.KeyId, false);
  const r = key.rotation;
  return {
    KeyId: ctx.arns.key(key.keyId),
    KeyRotationEnabled: r?.enabled ?? false,
    ...(r?.enabled ? { RotationPeriodInDays: r.periodDays, ...(r.next !== undefined ? { NextRotationDate: epochSeconds(r.next) } : {}) } : {}),
  };
});

export const RotateKeyOnDemand = operation(keyOnly, async (ctx, input) => {
  const key = rotatingKey(ctx, input.KeyId, true);
  try {
    await rotateKey({ ...ctx.deps, kmsState: ctx.state }, key, 'ON_DEMAND', ctx.trace);
  } catch (e) {
    throw ctx.clusterFailure(e, key);
  }
  return { KeyId: ctx.arns.key(key.keyId) };
});

const rotationKey = (m: { createdAt: number; id: number }) => `${String(m.createdAt).padStart(16, '0')}/${m.id}`;

export const ListKeyRotations = operation(z.strictObject({ KeyId: keyIdField, Limit: limitField(1000), Marker: markerField, IncludeKeyMaterial: z.enum(['ALL_KEY_MATERIAL', 'ROTATIONS_ONLY']).optional() }), async (ctx, input) => {
  const key = rotatingKey(ctx, input.KeyId, false);
  const p = page(key.materials ?? [], rotationKey, input.Limit ?? 100, input.Marker);
  return {
    Rotations: p.items.map((m) => ({ KeyId: ctx.arns.key(key.keyId), RotationDate: epochSeconds(m.createdAt), RotationType: m.rotationType })),
    ...pageFields(p),
  };
});
