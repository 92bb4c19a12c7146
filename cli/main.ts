// The `mpchsm` command.
import { parseArgs } from 'node:util';
import { up, down, status } from './cluster.js';

const USAGE = `usage:
  mpchsm up     [--dir DIR] [--signers N] [--threshold T] [--port P] [--detach]
  mpchsm down   [--dir DIR]
  mpchsm status [--dir DIR] [--json]`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    const { values } = parseArgs({
      args: rest,
      options: {
        dir: { type: 'string', default: '.mpchsm' },
        signers: { type: 'string' },
        threshold: { type: 'string' },
        port: { type: 'string' },
        detach: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
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
