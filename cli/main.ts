// The `mpchsm` command.
import { parseArgs } from 'node:util';
import { auditShow, auditVerify, doctor } from './audit.js';
import { up, down, status } from './cluster.js';

const USAGE = `usage:
  mpchsm up     [--dir DIR] [--signers N] [--threshold T] [--port P] [--detach]
  mpchsm down   [--dir DIR]
  mpchsm status [--dir DIR] [--json]
  mpchsm audit verify [--dir DIR]
  mpchsm audit show [--dir DIR] [--key ID] [--json]
  mpchsm doctor [--dir DIR] [--strict]`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        dir: { type: 'string', default: '.mpchsm' },
        signers: { type: 'string' },
        threshold: { type: 'string' },
        port: { type: 'string' },
        detach: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        key: { type: 'string' },
        strict: { type: 'boolean', default: false },
      },
      strict: true,
    });
    switch (command) {
      case 'up':
        await up({
          dir: values.dir,
          signers: intOption('--signers', values.signers),
          threshold: intOption('--threshold', values.threshold),
          port: intOption('--port', values.port),
          detach: values.detach,
        });
        break;
      case 'down':
        await down(values.dir);
        break;
      case 'status':
        process.exitCode = await status(values.dir, values.json);
        break;
      case 'audit':
        if (positionals[0] === 'verify') process.exitCode = await auditVerify(values.dir);
        else if (positionals[0] === 'show') process.exitCode = await auditShow(values.dir, { key: values.key, json: values.json });
        else throw new Error(`audit takes 'verify' or 'show'\n${USAGE}`);
        break;
      case 'doctor':
        process.exitCode = await doctor(values.dir, { strict: values.strict });
        break;
      default:
        console.error(USAGE);
        process.exitCode = 2;
    }
  } catch (e) {
    console.error(`mpchsm ${command ?? ''}: ${(e as Error).message}`);
    process.exitCode = process.exitCode || 1;
  }
}

function intOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`${name} takes a whole number, not '${v}'`);
  return Number(v);
}
