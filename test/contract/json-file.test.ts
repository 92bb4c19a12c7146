// The JSON file helper: a damaged or schema-invalid file is refused naming the file and the problem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { JsonFileError, readJsonFile, readJsonFileAsync, readJsonFileIfExists } from '../../contract/io/json-file.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-json-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const schema = z.object({ name: z.string(), id: z.number().int() });
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('readJsonFile', () => {
  it('reads a good file', async () => {
    const f = file('good.json', '{"name":"a","id":1}');
    expect(readJsonFile(f, schema)).toEqual({ name: 'a', id: 1 });
    expect(await readJsonFileAsync(f, schema)).toEqual({ name: 'a', id: 1 });
  });
  it('a truncated file names the file and says it is not JSON', async () => {
    const f = file('cut.json', '{"name":"a",');
    expect(() => readJsonFile(f, schema)).toThrow(new RegExp(`^${f}: not valid JSON \\(.+\\)$`));
    await expect(readJsonFileAsync(f, schema)).rejects.toThrow(JsonFileError);
  });
  it('a schema-invalid file names the file and the field', () => {
    const f = file('wrong.json', '{"name":"a","id":"x"}');
    expect(() => readJsonFile(f, schema)).toThrow(new RegExp(`^${f}: id: `));
    expect(() => readJsonFile(file('array.json', '[]'), schema)).toThrow(/array\.json: \(top level\): /);
  });
  it('a missing file is undefined for readJsonFileIfExists and an ENOENT naming it otherwise', () => {
    const f = path.join(dir, 'none.json');
    expect(readJsonFileIfExists(f, schema)).toBeUndefined();
    expect(() => readJsonFile(f, schema)).toThrow(f);
  });
});
