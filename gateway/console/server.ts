// The approval console: a web page on its own listener (config consoleListen; HTTPS with the
// KMS listener's certificate when it has one) where administrators sign in with a security key
// (sessions.ts), see the signatures and proposals waiting for approval (pages.ts), and approve
// a signature with their security key: the page asks the key to sign the very approval statement
// `mpchsm approve-sign` signs with an approval key, whose digest is the WebAuthn challenge, and
// the assertion is stored beside the CLI's approvals (gateway/proposals.ts). The gateway cannot
// make or reuse one: each signer verifies the assertion against the credential its own
// governance enrols and keeps the credential's counter (policy/webauthn.ts). A proposal is
// approved or refused the same way: the key signs the digest `mpchsm approve` (or `refuse`)
// signs. Each is submitted as the signed-in administrator's MpcHsm.ApproveSign, Approve or
// Refuse, run and audited as the KMS API runs it (kms/mw/): an approval that completes a
// proposal executes it, and the gateway's audit entry names the approver.
import { randomBytes, randomUUID } from 'node:crypto';
import type http from 'node:http';
import Koa from 'koa';
import { z } from 'zod';
import { listen } from '../../contract/io/listen.js';
import { approvalDigest, refusalDigest, signApprovalDigest, signApprovalStatementSchema, type GovernanceDocument } from '../../policy/index.js';
import type { GatewayDeps } from '../deps.js';
import { Arns } from '../kms/ids.js';
import type { MpcHsmOperation } from '../kms/mpchsm.js';
import { audited } from '../kms/mw/audit.js';
import { runMpcHsmRequest } from '../kms/mw/execute.js';
import type { KmsRequest } from '../kms/mw/state.js';
import type { Principal } from '../principals.js';
import { gatewayPolicy } from '../governance.js';
import { createLimitedServer, type HttpsCredentials } from '../http-limits.js';
import { KmsError } from '../kms/errors.js';
import { readBody } from '../kms/mw/body.js';
import type { SignRequest } from '../proposals.js';
import { enrolPage, esc, homePage, page, proposalPage, signInPage, signRequestPage, type SignRequestView } from './pages.js';
import { CONSOLE_SCRIPT } from './script.js';
import { ConsoleSessions, SESSION_LIFETIME_MS } from './sessions.js';

/** How long an approval made in the console stays valid. */
export const CONSOLE_APPROVAL_TTL_MS = 3600_000;
const MAX_BODY_BYTES = 32 * 1024;
const COOKIE = 'mpchsm_console';

/** Where the console listens, and the origin and RP id browsers see it under. */
export function consoleAddress(config: Pick<GatewayDeps['config'], 'consoleListen' | 'consoleOrigin' | 'tls'>): { host: string; port: number; origin: string; rpId: string } | undefined {
  if (!config.consoleListen) return undefined;
  const at = config.consoleListen.lastIndexOf(':');
  const [host, port] = [config.consoleListen.slice(0, at), Number(config.consoleListen.slice(at + 1))];
  // WebAuthn takes no IP address as RP id: a loopback console is localhost to the browser.
  const name = ['127.0.0.1', '::1', 'localhost'].includes(host) ? 'localhost' : host;
  const origin = config.consoleOrigin ?? `${config.tls ? 'https' : 'http'}://${name}:${port}`;
  return { host, port, origin, rpId: new URL(origin).hostname };
}

const approveBody = z.strictObject({ statement: signApprovalStatementSchema, webauthn: z.unknown() });
const proposalBody = z.strictObject({ webauthn: z.unknown() });
const signInBody = z.strictObject({ id: z.string().regex(/^[0-9a-f]{32}$/), assertion: z.unknown() });
const enrolBody = z.strictObject({ name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/) });

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const body = await readBody(req, MAX_BODY_BYTES);
  try {
    return body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch {
    throw new KmsError('ValidationException', 'the body is not JSON');
  }
}

