/*
 * pool.c - the fixed thread pool of pool.h, on POSIX threads.
 *
 * A pool of n threads owns n-1 workers; the caller of cnn_pool_run is thread
 * 0 and works too. A run publishes (task, ctx, ntasks) under the mutex, bumps a
 * generation counter and wakes the workers; every thread then claims task
 * indices from one atomic counter until none is left, so a slow or late
 * thread simply runs fewer tasks. Which thread runs which task varies from run
 * to run; callers make results independent of that by giving every task its
 * own outputs (see gemm.c).
 *
 * Idle workers sleep on a condition variable: a pool never burns a core
 * between runs, so it can share the machine with a BLAS or another pool. They
 * do not spin before sleeping either: a wake-up costs about 7 us here, a
 * fraction of a percent of a training step, while a spinning worker on a
 * machine with more runnable threads than cores stalls everyone.
 *
 * Workers are started with every signal blocked, so signals aimed at the
 * process (SIGINT in a shell or Python) reach the host's own threads.
 */
#include "pool.h"

#include "base.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

typedef struct pool_worker {
  cnn_pool *pool; /* borrowed: the pool this worker belongs to */
  pthread_t thread;
  int id; /* 1..size-1; the caller of a run is 0 */
} pool_worker;

struct cnn_pool {
  int size;             /* threads taking part in a run, caller included */
  int started;          /* workers actually running (for a partial cleanup) */
  pool_worker *workers; /* owned: size-1 entries */
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers wait here for a new generation or quit */
  pthread_cond_t idle; /* the caller waits here for busy to reach 0 */
  /* The current run, written under mu before generation is bumped. */
  cnn_task_fn fn;
  void *ctx;
  int ntasks;
  unsigned generation;   /* under mu: bumped once per run */
  int quit;              /* under mu: workers exit */
  _Atomic int next;      /* next unclaimed task index */
  _Atomic unsigned busy; /* workers still inside the current run */
};

/* Claims and runs tasks of the current run until none is left. */
static void pool_drain(cnn_pool *pool, int thread) {
  cnn_task_fn fn = pool->fn;
  void *ctx = pool->ctx;
  int n = pool->ntasks;
  for (;;) {
    int i = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
    if (i >= n) break;
    fn(ctx, i, thread);
  }
}

static void *pool_main(void *arg) {
  pool_worker *w = arg;
  cnn_pool *pool = w->pool;
  unsigned seen = 0; /* the generation this worker has served */
  for (;;) {
    pthread_mutex_lock(&pool->mu);
    while (!pool->quit && pool->generation == seen) pthread_cond_wait(&pool->wake, &pool->mu);
    if (pool->quit) {
      pthread_mutex_unlock(&pool->mu);
      break;
    }
    seen = pool->generation;
    pthread_mutex_unlock(&pool->mu);

    pool_drain(pool, w->id);

    /* The last worker out wakes the caller if it went to sleep. Taking the
     * mutex orders the signal after the caller's check of busy. */
    if (atomic_fetch_sub_explicit(&pool->busy, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&pool->mu);
      pthread_cond_signal(&pool->idle);
      pthread_mutex_unlock(&pool->mu);
    }
  }
  return NULL;
}

/* Stops and joins the started workers, then frees everything. */
static void pool_destroy(cnn_pool *pool) {
  pthread_mutex_lock(&pool->mu);
  pool->quit = 1;
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mu);
  for (int i = 0; i < pool->started; i++) pthread_join(pool->workers[i].thread, NULL);
  pthread_cond_destroy(&pool->idle);
  pthread_cond_destroy(&pool->wake);
  pthread_mutex_destroy(&pool->mu);
  cnn_free(pool->workers);
  cnn_free(pool);
}

int cnn_pool_new(cnn_pool **out, int nthreads, char *err) {
  cnn_pool *pool = NULL;
  int rc = CNN_OK;
  *out = NULL;
  if (nthreads > CNN_POOL_MAX_THREADS)
    return cnn_error(err, CNN_ERROR, "threads must be at most %d, got %d", CNN_POOL_MAX_THREADS,
                     nthreads);
  if (nthreads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n < 1 ? 1 : n > CNN_POOL_MAX_THREADS ? CNN_POOL_MAX_THREADS : (int)n;
  }

  pool = cnn_calloc(1, sizeof *pool);
  if (!pool) return cnn_nomem(err);
  pool->size = nthreads;
  pool->workers = cnn_calloc((size_t)nthreads, sizeof *pool->workers);
  if (!pool->workers) {
    cnn_free(pool);
    return cnn_nomem(err);
  }
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->wake, NULL);
  pthread_cond_init(&pool->idle, NULL);

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < nthreads - 1; i++) {
    pool_worker *w = &pool->workers[i];
    w->pool = pool;
    w->id = i + 1;
    int e = pthread_create(&w->thread, NULL, pool_main, w);
    if (e != 0) {
      char why[128] = "unknown error";
      strerror_r(e, why, sizeof why);
      rc = cnn_error(err, CNN_ERROR, "cannot start thread %d of %d: %s", i + 2, nthreads, why);
      break;
    }
    pool->started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != CNN_OK) {
    pool_destroy(pool);
    return rc;
  }
  *out = pool;
  return CNN_OK;
}

void cnn_pool_free(cnn_pool *pool) {
  if (pool) pool_destroy(pool);
}

int cnn_pool_size(const cnn_pool *pool) { return pool ? pool->size : 1; }

void cnn_pool_run(cnn_pool *pool, cnn_task_fn task, void *ctx, int ntasks) {
  if (ntasks <= 0) return;
  if (!pool || pool->size == 1 || ntasks == 1) {
    for (int i = 0; i < ntasks; i++) task(ctx, i, 0);
    return;
  }
  pthread_mutex_lock(&pool->mu);
  pool->fn = task;
  pool->ctx = ctx;
  pool->ntasks = ntasks;
  atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
  atomic_store_explicit(&pool->busy, (unsigned)pool->size - 1, memory_order_relaxed);
  pool->generation++;
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mu);

  pool_drain(pool, 0);

  /* Every worker must leave the run before the next one may rewrite fn/ctx,
   * and the caller's ctx must outlive every task. */
  pthread_mutex_lock(&pool->mu);
  while (atomic_load(&pool->busy) != 0) pthread_cond_wait(&pool->idle, &pool->mu);
  pthread_mutex_unlock(&pool->mu);
}
