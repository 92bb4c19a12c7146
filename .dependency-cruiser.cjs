// The floors of DESIGN.md ("Where things live"), lowest first: a file imports only from its own
// floor or below, never from a sibling of its floor, and no import circle spans two files.
//   contract/ (ground) → signers/protocols/ → policy/, audit/ → signers/node/, gateway/ → cli/ → conformance/
// signers/ceremony/ (the RSA dealer) lives on the signer daemon's floor.
const floors = {
  contract: { path: '^contract/', below: [] },
  protocols: { path: '^signers/protocols/', below: ['^contract/'] },
  policy: { path: '^policy/', below: ['^contract/', '^signers/protocols/'] },
  audit: { path: '^audit/', below: ['^contract/', '^signers/protocols/'] },
  signer: { path: '^signers/(node|ceremony)/', below: ['^contract/', '^signers/protocols/', '^policy/', '^audit/'] },
  gateway: { path: '^gateway/', below: ['^contract/', '^signers/protocols/', '^policy/', '^audit/'] },
  cli: { path: '^cli/', below: ['^contract/', '^signers/', '^policy/', '^audit/', '^gateway/'] },
};
const project = '^(contract|signers|policy|audit|gateway|cli|conformance)/';

module.exports = {
  forbidden: [
    ...Object.entries(floors).map(([name, f]) => ({
      name: `floor-${name}`,
      comment: `${f.path} imports only its own floor or ${f.below.join(', ') || 'nothing of the project'}`,
      severity: 'error',
      from: { path: f.path },
      to: { path: project, pathNot: [f.path, ...f.below] },
    })),
    {
      name: 'no-circular',
      comment: 'an import circle spanning more than one file',
      severity: 'error',
      from: { path: project },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|test)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
