/* SHA-1 (FIPS 180-4 §6.1), SHA-224/256 (§6.2/6.3), SHA-384/512 (§6.4/6.5). */
#include "base.h"

#include <string.h>

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint64_t K512[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL, 0x3956c25bf348b538ULL,
    0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL, 0xd807aa98a3030242ULL, 0x12835b0145706fbeULL,
    0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL, 0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL,
    0xc19bf174cf692694ULL, 0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL, 0x983e5152ee66dfabULL,
    0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL, 0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL,
    0x06ca6351e003826fULL, 0x142929670a0e6e70ULL, 0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL,
    0x53380d139d95b3dfULL, 0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL, 0xd192e819d6ef5218ULL,
    0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL, 0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL,
    0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL, 0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL,
    0x682e6ff3d6b2b8a3ULL, 0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL, 0xca273eceea26619cULL,
    0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL, 0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL,
    0x113f9804bef90daeULL, 0x1b710b35131c471bULL, 0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL,
    0x431d67c49c100d4cULL, 0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL};

static const uint64_t IV[5][8] = {
    [SHA_1] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0},
    [SHA_224] = {0xc1059ed8, 0x367cd507, 0x3070dd17, 0xf70e5939, 0xffc00b31, 0x68581511, 0x64f98fa7, 0xbefa4fa4},
    [SHA_256] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19},
    [SHA_384] = {0xcbbb9d5dc1059ed8ULL, 0x629a292a367cd507ULL, 0x9159015a3070dd17ULL, 0x152fecd8f70e5939ULL, 0x67332667ffc00b31ULL,
                 0x8eb44a8768581511ULL, 0xdb0c2e0d64f98fa7ULL, 0x47b5481dbefa4fa4ULL},
    [SHA_512] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL,
                 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL},
};

static int wide(sha_alg a) { return a == SHA_384 || a == SHA_512; }
static size_t block_len(sha_alg a) { return wide(a) ? 128 : 64; }

size_t sha_digest_len(sha_alg a) {
  static const size_t len[] = {[SHA_1] = 20, [SHA_224] = 28, [SHA_256] = 32, [SHA_384] = 48, [SHA_512] = 64};
  return len[a];
}

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define ROR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static void block_sha1(uint64_t *h, const uint8_t *p) {
  uint32_t w[80], a = (uint32_t)h[0], b = (uint32_t)h[1], c = (uint32_t)h[2], d = (uint32_t)h[3], e = (uint32_t)h[4];
  for (int t = 0; t < 16; t++) w[t] = be32(p + 4 * t);
  for (int t = 16; t < 80; t++) w[t] = ROL32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) f = (b & c) | (~b & d), k = 0x5a827999;
    else if (t < 40) f = b ^ c ^ d, k = 0x6ed9eba1;
    else if (t < 60) f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
    else f = b ^ c ^ d, k = 0xca62c1d6;
    uint32_t tmp = ROL32(a, 5) + f + e + k + w[t];
    e = d, d = c, c = ROL32(b, 30), b = a, a = tmp;
  }
  h[0] = (uint32_t)(h[0] + a), h[1] = (uint32_t)(h[1] + b), h[2] = (uint32_t)(h[2] + c), h[3] = (uint32_t)(h[3] + d),
  h[4] = (uint32_t)(h[4] + e);
}

