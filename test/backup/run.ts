// `mpchsm` run as a child process with a passphrase on standard input, as the backup commands
// read theirs (shared by the backup tests).
import { spawn } from 'node:child_process';
import { mpchsmBin, repoRoot } from '../helpers/cluster.js';

/** `mpchsm ARGS` with `stdin` on standard input: exit status and output (stdout, stderr). */
export function mpchsmIn(stdin: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mpchsmBin, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}
