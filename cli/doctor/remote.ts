// `mpchsm doctor --genesis G --as NAME --dir A`: the doctor from an administrator's or auditor's
// own host. Every identity is pinned from the genesis G (which every founding administrator
// signed), never from the gateway; the parties' signed reports come through the gateway
// (reports.ts). The key inventories, which need the gateway's files, are not compared from here;
// nor can a backup be called verified from here: each signer's report says only which was made.
import { consoleIo, EXIT_UNREADABLE, type Io } from '../cluster-dir.js';
import { readEnv } from '../approve.js';
import { pinsFor, type Pins } from '../posture/evidence.js';
import { signedReports } from './reports.js';

export interface RemoteOptions {
  genesis: string;
  as: string;
  dir: string;
  strict: boolean;
}

/** 0: the reports hold (with --strict: and no finding); 1: a report refused, or a finding with --strict; 2: G or A unusable, or no answer. */
export async function remoteDoctor(o: RemoteOptions, io: Io = consoleIo): Promise<number> {
  let pins: Pins;
  let endpoint: string;
  try {
    pins = pinsFor(o.genesis);
    endpoint = readEnv(o.dir, o.as).MPCHSM_KMS_ENDPOINT ?? '(no MPCHSM_KMS_ENDPOINT)';
  } catch (e) {
    io.err(`doctor: ${(e as Error).message}`);
    return EXIT_UNREADABLE;
  }
  const s = await signedReports({ dir: o.dir, as: o.as }, pins);
  if (typeof s === 'string') {
    io.err(`doctor: no signed reports through the gateway at ${endpoint}: ${s}`);
    return EXIT_UNREADABLE;
  }
  const n = pins.signers.length;
  io.out(`mpchsm doctor: as ${o.as}, through ${endpoint}, identities pinned by ${o.genesis}: ${n} signer${n === 1 ? '' : 's'}, threshold ${pins.threshold ?? 'unknown'}, ${s.reported} reported`);
  for (const line of s.table) io.out(line);
  io.out("backups (each signer's signed word that one was made; whether it verifies is known where `backup verify --dir` runs):");
  for (const line of s.backups) io.out(line);
  io.out('keys: not compared (from another host: the gateway\'s key records are read where it runs, with `mpchsm doctor --dir` there)');
  io.out(s.findings.length === 0 ? 'findings: none' : `findings (${s.findings.length}):`);
  for (const f of s.findings) io.out(`  - [${f.code}] ${f.message}`);
  io.out(s.verdict);
  return s.refused > 0 || (o.strict && s.findings.length > 0) ? 1 : 0;
}
