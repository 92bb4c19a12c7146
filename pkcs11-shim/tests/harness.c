/* Drives the module through its C ABI where a high-level binding cannot: NULL-buffer length
 * queries, short buffers, threads, fork. Prints one line per step, `STEP RV [DETAIL]`, for
 * test/p11 to check; it asserts nothing itself.
 *
 *   harness MODULE offline
 *   harness MODULE lengths SIGN_LABEL DECRYPT_LABEL       (env HARNESS_PIN: a CKU_USER PIN)
 *   harness MODULE threads SIGN_LABEL THREADS PER_THREAD  (env HARNESS_PIN)
 *   harness MODULE fork SIGN_LABEL                        (env HARNESS_PIN)
 *   harness MODULE so-destroy-cert LABEL                  (env HARNESS_PIN: a CKU_SO PIN)
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "steps.h"

static CK_FUNCTION_LIST *f;
static const char *pin;

/* The call runs before its outputs are printed (argument order is unspecified in C). */
#define STEP(name, call)          \
  do {                            \
    CK_RV rv_ = (call);           \
    step(name, rv_, NULL);        \
  } while (0)
#define STEPF(name, call, ...)    \
  do {                            \
    CK_RV rv_ = (call);           \
    step(name, rv_, __VA_ARGS__); \
  } while (0)

static void hex(char *dst, const CK_BYTE *p, CK_ULONG n) {
  for (CK_ULONG i = 0; i < n; i++) sprintf(dst + 2 * i, "%02x", p[i]);
  dst[2 * n] = 0;
}

static CK_SESSION_HANDLE open_login(void) {
  CK_SESSION_HANDLE s = 0;
  CK_RV rv = f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
  if (rv != CKR_OK) step("open", rv, NULL);
  rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) step("login", rv, NULL);
  return s;
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label) {
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
  CK_OBJECT_HANDLE h = 0;
  CK_ULONG n = 0;
  CK_RV rv = f->C_FindObjectsInit(s, t, 2);
  if (rv == CKR_OK) rv = f->C_FindObjects(s, &h, 1, &n);
  f->C_FindObjectsFinal(s);
  if (rv != CKR_OK || n != 1) step("find", rv, "%s count=%lu", label, n);
  return h;
}

static CK_MECHANISM sign_mechanism(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key) {
  CK_KEY_TYPE kt = 0;
  CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
  f->C_GetAttributeValue(s, key, &a, 1);
  return (CK_MECHANISM){kt == CKK_RSA ? CKM_SHA256_RSA_PKCS : CKM_EDDSA, NULL, 0};
}

static int offline(void) {
  CK_SLOT_ID slots[4];
  CK_ULONG n = 0;
  STEP("before_init_slot_list", f->C_GetSlotList(CK_TRUE, NULL, &n));

  CK_C_INITIALIZE_ARGS bad = {0};
  bad.pReserved = &bad;
  STEP("init_reserved", f->C_Initialize(&bad));
  CK_C_INITIALIZE_ARGS own = {(CK_CREATEMUTEX)1, (CK_DESTROYMUTEX)1, (CK_LOCKMUTEX)1, (CK_UNLOCKMUTEX)1, 0, NULL};
  STEP("init_own_mutexes", f->C_Initialize(&own));
  CK_C_INITIALIZE_ARGS os = {0};
  os.flags = CKF_OS_LOCKING_OK;
  STEP("init", f->C_Initialize(&os));
  STEP("init_again", f->C_Initialize(NULL));

  CK_INFO info;
  CK_RV rv = f->C_GetInfo(&info);
  step("info", rv, "%d.%d %.32s", info.cryptokiVersion.major, info.cryptokiVersion.minor, info.manufacturerID);
  n = 0;
  STEPF("slot_list_query", f->C_GetSlotList(CK_TRUE, NULL, &n), "%lu", n);
  n = 4;
  rv = f->C_GetSlotList(CK_TRUE, slots, &n);
  step("slot_list", rv, "%lu %lu", n, slots[0]);
  CK_TOKEN_INFO ti;
  rv = f->C_GetTokenInfo(slots[0], &ti);
  step("token_info", rv, "%.32s flags=0x%lx", ti.label, ti.flags);
  STEP("token_info_bad_slot", f->C_GetTokenInfo(99, &ti));
  CK_MECHANISM_TYPE mechs[64];
  n = 0;
  STEPF("mechanisms_query", f->C_GetMechanismList(0, NULL, &n), "%lu", n);
  CK_ULONG small = 1;
  STEPF("mechanisms_short", f->C_GetMechanismList(0, mechs, &small), "%lu", small);
  CK_MECHANISM_INFO mi;
  rv = f->C_GetMechanismInfo(0, CKM_EDDSA, &mi);
  step("mechanism_info_eddsa", rv, "flags=0x%lx", mi.flags);
  STEP("mechanism_info_unknown", f->C_GetMechanismInfo(0, 0x80001234UL, &mi));

  CK_SESSION_HANDLE s;
  STEP("open_ro", f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s));
  STEP("open_parallel", f->C_OpenSession(0, CKF_RW_SESSION, NULL, NULL, &s));
  CK_SESSION_INFO si;
  rv = f->C_GetSessionInfo(s, &si);
  step("session_info", rv, "state=%lu", si.state);

  CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
  CK_BYTE digest[64];
  CK_ULONG dlen = 0;
  f->C_DigestInit(s, &sha);
  STEPF("digest_query", f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, NULL, &dlen), "%lu", dlen);
  dlen = 8;
  STEPF("digest_short", f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &dlen), "%lu", dlen);
  dlen = sizeof digest;
  rv = f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &dlen);
  char h[200];
  hex(h, digest, dlen);
  step("digest", rv, "%s", h);
  STEP("digest_after", f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &dlen));
  CK_MECHANISM sha1 = {CKM_SHA_1, NULL, 0};
  f->C_DigestInit(s, &sha1);
  f->C_DigestUpdate(s, (CK_BYTE_PTR) "a", 1);
  f->C_DigestUpdate(s, (CK_BYTE_PTR) "bc", 2);
  dlen = sizeof digest;
  rv = f->C_DigestFinal(s, digest, &dlen);
  hex(h, digest, dlen);
  step("digest_multipart_sha1", rv, "%s", h);

  CK_BYTE rnd[32] = {0};
  STEP("random", f->C_GenerateRandom(s, rnd, sizeof rnd));
  STEP("login_unreachable", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4));
  STEP("login_bad_type", f->C_Login(s, 7, (CK_UTF8CHAR_PTR) "1234", 4));
  STEP("close", f->C_CloseSession(s));
  STEP("close_again", f->C_CloseSession(s));
  STEP("finalize", f->C_Finalize(NULL));
  STEP("after_finalize", f->C_GetSlotList(CK_TRUE, NULL, &n));
  return 0;
}

