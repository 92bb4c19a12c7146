// The benchmark's nginx phase on made-up inputs: the configuration nginx and OpenSSL get, the
// PKCS#11 URI, the login count read from the module's log, the target row and the report
// section, the options, and the skip when nginx is missing. The phase itself runs for real in
// bench.test.ts (npm run bench -- --quick) wherever nginx is installed.
import { afterEach, describe, expect, it } from 'vitest';
import { findNginx, nginxConfig, opensslConfig } from '../../conformance/bench/nginx.js';
import { moduleLogins, uriId } from '../../conformance/bench/nginx-phase.js';
import { UsageError, options } from '../../conformance/bench/options.js';
import { fullReport, readmeSnippet } from '../../conformance/bench/report.js';
import { checkTargets, type NginxPoint, type NginxResults } from '../../conformance/bench/results.js';
import { emptyResults, lat } from './fixtures.js';

const ok = (key: NginxPoint['key'], perSec: number, p50: number): NginxPoint => ({
  key,
  status: 'ok',
  workers: 2,
  handshakes: perSec * 4,
  errors: 0,
  seconds: 4,
  perSec,
  latencyMs: lat(p50),
  cpuMsPerHandshake: key === 'mpchsm' ? { client: 1.9, nginx: 0.6, gateway: 6, signer1: 4, signer2: 4, signer3: 3 } : { client: 1.6, nginx: 0.9 },
  ...(key === 'mpchsm' ? { moduleLogins: 3 } : {}),
});
const measured = (m: NginxPoint, s: NginxPoint): NginxResults => ({ version: 'nginx/1.22.1', tls: 'TLSv1.3', concurrency: 4, workers: 'auto', points: [m, s] });
const nginxRow = (n?: NginxResults) => checkTargets([], {}, [], n).find((t) => t.name.startsWith('nginx TLS handshakes/s'))!;

describe('nginx configuration', () => {
  const conf = nginxConfig('/tmp/x', { port: 4433, workers: 2, root: false }, 'pkcs11:token=mpchsm;id=%0a%0b;type=private;pin-source=file:/tmp/x/pin', ['MPCHSM_PKCS11_CONF']);

  it('serves TLS on loopback with the key through the engine, every handshake a full one', () => {
    expect(conf).toContain('listen 127.0.0.1:4433 ssl;');
    expect(conf).toContain('ssl_certificate_key "engine:pkcs11:pkcs11:token=mpchsm;id=%0a%0b;type=private;pin-source=file:/tmp/x/pin";');
    expect(conf).toContain('ssl_session_cache off;');
    expect(conf).toContain('ssl_session_tickets off;');
    expect(conf).toContain('worker_processes 2;');
    expect(conf).toContain('daemon off;');
  });

  it('keeps everything inside its directory and the module configuration in the workers', () => {
    expect(conf).toContain('pid "/tmp/x/nginx.pid";');
    expect(conf).toContain('error_log "/tmp/x/error.log" warn;');
    expect(conf).toContain('client_body_temp_path "/tmp/x/tmp/client_body";');
    // Workers initialise the module again after the fork: its configuration must reach them.
    expect(conf).toContain('env MPCHSM_PKCS11_CONF;');
    expect(conf).not.toContain('user ');
    expect(nginxConfig('/tmp/x', { port: 1, workers: 'auto', root: true }, 'pkcs11:id=%01', [])).toMatch(/^user root;$/m);
  });

  it('loads and initialises the pkcs11 engine with the module', () => {
    const c = opensslConfig('/usr/lib/engines-3/pkcs11.so', '/m/libmpchsm-pkcs11.so');
    expect(c).toMatch(/^openssl_conf = openssl_init$/m);
    expect(c).toMatch(/^dynamic_path = \/usr\/lib\/engines-3\/pkcs11\.so$/m);
    expect(c).toMatch(/^MODULE_PATH = \/m\/libmpchsm-pkcs11\.so$/m);
    expect(c).toMatch(/^init = 1$/m);
  });

  it('names the key by its CKA_ID and counts the processes that logged in', () => {
    expect(uriId('0a0bff')).toBe('%0a%0b%ff');
    const line = (pid: number, level: number, msg: string) => JSON.stringify({ level, time: 1796554834470, pid, name: 'mpchsm-pkcs11', msg });
    const log = [
      line(20778, 30, 'initialised: gateway 127.0.0.1:23500'),
      line(20778, 30, 'logged in as app (CKU_USER)'),
      line(20780, 30, 'logged in as app (CKU_USER)'),
      line(20781, 30, 'logged in as app (CKU_USER)'),
      line(20781, 30, 'logged in as app (CKU_USER)'),
      line(20790, 40, 'C_Sign: not logged in'),
    ].join('\n');
    expect(moduleLogins(log)).toBe(3);
    expect(moduleLogins('')).toBe(0);
  });
});