function parse<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new KmsError('ValidationException', `malformed request: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  return r.data;
}

const credentialsOf = (g: GovernanceDocument, name?: string) => g.administrators.filter((a) => name === undefined || a.name === name).flatMap((a) => (a.webauthn ?? []).map((c) => c.id));

/** Starts the console's listener; answers how to close it. */
export async function startConsole(deps: GatewayDeps, tls: HttpsCredentials | undefined): Promise<{ close(): void } | undefined> {
  const where = consoleAddress(deps.config);
  if (!where) return undefined;
  const sessions = new ConsoleSessions();
  const policy = gatewayPolicy;
  const arns = new Arns(deps.config.region, deps.config.account);

  /** MpcHsm.<name> as administrator `who`, run and audited as the KMS API would (kms/mw/execute.ts, audit.ts). */
  /** Runs `run` in `who`'s name, audited as a KMS request is: the gateway's entry names the administrator, and `via` the console. */
  const asAdministrator = async <T>(who: string, source: string, operation: string, run: (s: KmsRequest & { principal: Principal }) => Promise<T>): Promise<T> => {
    const principal = deps.principals.byName(who);
    if (!principal) throw new KmsError('AccessDeniedException', `${who} is not a principal of this gateway`);
    const s: KmsRequest & { principal: Principal } = { requestId: randomUUID(), started: Date.now(), status: 200, outcome: 'ok', reason: '', principal, operation, via: `console ${operation}` };
    try {
      return await audited(deps, s, source, () => run(s));
    } finally {
      deps.log.info({ requestId: s.requestId, admin: who, operation: s.operation, keyId: s.keyId, outcome: s.outcome }, 'console');
    }
  };
  const mpcHsm = (who: string, source: string, name: MpcHsmOperation, raw: object) =>
    asAdministrator(who, source, `MpcHsm.${name}`, (s) => runMpcHsmRequest(deps, arns, s, name, raw, s.principal)) as Promise<Record<string, unknown>>;

  const view = (r: SignRequest): SignRequestView => {
    const key = deps.cluster.keys.get(r.keyId);
    const required = key ? (policy().keyPolicies.keyInput(key).policy.mpchsm?.approvalsPerSignature ?? 0) : 0;
    return {
      ...r,
      aliases: deps.kmsState.aliases().filter((a) => a.keyId === r.keyId).map((a) => a.name),
      description: key?.description ?? '',
      approvers: policy().proposals.signApprovalsFor(r.keyId, r.algorithm, r.digest).map((a) => a.approver),
      required,
    };
  };
  const request = (id: string): SignRequest => {
    const r = policy().proposals.signRequests().find((x) => x.id === id);
    if (!r) throw new KmsError('NotFoundException', `no signature ${id} is waiting for approval`, 404);
    return r;
  };

  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.set('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'");
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } catch (e) {
      const err = e instanceof KmsError ? e : new KmsError('KMSInternalException', 'internal error');
      if (!(e instanceof KmsError)) deps.log.error({ err: e }, 'console request failed');
      ctx.status = err.type === 'AccessDeniedException' ? 403 : err.status && err.status !== 400 ? err.status : 400;
      ctx.body = ctx.path.startsWith('/api/') ? { type: err.type, message: err.message } : page('Error', `<p>${esc(err.message)}</p>`);
    }
  });
  app.use(async (ctx) => {
    const token = ctx.cookies.get(COOKIE);
    const who = sessions.who(token);
    const governance = policy().governance;
    if (ctx.method === 'GET') {
      if (ctx.path === '/console.js') {
        ctx.type = 'text/javascript';
        ctx.body = CONSOLE_SCRIPT;
        return;
      }
      ctx.type = 'text/html';
      if (ctx.path === '/enrol') return void (ctx.body = enrolPage(where.rpId, where.origin, who));
      if (!who) return void (ctx.body = signInPage());
      if (ctx.path === '/') {
        const open = policy().proposals.openProposals().map((s) => ({ proposal: s.proposal, approvers: policy().proposals.approvers(s), required: policy().proposals.required(s.proposal) }));
        return void (ctx.body = homePage(who, policy().proposals.signRequests().map(view), open));
      }
      const sign = /^\/sign\/(s-[0-9a-f]{16})$/.exec(ctx.path);
      if (sign) return void (ctx.body = signRequestPage(who, view(request(sign[1]!))));
      const prop = /^\/proposal\/([A-Za-z0-9._-]{8,128})$/.exec(ctx.path);
      const stored = prop && policy().proposals.get(prop[1]!);
      if (stored) return void (ctx.body = proposalPage(who, { proposal: stored.proposal, approvers: policy().proposals.approvers(stored), required: policy().proposals.required(stored.proposal), status: stored.status, outcome: stored.outcome }, governance));
      throw new KmsError('NotFoundException', 'no such page', 404);
    }
    // A cross-site form cannot send JSON without the browser asking first; the cookie is SameSite=Strict too.
    if (ctx.method !== 'POST' || !ctx.path.startsWith('/api/') || !ctx.is('application/json')) throw new KmsError('ValidationException', 'the console API is POST /api/… with a JSON body', 405);
    const body = await readJson(ctx.req);
    ctx.type = 'application/json';
    if (ctx.path === '/api/challenge') return void (ctx.body = { ...sessions.challenge(), rpId: where.rpId, credentials: credentialsOf(governance) });
    if (ctx.path === '/api/enrol-options') {
      parse(enrolBody, body);
      return void (ctx.body = { rpId: where.rpId, challenge: randomBytes(32).toString('base64url'), userId: randomBytes(16).toString('base64url') });
    }
    if (ctx.path === '/api/session') {
      const b = parse(signInBody, body);
      const s = sessions.signIn(b.id, b.assertion, governance);
      if ('reason' in s) throw new KmsError('AccessDeniedException', `sign-in refused: ${s.reason}`);
      ctx.cookies.set(COOKIE, s.token, { httpOnly: true, sameSite: 'strict', secure: where.origin.startsWith('https:'), maxAge: SESSION_LIFETIME_MS, overwrite: true });
      deps.log.info({ admin: s.name }, 'console sign-in');
      return void (ctx.body = { name: s.name });
    }
    if (!who) throw new KmsError('AccessDeniedException', 'sign in first', 401);
    if (ctx.path === '/api/signout') {
      sessions.signOut(token);
      ctx.cookies.set(COOKIE, '', { maxAge: 0 });
      return void (ctx.body = {});
    }
    const onProposal = /^\/api\/proposal\/([A-Za-z0-9._-]{8,128})\/(approve|refuse)(-statement)?$/.exec(ctx.path);
    if (onProposal) {
      const [, id, verb, statement] = onProposal as unknown as [string, string, 'approve' | 'refuse', string | undefined];
      const stored = policy().proposals.get(id);
      if (!stored || stored.status !== 'open') throw new KmsError('NotFoundException', `no proposal ${id} is open`, 404);
      const p = stored.proposal;
      // As `mpchsm approve` refuses to: the proposer's approval of a new principal vouches for the secret its own tool sealed.
      if (verb === 'approve' && p.operation === 'mpchsm:AddPrincipal' && p.proposer === who)
        throw new KmsError('ValidationException', `proposal ${id} adds a principal in ${who}'s name: ${who} approves it only when making it (mpchsm principal add)`);
      if (statement) {
        const digest = verb === 'approve' ? approvalDigest(p) : refusalDigest(p);
        return void (ctx.body = { challenge: Buffer.from(digest).toString('base64url'), rpId: where.rpId, credentials: credentialsOf(governance, who) });
      }
      const { webauthn } = parse(proposalBody, body);
      const signed = { proposalId: id, admin: who, webauthn };
      const out = await mpcHsm(who, ctx.ip, verb === 'approve' ? 'Approve' : 'Refuse', verb === 'approve' ? { ProposalId: id, Approval: signed } : { ProposalId: id, Refusal: signed });
      return void (ctx.body = { status: out.Status, approvals: out.Approvals, required: out.Required });
    }
    const action = /^\/api\/sign\/(s-[0-9a-f]{16})\/(statement|approve|refuse)$/.exec(ctx.path);
    if (!action) throw new KmsError('NotFoundException', 'no such operation', 404);
    const r = request(action[1]!);
    if (action[2] === 'refuse') {
      // Only this gateway's list changes (the signers saw no approval): recorded all the same, as the approver's act.
      await asAdministrator(who, ctx.ip, 'console.RefuseSign', async (s) => {
        s.keyId = r.keyId;
        policy().proposals.dropSignRequest(r.id);
      });
      return void (ctx.body = {});
    }
    if (action[2] === 'statement') {
      const statement = signApprovalStatementSchema.parse({
        clusterId: governance.clusterId,
        keyId: r.keyId,
        algorithm: r.algorithm,
        digest: r.digest,
        expiresAt: Date.now() + CONSOLE_APPROVAL_TTL_MS,
        nonce: randomBytes(16).toString('hex'),
        approver: who,
      });
      return void (ctx.body = { statement, challenge: Buffer.from(signApprovalDigest(statement)).toString('base64url'), rpId: where.rpId, credentials: credentialsOf(governance, who) });
    }
    const b = parse(approveBody, body);
    const s = b.statement;
    if (s.keyId !== r.keyId || s.algorithm !== r.algorithm || s.digest !== r.digest) throw new KmsError('ValidationException', 'the statement is for another signature');
    const out = await mpcHsm(who, ctx.ip, 'ApproveSign', { Approval: { ...b.statement, webauthn: b.webauthn } });
    ctx.body = { approvals: out.Approvals, required: out.Required };
  });

  const server = createLimitedServer(app.callback(), { maxConnections: 256, headersTimeoutMs: deps.config.kmsHeadersTimeoutMs, requestTimeoutMs: deps.config.kmsRequestTimeoutMs }, tls);
  await listen(server, where.host, where.port);
  deps.log.info({ listen: deps.config.consoleListen, origin: where.origin }, 'approval console ready');
  return {
    close() {
      server.close();
      server.closeAllConnections();
    },
  };
}
