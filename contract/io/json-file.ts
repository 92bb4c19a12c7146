// Configuration files: JSON validated at the boundary, errors naming the file and the field.
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

export function readJsonFile<T>(file: string, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
