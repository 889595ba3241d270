/*
 * faultvfs.c - a VFS shim ("faultvfs") over the default VFS whose writes,
 * syncs, truncations and journal opens can be made to fail with a chosen
 * code: a disk that fills up, fails, or turns read-only under a running
 * transaction.
 *
 * Every call is passed to the real VFS unchanged unless a plan is armed
 * (faults_vfs_arm) and the file is one a transaction writes: the main
 * database, its rollback journal, its super-journal or its WAL. Temporary
 * files and the WAL index (shared memory, not written through xWrite) are
 * left alone. The plan is one global: the tests run one connection at a time
 * in one thread.
 */
#include <string.h>

#include "faults.h"

typedef struct fault_file {
  sqlite3_file base;
  sqlite3_file *real; /* borrowed: the real VFS's file, right after this struct */
  int target;         /* faults hit this file */
} fault_file;

static sqlite3_vfs *real_vfs;
static faults_plan plan;
static int armed, hits;

void faults_vfs_arm(const faults_plan *p) {
  plan = *p;
  armed = 1;
  hits = 0;
}

void faults_vfs_disarm(void) { armed = 0; }

int faults_vfs_hits(void) { return hits; }

/* The code an operation fails with now, or 0. */
static int fault(const fault_file *f, int rc) {
  if (!armed || !f->target || !rc) return 0;
  if (plan.skip > 0) {
    plan.skip--;
    return 0;
  }
  hits++;
  if (plan.once) armed = 0;
  return rc;
}

#define REAL(file) (((fault_file *)(file))->real)

static int io_close(sqlite3_file *file) { return REAL(file)->pMethods->xClose(REAL(file)); }

static int io_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 off) {
  return REAL(file)->pMethods->xRead(REAL(file), buf, n, off);
}

static int io_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 off) {
  int rc = fault((fault_file *)file, plan.write_rc);
  return rc ? rc : REAL(file)->pMethods->xWrite(REAL(file), buf, n, off);
}

