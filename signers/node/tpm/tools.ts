// The TSS, through Debian's tpm2-tools: each TPM operation is one tool run with the TCTI in its
// environment (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=P`, …), under a timeout, in a
// private working directory for its context files. No TPM command is encoded here: the tools do.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The host's TPM through the kernel's resource manager. */
export const DEFAULT_TCTI = 'device:/dev/tpmrm0';
/** Longest any one tool may run: a TPM command takes milliseconds, key creation at most seconds. */
export const TPM_TOOL_TIMEOUT_MS = 20_000;

export class TpmError extends Error {
  override name = 'TpmError';
}

export interface Tpm {
  readonly tcti: string;
  /** Runs `tpm2_TOOL ARGS` in the working directory; its standard output. */
  run(tool: string, args: string[], input?: Uint8Array): Promise<Buffer>;
  /** The working directory's path for `file`. */
  file(name: string): string;
}

/**
 * Runs `use` with a TPM over `tcti`: a private working directory, removed afterwards, and every
 * transient object and session flushed (a bare swtpm has no resource manager to do it).
 */
export async function withTpm<T>(tcti: string, use: (tpm: Tpm) => Promise<T>): Promise<T> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'mpchsm-tpm-'));
  // `none`: tools that need no TPM (tpm2_makecredential -T none), nothing to flush.
  const flush = async (what: '-t' | '-s') => (tcti === 'none' ? undefined : runTool(tcti, work, 'flushcontext', [what]).catch(() => undefined));
  const tpm: Tpm = {
    tcti,
    file: (name) => path.join(work, name),
    // Objects go on in saved contexts (files): the transient slots (three on swtpm) are freed after each tool.
    run: (tool, args, input) => runTool(tcti, work, tool, args, input).finally(() => flush('-t')),
  };
  try {
    return await use(tpm);
  } finally {
    await flush('-s');
    await rm(work, { recursive: true, force: true });
  }
}

function runTool(tcti: string, cwd: string, tool: string, args: string[], input?: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      `tpm2_${tool}`,
      args,
      { cwd, env: { ...process.env, TPM2TOOLS_TCTI: tcti }, timeout: TPM_TOOL_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'buffer', maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        const why =
          e.code === 'ENOENT'
            ? 'is not installed (Debian package tpm2-tools)'
            : e.killed
              ? `did not answer within ${TPM_TOOL_TIMEOUT_MS / 1000} s`
              : `failed: ${lastLine(stderr.toString('utf8')) || e.message}`;
        reject(new TpmError(`tpm2_${tool} on ${tcti} ${why}`));
      },
    );
    child.stdin?.end(input);
  });
}

/** The TPM's own error (the line naming its response code) where the tool printed one, else its last line. */
function lastLine(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return (lines.find((l) => /^ERROR: \w+\(0x[0-9A-Fa-f]+\)/.test(l)) ?? lines.at(-1) ?? '').slice(0, 300);
}
