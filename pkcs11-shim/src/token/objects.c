/* The module's object table. Token objects (keys, certificates) come from the gateway with
 * every attribute already encoded for this platform; the module caches them so that
 * C_GetAttributeValue needs no round trip, and gives each a handle that stays the same for
 * the module's lifetime. Session objects (C_CreateObject with CKA_TOKEN false) live only here.
 * Callers hold M.lock. */
#include "token.h"

#include <stdlib.h>
#include <string.h>

static void attrs_free(object_t *o) {
  for (size_t i = 0; i < o->nattrs; i++) free(o->attrs[i].value);
  free(o->attrs);
  free(o->sensitive);
  o->attrs = NULL, o->nattrs = 0, o->sensitive = NULL, o->nsensitive = 0;
}

static object_t *object_new(void) {
  if (M.nobjects == M.objects_cap) {
    size_t cap = M.objects_cap ? M.objects_cap * 2 : 64;
    object_t **p = realloc(M.objects, cap * sizeof *p);
    if (!p) return NULL;
    M.objects = p, M.objects_cap = cap;
  }
  object_t *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->handle = (CK_OBJECT_HANDLE)(M.nobjects + 1);
  M.objects[M.nobjects++] = o;
  return o;
}

const attr_t *object_attr(const object_t *o, CK_ATTRIBUTE_TYPE t) {
  for (size_t i = 0; i < o->nattrs; i++)
    if (o->attrs[i].type == t) return &o->attrs[i];
  return NULL;
}

int object_bool(const object_t *o, CK_ATTRIBUTE_TYPE t) {
  const attr_t *a = object_attr(o, t);
  return a && a->len == 1 && a->value[0] != 0;
}

CK_ULONG object_ulong(const object_t *o, CK_ATTRIBUTE_TYPE t, CK_ULONG dflt) {
  const attr_t *a = object_attr(o, t);
  CK_ULONG v;
  if (!a || a->len != sizeof v) return dflt;
  memcpy(&v, a->value, sizeof v);
  return v;
}

/* Before a login only public objects are visible (CKA_PRIVATE false: public keys, certificates,
 * session objects), as on a hardware token; private and secret keys never are, whatever the
 * gateway says of them. */
