// Public surface of the audit library.
export { AuditLog, type AuditLogOptions, type AuditSigner } from './log.js';
export { verifyLog, verifyParsedLog, readLog, parseLog, type Finding, type FindingCode, type KnownHead, type ParsedLog, type Severity, type VerifyOptions, type VerifyResult } from './verify.js';
export { crossCheck, collectKnownHeads, type PartyLog } from './crosscheck.js';
export { signHead, verifyHead, lineHash, GENESIS_PREV, type AuditKey } from './chain.js';
export {
  auditIntentSchema,
  toAuditIntent,
  type AuditIntent,
  type AuditIntentInput,
  type IntentEntry,
  AuditError,
  assertNoSecrets,
  auditEventSchema,
  logEntrySchema,
  OUTCOMES,
  OUTPUTS,
  type AuditEvent,
  type AuditEventInput,
  type EventEntry,
  type Head,
  type LogEntry,
  type SignedHead,
} from './entry.js';
export { AUDIT_FILE, auditLogPath, gatewayAuditPath, signerAuditPath } from './paths.js';