static int io_truncate(sqlite3_file *file, sqlite3_int64 size) {
  int rc = fault((fault_file *)file, plan.truncate_rc);
  return rc ? rc : REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int io_sync(sqlite3_file *file, int flags) {
  int rc = fault((fault_file *)file, plan.sync_rc);
  return rc ? rc : REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int io_file_size(sqlite3_file *file, sqlite3_int64 *size) {
  return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int io_lock(sqlite3_file *file, int lock) {
  return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int io_unlock(sqlite3_file *file, int lock) {
  return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int io_check_reserved(sqlite3_file *file, int *out) {
  return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int io_file_control(sqlite3_file *file, int op, void *arg) {
  return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int io_sector_size(sqlite3_file *file) {
  return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int io_device(sqlite3_file *file) {
  return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

/* Version 2 and 3 methods exist on every file of the unix VFS; check anyway. */
static int io_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out) {
  const sqlite3_io_methods *m = REAL(file)->pMethods;
  return m->iVersion >= 2 ? m->xShmMap(REAL(file), page, size, extend, out) : SQLITE_IOERR;
}

static int io_shm_lock(sqlite3_file *file, int offset, int n, int flags) {
  const sqlite3_io_methods *m = REAL(file)->pMethods;
  return m->iVersion >= 2 ? m->xShmLock(REAL(file), offset, n, flags) : SQLITE_IOERR;
}

static void io_shm_barrier(sqlite3_file *file) {
  const sqlite3_io_methods *m = REAL(file)->pMethods;
  if (m->iVersion >= 2) m->xShmBarrier(REAL(file));
}

static int io_shm_unmap(sqlite3_file *file, int del) {
  const sqlite3_io_methods *m = REAL(file)->pMethods;
  return m->iVersion >= 2 ? m->xShmUnmap(REAL(file), del) : SQLITE_OK;
}

static int io_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out) {
  const sqlite3_io_methods *m = REAL(file)->pMethods;
  if (m->iVersion < 3) {
    *out = NULL;
    return SQLITE_OK;
  }
  return m->xFetch(REAL(file), off, n, out);
}

static int io_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p) {
  const sqlite3_io_methods *m = REAL(file)->pMethods;
  return m->iVersion >= 3 ? m->xUnfetch(REAL(file), off, p) : SQLITE_OK;
}

static const sqlite3_io_methods fault_io = {
    .iVersion = 3,
    .xClose = io_close,
    .xRead = io_read,
    .xWrite = io_write,
    .xTruncate = io_truncate,
    .xSync = io_sync,
    .xFileSize = io_file_size,
    .xLock = io_lock,
    .xUnlock = io_unlock,
    .xCheckReservedLock = io_check_reserved,
    .xFileControl = io_file_control,
    .xSectorSize = io_sector_size,
    .xDeviceCharacteristics = io_device,
    .xShmMap = io_shm_map,
    .xShmLock = io_shm_lock,
    .xShmBarrier = io_shm_barrier,
    .xShmUnmap = io_shm_unmap,
    .xFetch = io_fetch,
    .xUnfetch = io_unfetch,
};

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *out_flags) {
  (void)vfs;
  fault_file *f = (fault_file *)file;
  f->base.pMethods = NULL;
  f->real = (sqlite3_file *)(f + 1);
  memset(f->real, 0, (size_t)real_vfs->szOsFile);
  f->target = flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL |
                       SQLITE_OPEN_WAL);
  if (flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL)) {
    int rc = fault(f, plan.open_rc);
    if (rc) return rc;
  }
  int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  /* SQLite calls xClose whenever pMethods is set, even after a failed open. */
  if (f->real->pMethods) f->base.pMethods = &fault_io;
  return rc;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
  (void)vfs;
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *vfs_dlopen(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return real_vfs->xDlOpen(real_vfs, name);
}

static void vfs_dlerror(sqlite3_vfs *vfs, int n, char *msg) {
  (void)vfs;
  real_vfs->xDlError(real_vfs, n, msg);
}

static void (*vfs_dlsym(sqlite3_vfs *vfs, void *lib, const char *sym))(void) {
  (void)vfs;
  return real_vfs->xDlSym(real_vfs, lib, sym);
}

static void vfs_dlclose(sqlite3_vfs *vfs, void *lib) {
  (void)vfs;
  real_vfs->xDlClose(real_vfs, lib);
}

static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return real_vfs->xRandomness(real_vfs, n, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  return real_vfs->xSleep(real_vfs, us);
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out) {
  (void)vfs;
  return real_vfs->xCurrentTime(real_vfs, out);
}

static int vfs_last_error(sqlite3_vfs *vfs, int n, char *msg) {
  (void)vfs;
  return real_vfs->xGetLastError(real_vfs, n, msg);
}

static int vfs_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static int vfs_set_syscall(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr p) {
  (void)vfs;
  return real_vfs->xSetSystemCall(real_vfs, name, p);
}

static sqlite3_syscall_ptr vfs_get_syscall(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return real_vfs->xGetSystemCall(real_vfs, name);
}

static const char *vfs_next_syscall(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return real_vfs->xNextSystemCall(real_vfs, name);
}

static sqlite3_vfs fault_vfs = {
    .iVersion = 3,
    .zName = FAULTS_VFS,
    .xOpen = vfs_open,
    .xDelete = vfs_delete,
    .xAccess = vfs_access,
    .xFullPathname = vfs_full_pathname,
    .xDlOpen = vfs_dlopen,
    .xDlError = vfs_dlerror,
    .xDlSym = vfs_dlsym,
    .xDlClose = vfs_dlclose,
    .xRandomness = vfs_randomness,
    .xSleep = vfs_sleep,
    .xCurrentTime = vfs_current_time,
    .xGetLastError = vfs_last_error,
    .xCurrentTimeInt64 = vfs_current_time64,
    .xSetSystemCall = vfs_set_syscall,
    .xGetSystemCall = vfs_get_syscall,
    .xNextSystemCall = vfs_next_syscall,
};

int faults_vfs_register(void) {
  real_vfs = sqlite3_vfs_find(NULL);
  if (!real_vfs || real_vfs->iVersion < 3) return SQLITE_ERROR;
  fault_vfs.szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile;
  fault_vfs.mxPathname = real_vfs->mxPathname;
  return sqlite3_vfs_register(&fault_vfs, 0);
}
