// CreateAlias, UpdateAlias, DeleteAlias, ListAliases. An alias names one key; a key may have
// many. Targets are given by key id or key ARN (never another alias), as AWS requires.
import { z } from 'zod';
import type { KeyRecord } from '../../keys.js';
import { operation, type OpContext } from '../context.js';
import { KmsError } from '../errors.js';
import { checkAliasName } from '../ids.js';
import { keyIdField, limitField, markerField, str } from '../input.js';
import { epochSeconds } from '../metadata.js';
import { page, pageFields } from '../paging.js';

const aliasNameField = str(1, 256).regex(/^[a-zA-Z0-9:/_-]+$/);
const aliasInput = z.strictObject({ AliasName: aliasNameField, TargetKeyId: keyIdField });

const notFound = (ctx: OpContext, name: string) => new KmsError('NotFoundException', `Alias ${ctx.arns.alias(name)} is not found.`);

/** The key an alias will point to: not an alias, not pending deletion. */
function target(ctx: OpContext, ref: string): KeyRecord {
  const key = ctx.key(ref, { aliases: false });
  ctx.requireNotPendingDeletion(key);
  return key;
}

export const CreateAlias = operation(aliasInput, async (ctx, input) => {
  checkAliasName(input.AliasName);
  const key = target(ctx, input.TargetKeyId);
  await ctx.state.exclusive(async () => {
    if (ctx.state.alias(input.AliasName)) throw new KmsError('AlreadyExistsException', `An alias with the name ${ctx.arns.alias(input.AliasName)} already exists`);
    await ctx.state.putAlias(input.AliasName, key.keyId);
  });
  return undefined;
});

export const UpdateAlias = operation(aliasInput, async (ctx, input) => {
  checkAliasName(input.AliasName);
  await ctx.state.exclusive(async () => {
    const alias = ctx.state.alias(input.AliasName);
    if (!alias) throw notFound(ctx, input.AliasName);
    const current = ctx.key(alias.keyId, { aliases: false });
    const next = target(ctx, input.TargetKeyId);
    if (next.keyUsage !== current.keyUsage) {
      throw new KmsError('ValidationException', `${input.AliasName} points to a ${current.keyUsage} key; its new key must have the same KeyUsage, not ${next.keyUsage}`);
    }
    await ctx.state.putAlias(input.AliasName, next.keyId);
  });
  return undefined;
});

export const DeleteAlias = operation(z.strictObject({ AliasName: aliasNameField }), async (ctx, input) => {
  checkAliasName(input.AliasName);
  await ctx.state.exclusive(async () => {
    const alias = ctx.state.alias(input.AliasName);
    if (!alias) throw notFound(ctx, input.AliasName);
    ctx.key(alias.keyId, { aliases: false });
    await ctx.state.putAlias(input.AliasName, undefined);
  });
  return undefined;
});

export const ListAliases = operation(z.strictObject({ KeyId: keyIdField.optional(), Limit: limitField(100), Marker: markerField }), async (ctx, input) => {
  const keyId = input.KeyId === undefined ? undefined : ctx.key(input.KeyId, { aliases: false }).keyId;
  const aliases = ctx.state.aliases().filter((a) => keyId === undefined || a.keyId === keyId);
  const p = page(aliases, (a) => a.name, input.Limit ?? 50, input.Marker);
  return {
    Aliases: p.items.map((a) => ({
      AliasName: a.name,
      AliasArn: ctx.arns.alias(a.name),
      TargetKeyId: a.keyId,
      CreationDate: epochSeconds(a.creationDate),
      LastUpdatedDate: epochSeconds(a.lastUpdatedDate),
    })),
    ...pageFields(p),
  };
});