static int visible(const object_t *o) {
  if (o->destroyed) return 0;
  if (M.login != LOGIN_NONE) return 1;
  CK_ULONG cls = object_ulong(o, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
  return !object_bool(o, CKA_PRIVATE) && cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY;
}

object_t *object_get(CK_OBJECT_HANDLE h) {
  if (h == 0 || h > M.nobjects) return NULL;
  object_t *o = M.objects[h - 1];
  return visible(o) ? o : NULL;
}

static int is_sensitive(const object_t *o, CK_ATTRIBUTE_TYPE t) {
  for (size_t i = 0; i < o->nsensitive; i++)
    if (o->sensitive[i] == t) return 1;
  return 0;
}

int object_matches(const object_t *o, const CK_ATTRIBUTE *t, CK_ULONG n) {
  if (!visible(o)) return 0;
  for (CK_ULONG i = 0; i < n; i++) {
    const attr_t *a = object_attr(o, t[i].type);
    if (!a || is_sensitive(o, t[i].type) || a->len != t[i].ulValueLen) return 0;
    if (a->len && (!t[i].pValue || memcmp(a->value, t[i].pValue, a->len))) return 0;
  }
  return 1;
}

/* PKCS#11 v2.40 §5.7 C_GetAttributeValue: every attribute is answered on its own; the
 * function's result is one of the per-attribute failures, if any. */
CK_RV object_read_attributes(const object_t *o, CK_ATTRIBUTE *t, CK_ULONG n) {
  CK_RV rv = CKR_OK;
  for (CK_ULONG i = 0; i < n; i++) {
    const attr_t *a = object_attr(o, t[i].type);
    if (is_sensitive(o, t[i].type)) {
      t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
      rv = CKR_ATTRIBUTE_SENSITIVE;
    } else if (!a) {
      t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
      rv = CKR_ATTRIBUTE_TYPE_INVALID;
    } else if (!t[i].pValue) {
      t[i].ulValueLen = a->len;
    } else if (t[i].ulValueLen >= a->len) {
      if (a->len) memcpy(t[i].pValue, a->value, a->len);
      t[i].ulValueLen = a->len;
    } else {
      t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
      rv = CKR_BUFFER_TOO_SMALL;
    }
  }
  return rv;
}

static int set_attr(object_t *o, CK_ATTRIBUTE_TYPE type, const void *v, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return -1;
  if (len) memcpy(copy, v, len);
  for (size_t i = 0; i < o->nattrs; i++)
    if (o->attrs[i].type == type) {
      free(o->attrs[i].value);
      o->attrs[i].value = copy, o->attrs[i].len = len;
      return 0;
    }
  attr_t *p = realloc(o->attrs, (o->nattrs + 1) * sizeof *p);
  if (!p) {
    free(copy);
    return -1;
  }
  o->attrs = p;
  o->attrs[o->nattrs++] = (attr_t){type, copy, len};
  return 0;
}

CK_OBJECT_HANDLE object_upsert_from_wire(rbuf *r) {
  uint32_t n, nattrs, nsens;
  const uint8_t *uid;
  size_t uid_len;
  uint64_t out_len;
  if (rd_list(r, &n) || n != 4 || rd_bytes(r, &uid, &uid_len) || uid_len == 0 || uid_len > 256) return 0;
  object_t tmp = {0};
  if (rd_list(r, &nattrs)) return 0;
  for (uint32_t i = 0; i < nattrs; i++) {
    uint32_t two;
    uint64_t type;
    const uint8_t *v;
    size_t len;
    if (rd_list(r, &two) || two != 2 || rd_uint(r, &type) || rd_bytes(r, &v, &len)) goto bad;
    if (set_attr(&tmp, (CK_ATTRIBUTE_TYPE)type, v, len)) goto oom;
  }
  if (rd_list(r, &nsens)) goto bad;
  tmp.sensitive = calloc(nsens ? nsens : 1, sizeof *tmp.sensitive);
  if (!tmp.sensitive) goto oom;
  for (uint32_t i = 0; i < nsens; i++) {
    uint64_t type;
    if (rd_uint(r, &type)) goto bad;
    tmp.sensitive[tmp.nsensitive++] = (CK_ATTRIBUTE_TYPE)type;
  }
  if (rd_uint(r, &out_len)) goto bad;

  object_t *o = NULL;
  for (size_t i = 0; i < M.nobjects && !o; i++) {
    object_t *c = M.objects[i];
    if (c->uid && strlen(c->uid) == uid_len && !memcmp(c->uid, uid, uid_len)) o = c;
  }
  if (!o) {
    char *s = malloc(uid_len + 1);
    if (!s || !(o = object_new())) {
      free(s);
      goto oom;
    }
    memcpy(s, uid, uid_len);
    s[uid_len] = 0;
    o->uid = s;
  }
  attrs_free(o);
  o->attrs = tmp.attrs, o->nattrs = tmp.nattrs, o->sensitive = tmp.sensitive, o->nsensitive = tmp.nsensitive;
  o->out_len = (CK_ULONG)out_len;
  o->destroyed = 0;
  return o->handle;
bad:
  attrs_free(&tmp);
  return 0;
oom:
  attrs_free(&tmp);
  return (CK_OBJECT_HANDLE)-1;
}

/* Session objects: data, certificates and public keys an application brings along (NSS and
 * Java import a peer's public key this way to verify with it). Private and secret keys would
 * be key material in the module, which it never holds. */
CK_RV object_create_session(CK_SESSION_HANDLE owner, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out) {
  object_t tmp = {0};
  for (CK_ULONG i = 0; i < n; i++)
    if (set_attr(&tmp, t[i].type, t[i].pValue, t[i].pValue ? t[i].ulValueLen : 0)) goto oom;
  CK_ULONG cls = object_ulong(&tmp, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
  if (cls == CK_UNAVAILABLE_INFORMATION) {
    attrs_free(&tmp);
    return CKR_TEMPLATE_INCOMPLETE;
  }
  if (cls != CKO_DATA && cls != CKO_CERTIFICATE && cls != CKO_PUBLIC_KEY) {
    log_msg(LOG_WARN, "C_CreateObject: refused a session object of class 0x%lx: the module holds no key material", cls);
    attrs_free(&tmp);
    return CKR_TEMPLATE_INCONSISTENT;
  }
  if (cls == CKO_PUBLIC_KEY) {
    CK_ULONG kt = object_ulong(&tmp, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
    if (kt == CK_UNAVAILABLE_INFORMATION) {
      attrs_free(&tmp);
      return CKR_TEMPLATE_INCOMPLETE;
    }
    const attr_t *mod = object_attr(&tmp, CKA_MODULUS);
    if (kt == CKK_RSA && mod) {
      size_t len = mod->len;
      for (size_t i = 0; i < mod->len && mod->value[i] == 0; i++) len--;
      tmp.out_len = len;
    }
  }
  static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  struct {
    CK_ATTRIBUTE_TYPE type;
    const void *v;
    size_t len;
  } defaults[] = {{CKA_TOKEN, &no, 1},       {CKA_PRIVATE, &no, 1},    {CKA_MODIFIABLE, &yes, 1}, {CKA_COPYABLE, &yes, 1},
                  {CKA_DESTROYABLE, &yes, 1}, {CKA_LABEL, "", 0},       {CKA_VERIFY, &yes, 1},     {CKA_ENCRYPT, &yes, 1}};
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
    if ((defaults[i].type == CKA_VERIFY || defaults[i].type == CKA_ENCRYPT) && cls != CKO_PUBLIC_KEY) continue;
    if (!object_attr(&tmp, defaults[i].type) && set_attr(&tmp, defaults[i].type, defaults[i].v, defaults[i].len)) goto oom;
  }
  object_t *o = object_new();
  if (!o) goto oom;
  o->owner = owner;
  o->attrs = tmp.attrs, o->nattrs = tmp.nattrs, o->out_len = tmp.out_len;
  *out = o->handle;
  return CKR_OK;
oom:
  attrs_free(&tmp);
  return CKR_HOST_MEMORY;
}

CK_RV object_set_session(object_t *o, const CK_ATTRIBUTE *t, CK_ULONG n) {
  if (!object_bool(o, CKA_MODIFIABLE)) return CKR_ACTION_PROHIBITED;
  for (CK_ULONG i = 0; i < n; i++)
    if (t[i].type == CKA_CLASS || t[i].type == CKA_TOKEN || t[i].type == CKA_KEY_TYPE || t[i].type == CKA_PRIVATE)
      return CKR_ATTRIBUTE_READ_ONLY;
  for (CK_ULONG i = 0; i < n; i++)
    if (set_attr(o, t[i].type, t[i].pValue, t[i].pValue ? t[i].ulValueLen : 0)) return CKR_HOST_MEMORY;
  return CKR_OK;
}

/* PKCS#11 3.0 §5.7: a copy may change what can ordinarily be modified, and CKA_TOKEN and
 * CKA_PRIVATE; an object's class and type stay. */
CK_RV object_copy_template(const object_t *o, const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE **out, CK_ULONG *nout) {
  int modifiable = object_bool(o, CKA_MODIFIABLE);
  for (CK_ULONG i = 0; i < n; i++) {
    CK_ATTRIBUTE_TYPE type = t[i].type;
    if (type == CKA_CLASS || type == CKA_KEY_TYPE || type == CKA_CERTIFICATE_TYPE) return CKR_ATTRIBUTE_READ_ONLY;
    if (!modifiable && type != CKA_TOKEN && type != CKA_PRIVATE) return CKR_ATTRIBUTE_READ_ONLY;
  }
  CK_ATTRIBUTE *m = calloc(o->nattrs + n + 1, sizeof *m);
  if (!m) return CKR_HOST_MEMORY;
  CK_ULONG k = 0;
  for (size_t i = 0; i < o->nattrs + n; i++) {
    CK_ATTRIBUTE_TYPE type = i < o->nattrs ? o->attrs[i].type : t[i - o->nattrs].type;
    const void *v = i < o->nattrs ? o->attrs[i].value : t[i - o->nattrs].pValue;
    size_t len = i < o->nattrs ? o->attrs[i].len : t[i - o->nattrs].ulValueLen;
    int replaced = 0;
    for (CK_ULONG j = 0; i < o->nattrs && j < n; j++) replaced |= t[j].type == type;
    if (replaced) continue;
    m[k] = (CK_ATTRIBUTE){type, malloc(len ? len : 1), len};
    if (!m[k].pValue) {
      template_free(m, k);
      return CKR_HOST_MEMORY;
    }
    if (len) memcpy(m[k].pValue, v, len);
    k++;
  }
  *out = m, *nout = k;
  return CKR_OK;
}

void template_free(CK_ATTRIBUTE *t, CK_ULONG n) {
  for (CK_ULONG i = 0; t && i < n; i++) free(t[i].pValue);
  free(t);
}

void object_destroy(object_t *o) {
  attrs_free(o);
  o->destroyed = 1;
}

void objects_destroy_key(const char *uid) {
  const char *end = strrchr(uid, ':');
  if (strncmp(uid, "k:", 2) || !end) return;
  size_t n = (size_t)(end - uid) + 1; /* "k:<key id>:" */
  for (size_t i = 0; i < M.nobjects; i++) {
    object_t *o = M.objects[i];
    if (o->uid && !o->destroyed && !strncmp(o->uid, uid, n)) object_destroy(o);
  }
}

void objects_drop_session(CK_SESSION_HANDLE owner) {
  for (size_t i = 0; i < M.nobjects; i++) {
    object_t *o = M.objects[i];
    if (!o->uid && !o->destroyed && (owner == 0 || o->owner == owner)) object_destroy(o);
  }
}

void objects_free_all(void) {
  for (size_t i = 0; i < M.nobjects; i++) {
    attrs_free(M.objects[i]);
    free(M.objects[i]->uid);
    free(M.objects[i]);
  }
  free(M.objects);
  M.objects = NULL, M.nobjects = 0, M.objects_cap = 0;
}

/* The key an operation uses: a token key by its gateway name; a session public key by the
 * attributes the gateway needs to rebuild it. */
CK_RV key_ref_from(const object_t *o, key_ref_t *k) {
  memset(k, 0, sizeof *k);
  k->cls = object_ulong(o, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
  k->key_type = object_ulong(o, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
  k->out_len = o->out_len;
  if (o->uid) {
    k->uid = strdup(o->uid);
    return k->uid ? CKR_OK : CKR_HOST_MEMORY;
  }
  static const CK_ATTRIBUTE_TYPE wanted[] = {CKA_KEY_TYPE, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS, CKA_EC_POINT};
  uint32_t count = 0;
  for (size_t i = 0; i < 5; i++) count += object_attr(o, wanted[i]) != NULL;
  wb_list(&k->session_key, count);
  for (size_t i = 0; i < 5; i++) {
    const attr_t *a = object_attr(o, wanted[i]);
    if (!a) continue;
    wb_list(&k->session_key, 2);
    wb_uint(&k->session_key, a->type);
    wb_bytes(&k->session_key, a->value, a->len);
  }
  return k->session_key.oom ? CKR_HOST_MEMORY : CKR_OK;
}

void key_ref_free(key_ref_t *k) {
  free(k->uid);
  wb_free(&k->session_key);
  memset(k, 0, sizeof *k);
}

/* A token key goes as its name (bytes), a session key as its attribute list. */
void wb_key_ref(wbuf *w, const key_ref_t *k) {
  if (k->uid) {
    wb_str(w, k->uid);
    return;
  }
  if (k->session_key.oom) w->oom = 1;
  else wb_raw(w, k->session_key.data, k->session_key.len);
}
