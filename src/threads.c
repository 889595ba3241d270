/*
 * threads.c - the fixed thread pool of threads.h, on POSIX threads.
 *
 * A pool of n threads owns n-1 workers; the caller of cnn_threads_run is thread
 * 0 and works too. A run publishes (task, ctx, ntasks) under the mutex, bumps a
 * generation counter and wakes the workers; every thread then claims task
 * indices from one atomic counter until none is left, so a slow or late
 * thread simply runs fewer tasks. Which thread runs which task varies from run
 * to run; callers make results independent of that by giving every task its
 * own outputs (see gemm.c).
 *
 * Idle workers sleep on a condition variable, so a pool never burns a core
 * between bursts of work and can share the machine with a BLAS or another
 * pool. Waking a sleeping thread is slow on virtual machines, though: on the
 * 2-vCPU KVM guest this was tuned on, a run that had to wake its worker cost
 * 10 to 130 us (depending on the host's load), and training issues dozens of
 * runs per step separated by short serial stretches. So a worker polls for
 * the next run for at most 0.2 ms before it sleeps, and the caller polls for
 * the workers to finish for at most 1 ms before it sleeps: back-to-back runs
 * then cost under 1 us (a 32x10x5000 GEMM on 2 threads: 119 -> 68 us).
 * Both polls are bounded, yield the CPU between reads after the first few,
 * and are skipped altogether by a pool with more threads than CPUs.
 *
 * Runs from different threads on one pool take turns (a run mutex); a task
 * that calls cnn_threads_run on its own pool would deadlock, as threads.h forbids.
 * Workers are started with every signal blocked, so signals aimed at the
 * process (SIGINT in a shell or Python) reach the host's own threads.
 */
#include "threads.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_RELAX() _mm_pause()
#else
#define POOL_RELAX() ((void)0)
#endif

/* Bounded polls before sleeping (see the top of the file): a worker after a
 * run, the caller while workers finish theirs. */
#define POOL_WORKER_SPIN_NS 200000
#define POOL_CALLER_SPIN_NS 1000000

typedef struct pool_worker {
  cnn_threads *pool; /* borrowed: the pool this worker belongs to */
  pthread_t thread;
  int id; /* 1..size-1; the caller of a run is 0 */
} pool_worker;

struct cnn_threads {
  int size;               /* threads taking part in a run, caller included */
  int spin;               /* poll before sleeping: no more threads than CPUs */
  int started;            /* workers actually running (for a partial cleanup) */
  cnn_isa isa;            /* the kernels' instruction set */
  int bf16;               /* matrix products in mixed precision */
  pool_worker *workers;   /* owned: size-1 entries */
  pthread_mutex_t run_mu; /* held through a run: concurrent callers take turns */
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers wait here for a new generation or quit */
  pthread_cond_t idle; /* the caller waits here for busy to reach 0 */
  /* The current run, written under mu before generation is bumped. */
  cnn_task_fn fn;
  void *ctx;
  int ntasks;
  _Atomic unsigned generation; /* written under mu: bumped once per run */
  int quit;                    /* under mu: workers exit */
  _Atomic int next;            /* next unclaimed task index */
  _Atomic unsigned busy;       /* workers still inside the current run */
};

static int64_t pool_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Polls until (*word == value) == equal, for at most ns nanoseconds;
 * returns whether that happened. After a few pauses it yields between
 * reads, so that on a busy machine the poll gives its core away. */
static int pool_spin(_Atomic unsigned *word, unsigned value, int equal, int64_t ns) {
  if (ns <= 0) return 0;
  int64_t end = pool_now_ns() + ns;
  for (unsigned s = 1;; s++) {
    if ((atomic_load_explicit(word, memory_order_acquire) == value) == equal) return 1;
    if (s < 64)
      POOL_RELAX();
    else
      sched_yield();
    if ((s & 15) == 0 && pool_now_ns() > end) return 0;
  }
}

