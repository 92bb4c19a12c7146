// mpchsm's policy module: pure functions shared by the gateway and every signer.
export * from './admin-evidence.js';
export * from './approvals.js';
export * from './evaluate.js';
export * from './evidence.js';
export * from './genesis.js';
export * from './governance.js';
export * from './key-policy.js';
export * from './key-refs.js';
export * from './key-usage.js';
export * from './membership.js';
export * from './rate-limit.js';
export * from './roles.js';
export * from './sign-approvals.js';
export * from './sigv4.js';
export * from './symmetric-evidence.js';
export * from './webauthn.js';
