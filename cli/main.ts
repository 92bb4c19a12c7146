// The `mpchsm` command.
import { parseArgs } from 'node:util';

// Each command's modules are loaded when it runs: `mpchsm status` or `down` need not load the
// code of key ceremonies, backups and the doctor (node spends most of a short command importing).
const approveCli = () => import('./approve.js');
const auditCli = () => import('./audit.js');
const clusterCli = () => import('./cluster.js');
const runningCli = () => import('./running.js');
const membershipCli = () => import('./membership.js');
const principalRequestCli = () => import('./principal-request.js');
const partyCli = () => import('./party-commands.js');
const backupCli = () => import('./backup/command.js');

const USAGE = `usage:
  mpchsm up     [--dir DIR] [--signers N] [--threshold T] [--port P] [--seal software|swtpm] [--detach] [--metrics] [--console]
  mpchsm down   [--dir DIR]
  mpchsm status [--dir DIR] [--json]
  mpchsm audit verify [--dir DIR] | --genesis GENESIS.json --as NAME --dir A
  mpchsm audit show [--dir DIR] [--key ID] [--json]
  mpchsm doctor [--dir DIR] [--strict] | --genesis GENESIS.json --as NAME --dir A [--strict]
  mpchsm approve PROPOSAL_ID --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm refuse PROPOSAL_ID --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm approve-sign --key KEY --digest HEX [--algorithm ALG] [--ttl MINUTES] --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm principal add NAME --role app|auditor --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm principal remove NAME --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm admin init --dir A --name NAME [--json]
  mpchsm signer init --dir S --name NAME --listen HOST:PORT [--seal software|tpm] [--tcti TCTI] [--pcrs sha256:0,7] [--json]   (passphrase on stdin with software)
  mpchsm gateway init --dir G --listen HOST:PORT [--p11-listen HOST:PORT] [--tls-cert F --tls-key F] [--json]   (passphrase on stdin)
  mpchsm gateway init --dir G --recover --genesis genesis.json [--json]   (a lost gateway directory, around its restored identity; passphrase on stdin)
  mpchsm genesis create --threshold T --gateway G.json --signer S.json … --admin A.json … [--quorum Q] [--require-attestation] --out FILE [--json]
  mpchsm genesis sign FILE --as NAME --dir A [--json]
  mpchsm signer start --dir S --genesis FILE [--tcti TCTI] [--detach] [--json]   (passphrase on stdin unless TPM-sealed; --tcti overrides the store's recorded TPM)
  mpchsm gateway start --dir G --genesis FILE [--detach] [--json]   (passphrase on stdin)
  mpchsm signer stop --dir S | mpchsm gateway stop --dir G
  mpchsm custodian init --dir K [--name NAME] [--json]   (passphrase on stdin)
  mpchsm signer backup --dir S --custodian K/custodian.json --out FILE [--json]   (the store's passphrase on stdin)
  mpchsm backup verify FILE --custodian-dir K [--dir DIR | --genesis GENESIS.json --as NAME --dir A] [--json]   (the custodian's passphrase on stdin)
  mpchsm signer restore --dir S --from FILE --custodian-dir K [--revive-epoch] [--seal software|tpm] [--tcti TCTI] [--pcrs SEL] [--json]   (the custodian's passphrase, then the new store's unless --seal tpm, one per line on stdin)
  mpchsm signer rejoin S/NAME.restore.json --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm principal request --name NAME --role app|auditor|admin --genesis FILE --dir P [--json]
  mpchsm p11-kit install|remove [--user|--system] [--json]
  mpchsm principal propose FILE --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm signer add --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm signer admit NAME --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm signer remove NAME --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm key refresh KEY --as ADMINISTRATOR [--dir DIR] [--json]
  mpchsm governance show --as PRINCIPAL [--dir DIR] [--json]
  mpchsm governance propose --file FILE --as ADMINISTRATOR [--dir DIR] [--json]`;

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
        metrics: { type: 'boolean', default: false },
        console: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        key: { type: 'string' },
        strict: { type: 'boolean', default: false },
        as: { type: 'string' },
        digest: { type: 'string' },
        algorithm: { type: 'string' },
        ttl: { type: 'string' },
        role: { type: 'string' },
        file: { type: 'string' },
        name: { type: 'string' },
        genesis: { type: 'string' },
        listen: { type: 'string' },
        seal: { type: 'string' },
        tcti: { type: 'string' },
        pcrs: { type: 'string' },
        'p11-listen': { type: 'string' },
        recover: { type: 'boolean', default: false },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        out: { type: 'string' },
        quorum: { type: 'string' },
        gateway: { type: 'string' },
        signer: { type: 'string', multiple: true },
        admin: { type: 'string', multiple: true },
        user: { type: 'boolean', default: false },
        custodian: { type: 'string' },
        'custodian-dir': { type: 'string' },
        from: { type: 'string' },
        'revive-epoch': { type: 'boolean', default: false },
        system: { type: 'boolean', default: false },
        'require-attestation': { type: 'boolean', default: false },
      },
      strict: true,
    });
    // doctor and audit verify from another host: the genesis pins, NAME.env in --dir asks the gateway.
    const remote = () => {
      if (values.genesis === undefined && values.as === undefined) return undefined;
      if (!values.genesis || !values.as) throw new Error(`${command} from another host takes both --genesis and --as (with --dir)\n${USAGE}`);
      return { genesis: values.genesis, as: values.as, dir: values.dir };
    };
    // --dir has a default; commands where it is optional or names another kind of directory need to know it was given.
    const dirGiven = rest.some((a) => a === '--dir' || a.startsWith('--dir='));
    switch (command) {
      case 'up':
        await (await clusterCli()).up({
          dir: values.dir,
          signers: intOption('--signers', values.signers),
          threshold: intOption('--threshold', values.threshold),
          port: intOption('--port', values.port),
          seal: sealOption(values.seal),
          detach: values.detach,
          metrics: values.metrics,
          console: values.console,
        });
        break;
      case 'down':
        await (await runningCli()).down(values.dir);
        break;
      case 'status':
        process.exitCode = await (await runningCli()).status(values.dir, values.json);
        break;
      case 'audit':
        if (positionals[0] === 'verify') process.exitCode = remote() ? await (await import('./posture/remote-audit.js')).remoteAuditVerify(remote()!) : await (await auditCli()).auditVerify(values.dir);
        else if (positionals[0] === 'show') process.exitCode = await (await auditCli()).auditShow(values.dir, { key: values.key, json: values.json });
        else throw new Error(`audit takes 'verify' or 'show'\n${USAGE}`);
        break;
      case 'doctor':
        process.exitCode = remote() ? await (await import('./doctor/remote.js')).remoteDoctor({ ...remote()!, strict: values.strict }) : await (await import('./doctor.js')).doctor(values.dir, { strict: values.strict });
        break;
      case 'approve':
        if (positionals.length !== 1 || !values.as) throw new Error(`approve takes a proposal id and --as ADMINISTRATOR\n${USAGE}`);
        await (await approveCli()).approve(values.dir, positionals[0]!, values.as, values.json);
        break;
      case 'refuse':
        if (positionals.length !== 1 || !values.as) throw new Error(`refuse takes a proposal id and --as ADMINISTRATOR\n${USAGE}`);
        await (await approveCli()).refuse(values.dir, positionals[0]!, values.as, values.json);
        break;
      case 'approve-sign':
        if (!values.as || !values.key || !values.digest) throw new Error(`approve-sign takes --key, --digest and --as ADMINISTRATOR\n${USAGE}`);
        await (await approveCli()).approveSign(values.dir, values.as, { key: values.key, digest: values.digest, algorithm: values.algorithm, ttlMinutes: intOption('--ttl', values.ttl) }, values.json);
        break;
      case 'principal': {
        const [sub, name] = positionals;
        if (sub === 'request') {
          if (!values.name || !values.role || !values.genesis || positionals.length !== 1) throw new Error(`principal request takes --name, --role, --genesis and --dir\n${USAGE}`);
          await (await principalRequestCli()).principalRequest({ name: values.name, role: values.role, genesis: values.genesis, dir: values.dir, json: values.json });
          break;
        }
        if (sub === 'propose') {
          if (!values.as || !name || positionals.length !== 2) throw new Error(`principal propose takes a request file and --as ADMINISTRATOR\n${USAGE}`);
          await (await principalRequestCli()).principalPropose(name, values.dir, values.as, values.json);
          break;
        }
        if (!values.as || !name || positionals.length !== 2) throw new Error(`principal takes 'add NAME --role ROLE' or 'remove NAME', and --as ADMINISTRATOR\n${USAGE}`);
        if (sub === 'add') {
          if (!values.role) throw new Error(`principal add takes --role app|auditor\n${USAGE}`);
          await (await membershipCli()).principalAdd(values.dir, name, values.role, values.as, values.json);
        } else if (sub === 'remove') await (await membershipCli()).principalRemove(values.dir, name, values.as, values.json);
        else throw new Error(`principal takes 'add' or 'remove'\n${USAGE}`);
        break;
      }
      case 'admin':
        await (await partyCli()).adminCommand(positionals, values);
        break;
      case 'p11-kit':
        if (positionals.length !== 1) throw new Error(`p11-kit takes 'install' or 'remove'\n${USAGE}`);
        await (await import('./p11-kit.js')).p11Kit(positionals[0], values);
        break;
      case 'genesis':
        await (await partyCli()).genesisCommand(positionals, values, { threshold: intOption('--threshold', values.threshold), quorum: intOption('--quorum', values.quorum), requireAttestation: values['require-attestation'] });
        break;
      case 'gateway':
        await (await partyCli()).partyCommand('gateway', positionals, values);
        break;
      case 'signer': {
        const [sub, name] = positionals;
        if (sub === 'init' || sub === 'start' || sub === 'stop') {
          await (await partyCli()).partyCommand('signer', positionals, values);
          break;
        }
        if (sub === 'backup' && positionals.length === 1) {
          await (await backupCli()).signerBackupCommand(values, dirGiven);
          break;
        }
        if (sub === 'restore' && positionals.length === 1) {
          process.exitCode = await (await backupCli()).signerRestoreCommand(values, dirGiven);
          break;
        }
        if (!values.as) throw new Error(`signer takes --as ADMINISTRATOR\n${USAGE}`);
        const m = await membershipCli();
        if (sub === 'add' && positionals.length === 1) await m.signerAdd(values.dir, values.as, values.json);
        else if (sub === 'admit' && name && positionals.length === 2) await m.signerAdmit(values.dir, name, values.as, values.json);
        else if (sub === 'remove' && name && positionals.length === 2) await m.signerRemove(values.dir, name, values.as, values.json);
        else if (sub === 'rejoin' && name && positionals.length === 2) await m.signerRejoin(values.dir, name, values.as, values.json);
        else throw new Error(`signer takes 'add', 'admit NAME', 'remove NAME' or 'rejoin FILE'\n${USAGE}`);
        break;
      }
      case 'key': {
        const [sub, key] = positionals;
        if (sub !== 'refresh' || !key || positionals.length !== 2 || !values.as) throw new Error(`key takes 'refresh KEY' and --as ADMINISTRATOR\n${USAGE}`);
        await (await import('./keys.js')).keyRefresh(values.dir, key, values.as, values.json);
        break;
      }
      case 'custodian':
        await (await backupCli()).custodianCommand(positionals, values, dirGiven);
        break;
      case 'backup':
        process.exitCode = await (await backupCli()).backupVerifyCommand(positionals, values, dirGiven);
        break;
      case 'governance':
        if (!values.as) throw new Error(`governance takes --as PRINCIPAL\n${USAGE}`);
        if (positionals[0] === 'show') await (await membershipCli()).governanceShow(values.dir, values.as, values.json);
        else if (positionals[0] === 'propose' && values.file) await (await membershipCli()).governancePropose(values.dir, values.file, values.as, values.json);
        else throw new Error(`governance takes 'show' or 'propose --file FILE'\n${USAGE}`);
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

function sealOption(v: string | undefined): 'software' | 'swtpm' | undefined {
  if (v === undefined || v === 'software' || v === 'swtpm') return v;
  throw new Error(`up --seal is software or swtpm, not '${v}' (a real TPM: 'mpchsm signer init --seal tpm' on each signer's host)`);
}