static int lengths(const char *sign_label, const char *decrypt_label) {
  f->C_Initialize(NULL);
  CK_SESSION_HANDLE s = open_login();
  CK_OBJECT_HANDLE key = find_key(s, CKO_PRIVATE_KEY, sign_label);
  CK_MECHANISM m = sign_mechanism(s, key);
  CK_BYTE data[] = "the quick brown fox", sig[1024], sig2[1024];
  CK_ULONG len = 0, len2;
  char h[2100];

  STEP("sign_init", f->C_SignInit(s, &m, key));
  STEP("sign_init_twice", f->C_SignInit(s, &m, key));
  STEPF("sign_query", f->C_Sign(s, data, sizeof data, NULL, &len), "%lu", len);
  len2 = len - 1;
  STEPF("sign_short", f->C_Sign(s, data, sizeof data, sig, &len2), "%lu", len2);
  len = sizeof sig;
  CK_RV rv = f->C_Sign(s, data, sizeof data, sig, &len);
  hex(h, sig, len);
  step("sign", rv, "%lu %s", len, h);
  STEP("sign_after", f->C_Sign(s, data, sizeof data, sig, &len));

  f->C_SignInit(s, &m, key);
  f->C_SignUpdate(s, data, 4);
  f->C_SignUpdate(s, data + 4, 0);
  f->C_SignUpdate(s, data + 4, sizeof data - 4);
  len2 = 0;
  STEPF("sign_final_query", f->C_SignFinal(s, NULL, &len2), "%lu", len2);
  CK_ULONG flen = sizeof sig2;
  STEPF("sign_final", f->C_SignFinal(s, sig2, &flen), "%lu", flen);

  f->C_SignInit(s, &m, key);
  f->C_SignUpdate(s, data, 4);
  CK_BYTE sig3[1024];
  len2 = sizeof sig3;
  STEP("sign_after_update", f->C_Sign(s, data, sizeof data, sig3, &len2));

  CK_OBJECT_HANDLE pub = find_key(s, CKO_PUBLIC_KEY, sign_label);
  STEP("verify_init", f->C_VerifyInit(s, &m, pub));
  STEP("verify", f->C_Verify(s, data, sizeof data, sig, len));
  /* Threshold Ed25519 signatures are randomised: the multi-part one is checked, not compared. */
  f->C_VerifyInit(s, &m, pub);
  f->C_VerifyUpdate(s, data, 10);
  f->C_VerifyUpdate(s, data + 10, sizeof data - 10);
  STEP("verify_multipart", f->C_VerifyFinal(s, sig2, flen));
  f->C_VerifyInit(s, &m, pub);
  sig[3] ^= 1;
  STEP("verify_bad", f->C_Verify(s, data, sizeof data, sig, len));
  f->C_VerifyInit(s, &m, pub);
  STEP("verify_short", f->C_Verify(s, data, sizeof data, sig, len - 1));
  STEP("verify_after", f->C_Verify(s, data, sizeof data, sig, len));
  STEP("sign_with_public", f->C_SignInit(s, &m, pub));

  /* attribute length rules */
  CK_BYTE small[2];
  CK_ATTRIBUTE t[] = {{CKA_LABEL, NULL, 0}, {CKA_ID, small, sizeof small}, {CKA_PRIVATE_EXPONENT, NULL, 0}, {0xdeadUL, NULL, 0}, {CKA_SIGN, NULL, 0}};
  rv = f->C_GetAttributeValue(s, key, t, 5);
  step("attributes", rv, "%ld %ld %ld %ld %ld", (long)t[0].ulValueLen, (long)t[1].ulValueLen, (long)t[2].ulValueLen, (long)t[3].ulValueLen, (long)t[4].ulValueLen);
  CK_BYTE id[64];
  CK_ATTRIBUTE one = {CKA_ID, id, sizeof id};
  rv = f->C_GetAttributeValue(s, key, &one, 1);
  hex(h, id, one.ulValueLen);
  step("attribute_id", rv, "%s", h);

  /* decryption: length query, then a short buffer, keep the result for the retry */
  CK_OBJECT_HANDLE dkey = find_key(s, CKO_PRIVATE_KEY, decrypt_label);
  CK_OBJECT_HANDLE ekey = find_key(s, CKO_PUBLIC_KEY, decrypt_label);
  CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
  CK_MECHANISM om = {CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
  CK_BYTE ct[1024], pt[1024];
  CK_ULONG ctlen = 0, ptlen = 0;
  STEP("encrypt_init", f->C_EncryptInit(s, &om, ekey));
  STEPF("encrypt_query", f->C_Encrypt(s, data, sizeof data, NULL, &ctlen), "%lu", ctlen);
  rv = f->C_Encrypt(s, data, sizeof data, ct, &ctlen);
  step("encrypt", rv, "%lu", ctlen);
  STEP("decrypt_init", f->C_DecryptInit(s, &om, dkey));
  STEPF("decrypt_query", f->C_Decrypt(s, ct, ctlen, NULL, &ptlen), "%lu", ptlen);
  ptlen = 4;
  STEPF("decrypt_short", f->C_Decrypt(s, ct, ctlen, pt, &ptlen), "%lu", ptlen);
  ptlen = sizeof pt;
  rv = f->C_Decrypt(s, ct, ctlen, pt, &ptlen);
  step("decrypt", rv, "%d", ptlen == sizeof data && !memcmp(pt, data, sizeof data));
  f->C_DecryptInit(s, &om, dkey);
  ct[10] ^= 0x40;
  ptlen = sizeof pt;
  STEP("decrypt_bad", f->C_Decrypt(s, ct, ctlen, pt, &ptlen));
  f->C_DecryptInit(s, &om, dkey);
  ptlen = sizeof pt;
  STEP("decrypt_short_ciphertext", f->C_Decrypt(s, ct, ctlen - 1, pt, &ptlen));
  CK_RSA_PKCS_OAEP_PARAMS label = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, "L", 1};
  CK_MECHANISM lm = {CKM_RSA_PKCS_OAEP, &label, sizeof label};
  STEP("decrypt_label", f->C_DecryptInit(s, &lm, dkey));
  STEP("decrypt_with_sign_key", f->C_DecryptInit(s, &om, key));
  f->C_Finalize(NULL);
  return 0;
}

