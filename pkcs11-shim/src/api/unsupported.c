/* The functions the module does not offer: each answers CKR_FUNCTION_NOT_SUPPORTED once
 * initialised. Keys never leave the signers and there are no secret keys: no wrapping,
 * unwrapping, derivation or symmetric generation; no recovery signatures; no dual-function
 * updates; no message-based (PKCS#11 3.0 AEAD-style) operations. */
#include "api.h"

#define NOT_SUPPORTED(name, params, ...) \
  CK_RV name params {                    \
    __VA_ARGS__;                         \
    CHECK_INIT();                        \
    return CKR_FUNCTION_NOT_SUPPORTED;   \
  }
#define U(x) (void)(x)

NOT_SUPPORTED(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f), U(a), U(b), U(c), U(d), U(e), U(f))
NOT_SUPPORTED(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, CK_ULONG g, CK_OBJECT_HANDLE_PTR h), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h))
NOT_SUPPORTED(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f), U(a), U(b), U(c), U(d), U(e), U(f))
NOT_SUPPORTED(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_MessageEncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_EncryptMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g, CK_BYTE_PTR h, CK_ULONG_PTR i), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h), U(i))
NOT_SUPPORTED(C_EncryptMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_EncryptMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g, CK_FLAGS h), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h))
NOT_SUPPORTED(C_MessageEncryptFinal, (CK_SESSION_HANDLE a), U(a))
NOT_SUPPORTED(C_MessageDecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_DecryptMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g, CK_BYTE_PTR h, CK_ULONG_PTR i), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h), U(i))
NOT_SUPPORTED(C_DecryptMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DecryptMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g, CK_FLAGS h), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h))
NOT_SUPPORTED(C_MessageDecryptFinal, (CK_SESSION_HANDLE a), U(a))
NOT_SUPPORTED(C_MessageSignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_SignMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_SignMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c), U(a), U(b), U(c))
NOT_SUPPORTED(C_SignMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_MessageSignFinal, (CK_SESSION_HANDLE a), U(a))
NOT_SUPPORTED(C_MessageVerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_VerifyMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_VerifyMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c), U(a), U(b), U(c))
NOT_SUPPORTED(C_VerifyMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_MessageVerifyFinal, (CK_SESSION_HANDLE a), U(a))
