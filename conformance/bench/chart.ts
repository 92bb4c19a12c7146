// Throughput against concurrency as a small, dependency-free SVG: one line per facade ×
// algorithm, concurrency on a log₂ x axis, signatures per second on a log₁₀ y axis (SoftHSMv2
// and mpchsm differ by orders of magnitude; a linear axis would flatten mpchsm to zero).
import type { SignPoint } from './results.js';
import { ALGS, TARGET_LABEL, TARGETS, type Alg, type Target } from './types.js';

const SHORT: Readonly<Record<Alg, string>> = { rsa2048: 'RSA-2048', p256: 'ECDSA P-256', ed25519: 'Ed25519' };
const COLOR: Readonly<Record<Alg, string>> = { rsa2048: '#1f5fa8', p256: '#2a8a3e', ed25519: '#c0392b' };
const DASH: Readonly<Record<Target, string>> = { kms: '', p11: '7 4', softhsm: '2 4' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n = (v: number) => v.toFixed(1);

function marker(target: Target, x: number, y: number, color: string): string {
  if (target === 'kms') return `<circle cx="${n(x)}" cy="${n(y)}" r="3.5" fill="${color}"/>`;
  if (target === 'p11') return `<rect x="${n(x - 3.5)}" y="${n(y - 3.5)}" width="7" height="7" fill="${color}"/>`;
  return `<path d="M${n(x)} ${n(y - 4.5)}L${n(x + 4)} ${n(y + 3)}L${n(x - 4)} ${n(y + 3)}Z" fill="#fff" stroke="${color}" stroke-width="1.5"/>`;
}

export function throughputChart(points: readonly SignPoint[], subtitle: string): string {
  const W = 840;
  const H = 460;
  const L = 70;
  const R = 290;
  const pad = 28; // keeps the end markers off the frame
  const T = 56;
  const B = 52;
  const pw = W - L - R;
  const ph = H - T - B;
  const ok = points.filter((p) => p.status === 'ok' && (p.opsPerSec ?? 0) > 0);
  const levels = [...new Set(points.map((p) => p.concurrency))].sort((a, b) => a - b);
  const lx = levels.map(Math.log2);
  const [x0, x1] = [Math.min(...lx), Math.max(...lx)];
  const xOf = (c: number) => L + pad + (x1 === x0 ? (pw - 2 * pad) / 2 : ((Math.log2(c) - x0) / (x1 - x0)) * (pw - 2 * pad));
  const vals = ok.map((p) => p.opsPerSec!);
  const y0 = Math.floor(Math.log10(Math.min(...vals, 1)));
  const y1 = Math.max(y0 + 1, Math.ceil(Math.log10(Math.max(...vals, 10))));
  const yOf = (v: number) => T + ph - ((Math.log10(v) - y0) / (y1 - y0)) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${L}" y="22" font-size="15" font-weight="bold">Signatures per second against concurrent clients</text>`);
  out.push(`<text x="${L}" y="40" fill="#555">${esc(subtitle)}</text>`);
  // Decades with 2× and 5× minor lines.
  for (let d = y0; d <= y1; d++) {
    const y = yOf(10 ** d);
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${n(y)}" y2="${n(y)}" stroke="#ccc"/>`);
    out.push(`<text x="${L - 8}" y="${n(y + 4)}" text-anchor="end">${(10 ** d).toLocaleString('en-US')}</text>`);
    if (d < y1) for (const m of [2, 5]) out.push(`<line x1="${L}" x2="${L + pw}" y1="${n(yOf(m * 10 ** d))}" y2="${n(yOf(m * 10 ** d))}" stroke="#eee"/>`);
  }
  for (const c of levels) {
    const x = xOf(c);
    out.push(`<line x1="${n(x)}" x2="${n(x)}" y1="${T}" y2="${T + ph}" stroke="#eee"/>`);
    out.push(`<text x="${n(x)}" y="${T + ph + 18}" text-anchor="middle">${c}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 12}" text-anchor="middle">concurrent clients</text>`);
  out.push(`<text transform="translate(18 ${T + ph / 2}) rotate(-90)" text-anchor="middle">signatures / s (log scale)</text>`);

  let ly = T + 6;
  for (const target of TARGETS) {
    for (const alg of ALGS) {
      const line = ok.filter((p) => p.target === target && p.alg === alg).sort((a, b) => a.concurrency - b.concurrency);
      if (line.length === 0) continue;
      const color = COLOR[alg];
      const dash = DASH[target] ? ` stroke-dasharray="${DASH[target]}"` : '';
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${line.map((p) => `${n(xOf(p.concurrency))},${n(yOf(p.opsPerSec!))}`).join(' ')}"/>`);
      for (const p of line) out.push(marker(target, xOf(p.concurrency), yOf(p.opsPerSec!), color));
      const lx0 = L + pw + 16;
      out.push(`<line x1="${lx0}" x2="${lx0 + 30}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
      out.push(marker(target, lx0 + 15, ly, color));
      out.push(`<text x="${lx0 + 38}" y="${ly + 4}">${esc(`${TARGET_LABEL[target]} · ${SHORT[alg]}`)}</text>`);
      ly += 20;
    }
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
