// Secrets reach processes on stdin, never on the command line or in the environment.

/** Reads stdin to its end and returns it as bytes without a trailing newline. */
export async function readSecretFromStdin(what: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  for (const c of chunks) c.fill(0);
  let end = all.length;
  while (end > 0 && (all[end - 1] === 0x0a || all[end - 1] === 0x0d)) end--;
  const out = new Uint8Array(all.subarray(0, end));
  all.fill(0);
  if (out.length === 0) throw new Error(`${what} expected on standard input`);
  return out;
}

/** Reads one secret per line from stdin, as many as `what` names (a command run by two people's secrets). */
export async function readSecretLinesFromStdin(what: readonly string[]): Promise<Uint8Array[]> {
  const all = await readSecretFromStdin(what.join(' and '));
  try {
    const out: Uint8Array[] = [];
    let from = 0;
    for (const [i, w] of what.entries()) {
      let to = i === what.length - 1 ? all.length : all.indexOf(0x0a, from);
      if (to < 0) to = all.length;
      let end = to;
      if (end > from && all[end - 1] === 0x0d) end--;
      if (end === from) {
        for (const o of out) o.fill(0);
        throw new Error(`${w} expected on line ${i + 1} of standard input`);
      }
      out.push(all.slice(from, end));
      from = to + 1;
    }
    return out;
  } finally {
    all.fill(0);
  }
}
