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