struct job {
  const char *label;
  int count;
  int ok;
  int verified;
};

static void *worker(void *arg) {
  struct job *j = arg;
  CK_SESSION_HANDLE s;
  if (f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) return NULL;
  CK_OBJECT_HANDLE key = find_key(s, CKO_PRIVATE_KEY, j->label);
  CK_OBJECT_HANDLE pub = find_key(s, CKO_PUBLIC_KEY, j->label);
  CK_MECHANISM m = sign_mechanism(s, key);
  for (int i = 0; i < j->count; i++) {
    char msg[64];
    int n = snprintf(msg, sizeof msg, "message %p %d", (void *)j, i);
    CK_BYTE sig[1024];
    CK_ULONG len = sizeof sig;
    CK_RV rv = f->C_SignInit(s, &m, key);
    if (rv == CKR_OK) rv = f->C_Sign(s, (CK_BYTE_PTR)msg, (CK_ULONG)n, sig, &len);
    if (rv != CKR_OK) {
      step("thread_sign", rv, NULL);
      continue;
    }
    j->ok++;
    if (f->C_VerifyInit(s, &m, pub) == CKR_OK && f->C_Verify(s, (CK_BYTE_PTR)msg, (CK_ULONG)n, sig, len) == CKR_OK) j->verified++;
  }
  f->C_CloseSession(s);
  return NULL;
}