/* Claims and runs tasks of the current run until none is left. */
static void pool_drain(cnn_threads *pool, int thread) {
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
  cnn_threads *pool = w->pool;
  unsigned seen = 0; /* the generation this worker has served */
  for (;;) {
    if (pool->spin) pool_spin(&pool->generation, seen, 0, POOL_WORKER_SPIN_NS);
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
static void pool_destroy(cnn_threads *pool) {
  pthread_mutex_lock(&pool->mu);
  pool->quit = 1;
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mu);
  for (int i = 0; i < pool->started; i++) pthread_join(pool->workers[i].thread, NULL);
  pthread_cond_destroy(&pool->idle);
  pthread_cond_destroy(&pool->wake);
  pthread_mutex_destroy(&pool->mu);
  pthread_mutex_destroy(&pool->run_mu);
  cnn_free(pool->workers);
  cnn_free(pool);
}

int cnn_threads_new(cnn_threads **out, int nthreads, char *err) {
  cnn_threads *pool = NULL;
  int rc = CNN_OK;
  *out = NULL;
  if (nthreads > CNN_THREADS_MAX)
    return cnn_error(err, CNN_ERROR, "threads must be at most %d, got %d", CNN_THREADS_MAX,
                     nthreads);
  cnn_isa isa;
  if ((rc = cnn_isa_default(&isa, err))) return rc;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (nthreads <= 0) nthreads = ncpu < 1 ? 1 : ncpu > CNN_THREADS_MAX ? CNN_THREADS_MAX : (int)ncpu;

  pool = cnn_calloc(1, sizeof *pool);
  if (!pool) return cnn_nomem(err);
  pool->size = nthreads;
  pool->isa = isa;
  pool->spin = nthreads <= ncpu;
  pool->workers = cnn_calloc((size_t)nthreads, sizeof *pool->workers);
  if (!pool->workers) {
    cnn_free(pool);
    return cnn_nomem(err);
  }
  pthread_mutex_init(&pool->run_mu, NULL);
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

void cnn_threads_free(cnn_threads *pool) {
  if (pool) pool_destroy(pool);
}

int cnn_threads_size(const cnn_threads *pool) { return pool ? pool->size : 1; }

cnn_isa cnn_threads_isa(const cnn_threads *pool) {
  cnn_isa isa;
  if (pool) return pool->isa;
  return cnn_isa_default(&isa, NULL) == CNN_OK ? isa : cnn_isa_cpu();
}

void cnn_threads_set_isa(cnn_threads *pool, cnn_isa isa) {
  if (pool) pool->isa = isa;
}

int cnn_threads_bf16(const cnn_threads *pool) { return pool ? pool->bf16 : 0; }

void cnn_threads_set_bf16(cnn_threads *pool, int on) {
  if (pool) pool->bf16 = on != 0;
}

void cnn_threads_run(cnn_threads *pool, cnn_task_fn task, void *ctx, int ntasks) {
  if (ntasks <= 0) return;
  if (!pool || pool->size == 1 || ntasks == 1) {
    for (int i = 0; i < ntasks; i++) task(ctx, i, 0);
    return;
  }
  pthread_mutex_lock(&pool->run_mu);
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
  if (!pool->spin || !pool_spin(&pool->busy, 0, 1, POOL_CALLER_SPIN_NS)) {
    pthread_mutex_lock(&pool->mu);
    while (atomic_load(&pool->busy) != 0) pthread_cond_wait(&pool->idle, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
  }
  pthread_mutex_unlock(&pool->run_mu);
}

typedef struct range_job {
  cnn_range_fn fn;
  void *ctx;
  size_t n, grain;
} range_job;

static void range_task(void *ctx, int task, int thread) {
  const range_job *r = ctx;
  size_t lo = (size_t)task * r->grain, hi = r->n - lo < r->grain ? r->n : lo + r->grain;
  r->fn(r->ctx, lo, hi, thread);
}

void cnn_threads_for(cnn_threads *pool, size_t n, size_t grain, cnn_range_fn fn, void *ctx) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  size_t tasks = (n - 1) / grain + 1;
  if (cnn_threads_size(pool) < 2 || tasks < 2 || tasks > INT_MAX) {
    fn(ctx, 0, n, 0);
    return;
  }
  range_job r = {fn, ctx, n, grain};
  cnn_threads_run(pool, range_task, &r, (int)tasks);
}
