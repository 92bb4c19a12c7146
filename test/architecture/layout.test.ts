// The house rules DESIGN.md and issue #17 set for every source file: at most 400 lines, opening
// with a comment that says what the file owns. (The floors are checked by `npm run floors`.)
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FLOORS = ['contract', 'signers', 'policy', 'audit', 'gateway', 'cli', 'conformance'];
const MAX_LINES = 400;

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return /\.ts$/.test(e.name) && !/\.test\.ts$/.test(e.name) ? [rel] : [];
  });
}

describe('source layout', () => {
  const files = FLOORS.flatMap(sources);

  it('finds the sources', () => expect(files.length).toBeGreaterThan(100));

  it(`keeps every source file at ${MAX_LINES} lines or fewer`, () => {
    const long = files.map((f) => [f, readFileSync(path.join(root, f), 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > MAX_LINES);
    expect(long).toEqual([]);
  });

  it('opens every source file with a comment saying what it owns', () => {
    const bare = files.filter((f) => !/^(\/\/|\/\*)/.test(readFileSync(path.join(root, f), 'utf8')));
    expect(bare).toEqual([]);
  });
});