static int threads(const char *label, int nthreads, int per) {
  CK_C_INITIALIZE_ARGS a = {0};
  a.flags = CKF_OS_LOCKING_OK;
  f->C_Initialize(&a);
  CK_SESSION_HANDLE s = open_login(); /* login is per application: the workers share it */
  pthread_t t[256];
  struct job jobs[256];
  if (nthreads > 256) nthreads = 256;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < nthreads; i++) {
    jobs[i] = (struct job){label, per, 0, 0};
    pthread_create(&t[i], NULL, worker, &jobs[i]);
  }
  int ok = 0, verified = 0;
  for (int i = 0; i < nthreads; i++) {
    pthread_join(t[i], NULL);
    ok += jobs[i].ok;
    verified += jobs[i].verified;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  step("threads", CKR_OK, "%d %d %.3f", ok, verified, secs);
  f->C_CloseSession(s);
  f->C_Finalize(NULL);
  return 0;
}

static CK_RV sign_once(CK_SESSION_HANDLE s, const char *label) {
  CK_OBJECT_HANDLE key = find_key(s, CKO_PRIVATE_KEY, label);
  CK_MECHANISM m = sign_mechanism(s, key);
  CK_BYTE sig[1024];
  CK_ULONG len = sizeof sig;
  CK_RV rv = f->C_SignInit(s, &m, key);
  return rv == CKR_OK ? f->C_Sign(s, (CK_BYTE_PTR) "fork", 4, sig, &len) : rv;
}

static int forked(const char *label) {
  f->C_Initialize(NULL);
  CK_SESSION_HANDLE s = open_login();
  step("parent_sign", sign_once(s, label), NULL);
  pid_t pid = fork();
  if (pid == 0) {
    CK_ULONG n;
    CK_SESSION_INFO si;
    STEP("child_slot_list", f->C_GetSlotList(CK_TRUE, NULL, &n));
    STEP("child_session_info", f->C_GetSessionInfo(s, &si));
    STEP("child_init", f->C_Initialize(NULL));
    CK_SESSION_HANDLE cs = open_login();
    step("child_sign", sign_once(cs, label), NULL);
    STEP("child_finalize", f->C_Finalize(NULL));
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  step("child_exit", (CK_RV)status, NULL);
  step("parent_sign_after", sign_once(s, label), NULL);
  f->C_Finalize(NULL);
  return 0;
}

/* A key administrator, in its own process, sees an application's certificate and removes it. */
static int so_destroy_cert(const char *label) {
  f->C_Initialize(NULL);
  CK_SESSION_HANDLE s;
  f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
  STEP("so_login", f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
  CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
  CK_OBJECT_HANDLE h = 0;
  CK_ULONG n = 0;
  f->C_FindObjectsInit(s, t, 2);
  f->C_FindObjects(s, &h, 1, &n);
  f->C_FindObjectsFinal(s);
  step("so_found", CKR_OK, "%lu", n);
  STEP("so_destroy", f->C_DestroyObject(s, h));
  f->C_Finalize(NULL);
  return 0;
}

int main(int argc, char **argv) {
  void *lib = open_module(argc, argv, "harness MODULE offline|lengths|threads|fork ...");
  if (!lib) return 2;
  CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
  CK_RV rv = gfl(&f);
  step("get_function_list", rv, "%d.%d", f->version.major, f->version.minor);
  CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
  CK_INTERFACE *iface = NULL;
  CK_VERSION v30 = {3, 0};
  rv = gi((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &iface, 0);
  step("get_interface_3_0", rv, "%d.%d", iface ? ((CK_VERSION *)iface->pFunctionList)->major : 0,
       iface ? ((CK_VERSION *)iface->pFunctionList)->minor : 0);
  CK_VERSION v99 = {9, 9};
  step("get_interface_9_9", gi(NULL, &v99, &iface, 0), NULL);
  pin = getenv("HARNESS_PIN");
  if (!pin) pin = "";
  if (!strcmp(argv[2], "offline")) return offline();
  if (!strcmp(argv[2], "lengths") && argc == 5) return lengths(argv[3], argv[4]);
  if (!strcmp(argv[2], "threads") && argc == 6) return threads(argv[3], atoi(argv[4]), atoi(argv[5]));
  if (!strcmp(argv[2], "fork") && argc == 4) return forked(argv[3]);
  if (!strcmp(argv[2], "so-destroy-cert") && argc == 4) return so_destroy_cert(argv[3]);
  fprintf(stderr, "bad scenario\n");
  return 2;
}
