/* The return codes PKCS#11 3.0 specifies where conformance suites look closely: C_SeedRandom's
 * argument and session errors before "seed not supported", the token's PIN counter flags after
 * a wrong PIN, and C_CopyObject on session objects, keys and certificates. Prints one line per
 * step, `STEP RV [DETAIL]`, for test/p11 to check; it asserts nothing itself.
 *
 *   codes MODULE offline                            (no gateway needed)
 *   codes MODULE cluster KEY_LABEL CERT_LABEL       (env CODES_PIN: a CKU_USER PIN)
 */
#include <stdlib.h>
#include <string.h>

#include "steps.h"

static CK_FUNCTION_LIST *f;

static CK_FLAGS token_flags(void) {
  CK_TOKEN_INFO ti;
  return f->C_GetTokenInfo(0, &ti) == CKR_OK ? ti.flags : 0;
}

/* The token flags as a step: "flags=0x…". */
static void flags_step(const char *name) {
  char d[40];
  snprintf(d, sizeof d, "flags=0x%lx", token_flags());
  step(name, CKR_OK, "%s", d);
}

static CK_OBJECT_HANDLE find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label, CK_ULONG *count) {
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
  CK_OBJECT_HANDLE h[4] = {0};
  *count = 0;
  if (f->C_FindObjectsInit(s, t, 2) == CKR_OK) f->C_FindObjects(s, h, 4, count);
  f->C_FindObjectsFinal(s);
  return h[0];
}

/* A label's value as a step's detail. */
static void label_step(const char *name, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h) {
  char label[64] = {0};
  CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof label - 1};
  CK_RV rv = f->C_GetAttributeValue(s, h, &a, 1);
  if (rv == CKR_OK) label[a.ulValueLen] = 0;
  step(name, rv, "%s", label);
}

static int offline(void) {
  CK_BYTE seed[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  step("seed_not_initialized", f->C_SeedRandom(1, seed, sizeof seed), NULL);
  f->C_Initialize(NULL);
  CK_SESSION_HANDLE ro = 0, rw = 0;
  f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw);

  /* C_SeedRandom: the call's own errors first, then the answer of a generator that takes no seed. */
  step("seed_no_session", f->C_SeedRandom(rw + 100, seed, sizeof seed), NULL);
  step("seed_null", f->C_SeedRandom(rw, NULL, 1), NULL);
  step("seed", f->C_SeedRandom(rw, seed, sizeof seed), NULL);
  step("seed_empty", f->C_SeedRandom(rw, NULL, 0), NULL);

  /* Wrong PINs (an empty one needs no gateway to be wrong) raise the counter flags of their type. */
  flags_step("flags_before");
  step("login_wrong_user", f->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR) "", 0), NULL);
  flags_step("flags_user_wrong");
  step("login_wrong_so", f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "", 0), NULL);
  flags_step("flags_so_wrong");
  f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro); /* a read-only session would stop an SO login first */

  /* C_CopyObject on session objects: copyable by default (CKA_COPYABLE true). */
  CK_OBJECT_CLASS data = CKO_DATA, pub = CKO_PUBLIC_KEY;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &data, sizeof data}, {CKA_LABEL, "original", 8}, {CKA_VALUE, "\xde\xad", 2}};
  CK_OBJECT_HANDLE obj = 0, copy = 0, fixed = 0, uncopyable = 0;
  f->C_CreateObject(rw, t, 3, &obj);
  CK_ATTRIBUTE relabel = {CKA_LABEL, "copy", 4};
  CK_ATTRIBUTE to_key = {CKA_CLASS, &pub, sizeof pub};
  step("copy_no_session", f->C_CopyObject(ro + rw + 100, obj, &relabel, 1, &copy), NULL);
  step("copy_no_out", f->C_CopyObject(rw, obj, &relabel, 1, NULL), NULL);
  step("copy_null_template", f->C_CopyObject(rw, obj, NULL, 1, &copy), NULL);
  step("copy_bad_object", f->C_CopyObject(rw, obj + 1000, &relabel, 1, &copy), NULL);
  step("copy_class", f->C_CopyObject(rw, obj, &to_key, 1, &copy), NULL);
  step("copy", f->C_CopyObject(rw, obj, &relabel, 1, &copy), NULL);
  label_step("copy_label", rw, copy);
  label_step("original_label", rw, obj);
  step("copy_same", f->C_CopyObject(ro, obj, NULL, 0, &copy), NULL);
  label_step("copy_same_label", ro, copy);
  CK_ATTRIBUTE to_token = {CKA_TOKEN, &yes, 1};
  step("copy_to_token_ro", f->C_CopyObject(ro, obj, &to_token, 1, &copy), NULL);
  step("copy_to_token_no_login", f->C_CopyObject(rw, obj, &to_token, 1, &copy), NULL);
  CK_ATTRIBUTE to_private = {CKA_PRIVATE, &yes, 1};
  step("copy_private_no_login", f->C_CopyObject(rw, obj, &to_private, 1, &copy), NULL);
  CK_ATTRIBUTE t2[] = {{CKA_CLASS, &data, sizeof data}, {CKA_MODIFIABLE, &no, 1}};
  f->C_CreateObject(rw, t2, 2, &fixed);
  step("copy_unmodifiable_relabel", f->C_CopyObject(rw, fixed, &relabel, 1, &copy), NULL);
  CK_ATTRIBUTE t3[] = {{CKA_CLASS, &data, sizeof data}, {CKA_COPYABLE, &no, 1}};
  f->C_CreateObject(rw, t3, 2, &uncopyable);
  step("copy_uncopyable", f->C_CopyObject(rw, uncopyable, NULL, 0, &copy), NULL);
  f->C_Finalize(NULL);
  return 0;
}

