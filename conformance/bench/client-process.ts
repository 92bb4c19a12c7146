// The orchestrator's handle on one client process (worker.ts): fork it, send it commands over
// the IPC channel, validate what comes back, and always stop it.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { responseSchema, type WorkerCommand } from './types.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

export class ClientProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';
  private exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    child.on('message', (raw) => {
      const r = responseSchema.safeParse(raw);
      if (!r.success) return this.failAll(new Error(`${name}: malformed answer from the client process`));
      const p = this.pending.get(r.data.id);
      if (!p && r.data.id === 0) return; // the answer to 'close'
      if (!p) return this.failAll(new Error(`${name}: ${r.data.ok ? 'unexpected answer' : r.data.error}`));
      this.pending.delete(r.data.id);
      if (r.data.ok) p.resolve(r.data.result);
      else p.reject(new Error(`${name}: ${r.data.error}`));
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.failAll(new Error(`${name}: client process exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`));
        resolve();
      }),
    );
  }

  /** Forks a client with `env` added (module configuration, UV_THREADPOOL_SIZE). */
  static start(name: string, env: Record<string, string>): ClientProcess {
    const child = fork(WORKER, [], {
      env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv: [],
    });
    return new ClientProcess(name, child);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Sends `command` and parses the answer with `schema`; a client silent for `timeoutMs` is killed. */
  async call<T>(command: WorkerCommand, schema: z.ZodType<T>, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    const result = await new Promise<unknown>((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`${this.name}: client process is not running`));
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, command });
      timer = setTimeout(() => {
        this.stderr += `\nno answer to '${command.op}' within ${timeoutMs} ms`;
        this.child.kill('SIGKILL');
      }, timeoutMs);
    }).finally(() => clearTimeout(timer));
    return schema.parse(result);
  }

  /** Asks the client to close its module and leave; kills it if it does not within 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.send({ id: 0, command: { op: 'close' } });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
