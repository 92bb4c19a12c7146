/* C_Initialize, C_Finalize, C_GetInfo, and the function lists and interfaces (PKCS#11 2.40, 3.0). */
#include "api.h"

#include <string.h>

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

CK_RV C_Initialize(CK_VOID_PTR pInitArgs) {
  if (pInitArgs) {
    CK_C_INITIALIZE_ARGS *a = pInitArgs;
    if (a->pReserved) return CKR_ARGUMENTS_BAD;
    int some = a->CreateMutex || a->DestroyMutex || a->LockMutex || a->UnlockMutex;
    int all = a->CreateMutex && a->DestroyMutex && a->LockMutex && a->UnlockMutex;
    if (some && !all) return CKR_ARGUMENTS_BAD;
    /* We lock with pthreads; an application that allows only its own mutexes gets told so. */
    if (all && !(a->flags & CKF_OS_LOCKING_OK)) return CKR_CANT_LOCK;
  }
  pthread_mutex_lock(&init_lock);
  pid_t pid = getpid();
  CK_RV rv = M.initialized && M.pid == pid ? CKR_CRYPTOKI_ALREADY_INITIALIZED : module_start(pid);
  pthread_mutex_unlock(&init_lock);
  return rv;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved) {
  if (pReserved) return CKR_ARGUMENTS_BAD;
  pthread_mutex_lock(&init_lock);
  CK_RV rv = CKR_OK;
  if (!M.initialized || M.pid != getpid()) rv = CKR_CRYPTOKI_NOT_INITIALIZED;
  else module_stop();
  pthread_mutex_unlock(&init_lock);
  return rv;
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo) {
  CHECK_INIT();
  if (!pInfo) return CKR_ARGUMENTS_BAD;
  memset(pInfo, 0, sizeof *pInfo);
  pInfo->cryptokiVersion = (CK_VERSION){2, 40};
  pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "mpchsm");
  pad(pInfo->libraryDescription, sizeof pInfo->libraryDescription, "mpchsm threshold HSM");
  pInfo->libraryVersion = (CK_VERSION){MPCHSM_VERSION_MAJOR, MPCHSM_VERSION_MINOR};
  return CKR_OK;
}

/* ---- function lists and interfaces --------------------------------------------------- */

#define MPCHSM_ENTRY(name, args) name,
static CK_FUNCTION_LIST functions_2_40 = {{2, 40}, MPCHSM_FUNCTIONS_2_40(MPCHSM_ENTRY)};
static CK_FUNCTION_LIST_3_0 functions_3_0 = {{3, 0}, MPCHSM_FUNCTIONS_2_40(MPCHSM_ENTRY) MPCHSM_FUNCTIONS_3_0(MPCHSM_ENTRY)};
static CK_INTERFACE interfaces[] = {
    {(CK_CHAR *)"PKCS 11", &functions_3_0, CKF_INTERFACE_FORK_SAFE},
    {(CK_CHAR *)"PKCS 11", &functions_2_40, CKF_INTERFACE_FORK_SAFE},
};
#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

/* No I/O here: an application may ask for the list before anything is configured. */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  if (!ppFunctionList) return CKR_ARGUMENTS_BAD;
  *ppFunctionList = &functions_2_40;
  return CKR_OK;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  if (!pulCount) return CKR_ARGUMENTS_BAD;
  if (pInterfacesList) {
    if (*pulCount < N_INTERFACES) {
      *pulCount = N_INTERFACES;
      return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(pInterfacesList, interfaces, sizeof interfaces);
  }
  *pulCount = N_INTERFACES;
  return CKR_OK;
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
  if (!ppInterface) return CKR_ARGUMENTS_BAD;
  for (size_t i = 0; i < N_INTERFACES; i++) {
    const CK_VERSION *v = interfaces[i].pFunctionList;
    if (pInterfaceName && strcmp((const char *)pInterfaceName, (const char *)interfaces[i].pInterfaceName)) continue;
    if (pVersion && (pVersion->major != v->major || pVersion->minor != v->minor)) continue;
    if ((interfaces[i].flags & flags) != flags) continue;
    *ppInterface = &interfaces[i];
    return CKR_OK;
  }
  return CKR_ARGUMENTS_BAD;
}
