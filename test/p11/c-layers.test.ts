// The C module's layers (pkcs11-shim/src), read from the source: folders in a strict order,
// lowest first, where a file includes only its own folder's header, the headers of folders
// below and the PKCS#11 ABI (pkcs11-shim/include); a folder has at most one header, named after
// it; no file passes 400 lines; each opens with a comment saying what it holds. Calls follow
// includes (one header per folder declares everything), so an upward call breaks the build or
// this test. The checker runs on the real tree and on small broken ones, to show it can fail.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const shimDir = fileURLToPath(new URL('../../pkcs11-shim/', import.meta.url));
const srcDir = path.join(shimDir, 'src');

/** Lowest first: a folder may include its own header and those before it. */
const LAYERS = ['base', 'remote', 'token', 'ops', 'api'] as const;
/** The ABI header every layer may include, as a path relative to pkcs11-shim/. */
const ABI = 'include/pkcs11.h';
const MAX_LINES = 400;

/** Every file under src/, by its path relative to pkcs11-shim/ ('src/token/login.c'). */
function readTree(): Map<string, string> {
  const tree = new Map<string, string>();
  for (const entry of readdirSync(srcDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    tree.set(path.relative(shimDir, file).split(path.sep).join('/'), readFileSync(file, 'utf8'));
  }
  return tree;
}

/** What is wrong with a source tree (paths relative to pkcs11-shim/); empty when it keeps the rules. */
function layerProblems(tree: Map<string, string>): string[] {
  const problems: string[] = [];
  const level = (folder: string) => (LAYERS as readonly string[]).indexOf(folder);
  for (const [file, text] of tree) {
    const parts = file.split('/');
    const folder = parts[1] ?? '';
    if (parts.length !== 3 || parts[0] !== 'src' || level(folder) < 0 || !/\.[ch]$/.test(file)) {
      problems.push(`${file}: not a .c or .h file in one of src/{${LAYERS.join(',')}}`);
      continue;
    }
    if (file.endsWith('.h') && parts[2] !== `${folder}.h`) problems.push(`${file}: a folder's one header is ${folder}.h`);
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES) problems.push(`${file}: ${lines} lines (at most ${MAX_LINES})`);
    if (!/^\/\* \S.*\S/.test(text)) problems.push(`${file}: does not open with a comment saying what it holds`);
    for (const m of text.matchAll(/^[ \t]*#[ \t]*include[ \t]*"([^"]+)"/gm)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1] ?? ''));
      const to = target.split('/');
      if (target === ABI) continue;
      if (!tree.has(target) || !target.endsWith('.h') || to[0] !== 'src' || level(to[1] ?? '') < 0)
        problems.push(`${file}: includes "${m[1]}", which is not a header of src/{${LAYERS.join(',')}} nor ${ABI}`);
      else if (level(to[1] ?? '') > level(folder)) problems.push(`${file}: includes "${m[1]}" from ${to[1]}, above ${folder}`);
    }
  }
  return problems;
}

describe('the C module is layered (pkcs11-shim/src)', () => {
  const tree = readTree();

  it('holds a file in every layer, and each file keeps the rules', () => {
    for (const folder of LAYERS) expect([...tree.keys()].some((f) => f.startsWith(`src/${folder}/`))).toBe(true);
    expect(layerProblems(tree)).toEqual([]);
  });

  it('fails a tree with an upward include, a long file, a missing comment, a stray file', () => {
    const ok = (name: string, body = '') => `/* ${name}: what it holds. */\n${body}`;
    const broken = new Map<string, string>([
      ['src/base/base.h', ok('base.h')],
      ['src/api/api.h', ok('api.h', '#include "../base/base.h"\n')],
      ['src/base/log.c', ok('log.c', '#include "base.h"\n#include "../api/api.h"\n')],
      ['src/base/sha.c', ok('sha.c', 'x\n'.repeat(MAX_LINES))],
      ['src/base/hmac.c', '#include "base.h"\n'],
      ['src/base/extra.h', ok('extra.h')],
      ['src/module.c', ok('module.c')],
      ['src/api/slot.c', ok('slot.c', '#include "api.h"\n#include "../../include/pkcs11.h"\n#include "../nowhere/x.h"\n')],
    ]);
    expect(layerProblems(broken)).toEqual([
      'src/base/log.c: includes "../api/api.h" from api, above base',
      `src/base/sha.c: ${MAX_LINES + 1} lines (at most ${MAX_LINES})`,
      'src/base/hmac.c: does not open with a comment saying what it holds',
      'src/base/extra.h: a folder\'s one header is base.h',
      `src/module.c: not a .c or .h file in one of src/{${LAYERS.join(',')}}`,
      `src/api/slot.c: includes "../nowhere/x.h", which is not a header of src/{${LAYERS.join(',')}} nor ${ABI}`,
    ]);
  });
});
