// Where each party of a local cluster (cli/layout.ts) keeps its audit log.
import path from 'node:path';

export const AUDIT_FILE = 'audit.jsonl';

/** The log inside a party's own directory (what the gateway and signer daemons open). */
export const auditLogPath = (partyDir: string): string => path.join(partyDir, AUDIT_FILE);
/** `DIR/gateway/audit.jsonl` for cluster directory DIR. */
export const gatewayAuditPath = (clusterDir: string): string => auditLogPath(path.join(path.resolve(clusterDir), 'gateway'));
/** `DIR/signers/NAME/audit.jsonl` for cluster directory DIR. */
export const signerAuditPath = (clusterDir: string, name: string): string => auditLogPath(path.join(path.resolve(clusterDir), 'signers', name));
