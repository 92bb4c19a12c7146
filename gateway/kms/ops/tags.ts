// TagResource, UntagResource, ListResourceTags. Tags live on the key record.
import { z } from 'zod';
import type { KeyRecord } from '../../keys.js';
import { operation } from '../context.js';
import { KmsError } from '../errors.js';
import { keyIdField, limitField, markerField, str } from '../input.js';
import { page, pageFields } from '../paging.js';

const MAX_TAGS = 50;

export const tagListSchema = z.array(z.strictObject({ TagKey: str(1, 128), TagValue: str(0, 256) }));
type Tag = KeyRecord['tags'][number];

/** Checks tags a caller sends: no reserved `aws:` keys, no key twice in one request. */
export function checkTags(tags: readonly Tag[]): void {
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.TagKey.toLowerCase().startsWith('aws:')) throw new KmsError('TagException', `Tag keys beginning with 'aws:' are reserved for AWS ('${t.TagKey}')`);
    if (seen.has(t.TagKey)) throw new KmsError('TagException', `Tag key '${t.TagKey}' appears more than once in the request`);
    seen.add(t.TagKey);
  }
}

/** `current` with `added` set (a new value replaces an old one), at most 50 tags. */
export function mergeTags(current: readonly Tag[], added: readonly Tag[]): Tag[] {
  const byKey = new Map(current.map((t) => [t.TagKey, t.TagValue]));
  for (const t of added) byKey.set(t.TagKey, t.TagValue);
  if (byKey.size > MAX_TAGS) throw new KmsError('TagException', `A key can have at most ${MAX_TAGS} tags; this would make ${byKey.size}`);
  return [...byKey].map(([TagKey, TagValue]) => ({ TagKey, TagValue }));
}

export const TagResource = operation(z.strictObject({ KeyId: keyIdField, Tags: tagListSchema }), async (ctx, input) => {
  checkTags(input.Tags);
  const key = ctx.key(input.KeyId, { aliases: false });
  await ctx.state.exclusive(() =>
    ctx.state.updateKey(key.keyId, (k) => {
      ctx.requireNotPendingDeletion(k);
      return { ...k, tags: mergeTags(k.tags, input.Tags) };
    }),
  );
  return undefined;
});

export const UntagResource = operation(z.strictObject({ KeyId: keyIdField, TagKeys: z.array(str(1, 128)) }), async (ctx, input) => {
  const key = ctx.key(input.KeyId, { aliases: false });
  const remove = new Set(input.TagKeys);
  await ctx.state.exclusive(() =>
    ctx.state.updateKey(key.keyId, (k) => {
      ctx.requireNotPendingDeletion(k);
      return { ...k, tags: k.tags.filter((t) => !remove.has(t.TagKey)) };
    }),
  );
  return undefined;
});

export const ListResourceTags = operation(
  z.strictObject({ KeyId: keyIdField, Limit: limitField(50), Marker: markerField }),
  async (ctx, input) => {
    const key = ctx.key(input.KeyId, { aliases: false });
    const sorted = [...key.tags].sort((a, b) => (a.TagKey < b.TagKey ? -1 : 1));
    const p = page(sorted, (t) => t.TagKey, input.Limit ?? 50, input.Marker);
    return { Tags: p.items, ...pageFields(p) };
  },
);
