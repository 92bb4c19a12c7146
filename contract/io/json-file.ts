// Reading JSON files: every read of a file goes through here, so a file refused — not JSON, or
// not of its schema — is refused naming the file and what is wrong with it.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';

/** A JSON file that was read but refused; `message` names the file and the problem. */
export class JsonFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'JsonFileError';
  }
}

/** `text`, the contents of `file`, parsed and checked against `schema`; refusals name `file`. */
export function parseJsonFile<T>(file: string, text: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new JsonFileError(file, `not valid JSON (${(e as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new JsonFileError(file, `${where}: ${issue?.message ?? 'does not match its schema'}`);
  }
  return parsed.data;
}

/** `file` read, parsed and checked; a missing file throws the usual ENOENT error (which names it). */
export function readJsonFile<T>(file: string, schema: z.ZodType<T>): T {
  return parseJsonFile(file, readFileSync(file, 'utf8'), schema);
}

/** `readJsonFile`, or undefined when `file` does not exist. */
export function readJsonFileIfExists<T>(file: string, schema: z.ZodType<T>): T | undefined {
  return existsSync(file) ? readJsonFile(file, schema) : undefined;
}

/** `readJsonFile` without blocking. */
export async function readJsonFileAsync<T>(file: string, schema: z.ZodType<T>): Promise<T> {
  return parseJsonFile(file, await readFile(file, 'utf8'), schema);
}