/* Against a cluster: public objects before a login, the PIN counter after a wrong and a right
 * PIN, and C_CopyObject on a token key and a token certificate. */
static int cluster(const char *key_label, const char *cert_label) {
  const char *pin = getenv("CODES_PIN");
  if (!pin) pin = "";
  f->C_Initialize(NULL);
  CK_SESSION_HANDLE s;
  f->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
  CK_ULONG n;
  char d[32];
  CK_OBJECT_HANDLE pub = find(s, CKO_PUBLIC_KEY, key_label, &n);
  snprintf(d, sizeof d, "%lu", n);
  step("public_before_login", CKR_OK, "%s", d);
  find(s, CKO_PRIVATE_KEY, key_label, &n);
  snprintf(d, sizeof d, "%lu", n);
  step("private_before_login", CKR_OK, "%s", d);
  label_step("public_label_before_login", s, pub);
  CK_OBJECT_HANDLE h;
  step("copy_public_key_before_login", f->C_CopyObject(s, pub, NULL, 0, &h), NULL);

  flags_step("flags_before");
  step("login_wrong", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "wrong-pin", 9), NULL);
  flags_step("flags_wrong");
  step("login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), NULL);
  flags_step("flags_after_login");

  CK_OBJECT_HANDLE priv = find(s, CKO_PRIVATE_KEY, key_label, &n);
  CK_OBJECT_HANDLE cert = find(s, CKO_CERTIFICATE, cert_label, &n);
  snprintf(d, sizeof d, "%lu", n);
  step("certificate_found", CKR_OK, "%s", d);
  CK_ATTRIBUTE relabel = {CKA_LABEL, "copy", 4};
  step("copy_private_key", f->C_CopyObject(s, priv, NULL, 0, &h), NULL);
  step("copy_public_key", f->C_CopyObject(s, pub, &relabel, 1, &h), NULL);
  step("copy_certificate", f->C_CopyObject(s, cert, NULL, 0, &h), NULL);
  CK_BBOOL no = CK_FALSE;
  CK_ATTRIBUTE to_session = {CKA_TOKEN, &no, 1};
  step("copy_certificate_to_session", f->C_CopyObject(s, cert, &to_session, 1, &h), NULL);
  f->C_Logout(s);
  f->C_Finalize(NULL);
  return 0;
}

int main(int argc, char **argv) {
  void *lib = open_module(argc, argv, "codes MODULE offline|cluster ...");
  if (!lib) return 2;
  CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
  if (!gfl || gfl(&f) != CKR_OK) return 2;
  if (!strcmp(argv[2], "offline")) return offline();
  if (!strcmp(argv[2], "cluster") && argc == 5) return cluster(argv[3], argv[4]);
  fprintf(stderr, "bad scenario\n");
  return 2;
}