describe('nginx target and report', () => {
  it('divides mpchsm handshakes/s by SoftHSMv2\'s against 0.10', () => {
    const met = nginxRow(measured(ok('mpchsm', 80, 40), ok('softhsm', 700, 5)));
    expect(met).toMatchObject({ name: 'nginx TLS handshakes/s, RSA-2048, ÷ SoftHSMv2', limit: '≥ 0.1', met: true });
    expect(met.measured).toBe('0.11 (80.00 vs 700 handshakes/s)');
    expect(nginxRow(measured(ok('mpchsm', 35, 100), ok('softhsm', 700, 5))).met).toBe(false);
  });

  it('says why the target was not measured rather than pass or fail it', () => {
    expect(nginxRow({ skipped: 'nginx not installed', install: 'apt-get install nginx' })).toMatchObject({ measured: 'not measured (nginx not installed)', met: 'not available' });
    expect(nginxRow(undefined).met).toBe('not available');
    const noSoft = nginxRow(measured(ok('mpchsm', 35, 100), { key: 'softhsm', status: 'unavailable', reason: 'SoftHSMv2 is not installed (apt-get install softhsm2)' }));
    expect(noSoft.met).toBe('not available');
    expect(noSoft.measured).toContain('SoftHSMv2 is not installed');
    expect(noSoft.measured).toContain('mpchsm 35.00 handshakes/s');
    expect(nginxRow(measured({ key: 'mpchsm', status: 'failed', reason: 'nginx did not start' }, ok('softhsm', 700, 5))).measured).toBe('not measured (mpchsm: nginx did not start)');
  });

  const base = emptyResults;

  it('writes the handshake table, its target row and the README line', () => {
    const nginx = measured(ok('mpchsm', 35, 100), ok('softhsm', 700, 5));
    const r = { ...base, nginx, targets: checkTargets([], {}, [], nginx) };
    const md = fullReport(r);
    expect(md).toContain('## nginx: TLS handshakes with an RSA-2048 key in the token');
    // CPU ceiling: 2 cores ÷ (1.9 + 0.6 + 6 + 11) ms, 2 ÷ (1.6 + 0.9) ms.
    expect(md).toContain('| mpchsm (PKCS#11 module) | 2 | 35.0 | 100 | 150 | 200 | 0.050 | 1.90 / 0.60 / 6.00 / 11.0 | 103 | 3 |');
    expect(md).toContain('| SoftHSMv2 | 2 | 700 | 5.00 | 7.50 | 10.0 |  | 1.60 / 0.90 | 800 |  |');
    expect(md).toContain('| nginx TLS handshakes/s, RSA-2048, ÷ SoftHSMv2 | ≥ 0.1 | 0.050 (35.00 vs 700 handshakes/s) | **no** |');
    expect(readmeSnippet(r)).toContain('completes 35.0 full TLS 1.3 handshakes/s with an RSA-2048 key in mpchsm at 4 clients, p50 100 ms, against 700 with SoftHSMv2 (0.050×).');
  });

  it('says how to install nginx when the phase was skipped', () => {
    const nginx: NginxResults = { skipped: 'nginx not installed', install: 'apt-get install nginx' };
    const r = { ...base, nginx, targets: checkTargets([], {}, [], nginx) };
    expect(fullReport(r)).toContain('_Not measured: nginx not installed (`apt-get install nginx`)._');
    expect(fullReport(r)).toContain('| nginx TLS handshakes/s, RSA-2048, ÷ SoftHSMv2 | ≥ 0.1 | not measured (nginx not installed) | not available |');
    expect(readmeSnippet(r)).not.toContain('nginx');
  });
});

describe('nginx options and tools', () => {
  const saved = process.env.NGINX;
  afterEach(() => {
    if (saved === undefined) delete process.env.NGINX;
    else process.env.NGINX = saved;
  });

  it('--only nginx runs the nginx phase alone; --no-nginx and --nginx-workers', () => {
    const only = options(['--only', 'nginx']);
    expect(only).toMatchObject({ only: 'nginx', nginx: true, protocols: false, profile: false, keygenRuns: 1, nginxWorkers: 'auto' });
    expect(options([])).toMatchObject({ only: undefined, nginx: true, protocols: true });
    expect(options(['--no-nginx']).nginx).toBe(false);
    expect(options(['--nginx-workers', '8']).nginxWorkers).toBe(8);
    expect(() => options(['--only', 'sign'])).toThrow(UsageError);
    expect(() => options(['--only', 'nginx', '--no-nginx'])).toThrow(/contradict/);
    expect(() => options(['--nginx-workers', '0'])).toThrow(/--nginx-workers must be a number/);
    expect(() => options(['--nginx-workers', 'many'])).toThrow(/whole number or 'auto'/);
  });

  it('reports nginx missing, with how to install it', () => {
    process.env.NGINX = '/nonexistent/nginx';
    expect(findNginx()).toEqual({ missing: 'nginx not installed', install: 'apt-get install nginx' });
  });
});