static void block_sha256(uint64_t *h, const uint8_t *p) {
  uint32_t w[64], v[8];
  for (int t = 0; t < 16; t++) w[t] = be32(p + 4 * t);
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = ROR32(w[t - 15], 7) ^ ROR32(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = ROR32(w[t - 2], 17) ^ ROR32(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  for (int i = 0; i < 8; i++) v[i] = (uint32_t)h[i];
  for (int t = 0; t < 64; t++) {
    uint32_t S1 = ROR32(v[4], 6) ^ ROR32(v[4], 11) ^ ROR32(v[4], 25);
    uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
    uint32_t t1 = v[7] + S1 + ch + K256[t] + w[t];
    uint32_t S0 = ROR32(v[0], 2) ^ ROR32(v[0], 13) ^ ROR32(v[0], 22);
    uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
    memmove(v + 1, v, 7 * sizeof v[0]);
    v[4] += t1;
    v[0] = t1 + S0 + maj;
  }
  for (int i = 0; i < 8; i++) h[i] = (uint32_t)(h[i] + v[i]);
}

static void block_sha512(uint64_t *h, const uint8_t *p) {
  uint64_t w[80], v[8];
  for (int t = 0; t < 16; t++) w[t] = be64(p + 8 * t);
  for (int t = 16; t < 80; t++) {
    uint64_t s0 = ROR64(w[t - 15], 1) ^ ROR64(w[t - 15], 8) ^ (w[t - 15] >> 7);
    uint64_t s1 = ROR64(w[t - 2], 19) ^ ROR64(w[t - 2], 61) ^ (w[t - 2] >> 6);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  memcpy(v, h, sizeof v);
  for (int t = 0; t < 80; t++) {
    uint64_t S1 = ROR64(v[4], 14) ^ ROR64(v[4], 18) ^ ROR64(v[4], 41);
    uint64_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
    uint64_t t1 = v[7] + S1 + ch + K512[t] + w[t];
    uint64_t S0 = ROR64(v[0], 28) ^ ROR64(v[0], 34) ^ ROR64(v[0], 39);
    uint64_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
    memmove(v + 1, v, 7 * sizeof v[0]);
    v[4] += t1;
    v[0] = t1 + S0 + maj;
  }
  for (int i = 0; i < 8; i++) h[i] += v[i];
}

static void compress(sha_ctx *c, const uint8_t *p) {
  if (c->alg == SHA_1) block_sha1(c->state, p);
  else if (wide(c->alg)) block_sha512(c->state, p);
  else block_sha256(c->state, p);
}

void sha_init(sha_ctx *c, sha_alg alg) {
  memset(c, 0, sizeof *c);
  c->alg = alg;
  memcpy(c->state, IV[alg], sizeof c->state);
}

void sha_update(sha_ctx *c, const uint8_t *data, size_t len) {
  size_t bl = block_len(c->alg);
  uint64_t before = c->total_lo;
  c->total_lo += len;
  if (c->total_lo < before) c->total_hi++;
  while (len > 0) {
    if (c->used == 0 && len >= bl) {
      compress(c, data);
      data += bl, len -= bl;
      continue;
    }
    size_t n = bl - c->used < len ? bl - c->used : len;
    memcpy(c->block + c->used, data, n);
    c->used += n, data += n, len -= n;
    if (c->used == bl) compress(c, c->block), c->used = 0;
  }
}

void sha_final(sha_ctx *c, uint8_t *out) {
  size_t bl = block_len(c->alg), lenfield = wide(c->alg) ? 16 : 8;
  uint64_t hi = c->total_hi << 3 | c->total_lo >> 61, lo = c->total_lo << 3; /* length in bits */
  c->block[c->used++] = 0x80;
  if (c->used > bl - lenfield) {
    memset(c->block + c->used, 0, bl - c->used);
    compress(c, c->block);
    c->used = 0;
  }
  memset(c->block + c->used, 0, bl - c->used);
  for (int i = 0; i < 8; i++) c->block[bl - 1 - i] = (uint8_t)(lo >> (8 * i));
  if (lenfield == 16)
    for (int i = 0; i < 8; i++) c->block[bl - 9 - i] = (uint8_t)(hi >> (8 * i));
  compress(c, c->block);
  size_t n = sha_digest_len(c->alg);
  for (size_t i = 0; i < n; i++) {
    if (wide(c->alg)) out[i] = (uint8_t)(c->state[i / 8] >> (56 - 8 * (i % 8)));
    else out[i] = (uint8_t)(c->state[i / 4] >> (24 - 8 * (i % 4)));
  }
}
