/*
 * test_threads.c - the thread pool of src/threads.c: every task runs exactly once,
 * thread ids stay in range, tasks really run concurrently, many runs in a row
 * work, callers on several threads can share a pool, idle workers sleep, a
 * NULL pool runs in order on the caller, cnn_threads_for covers its range
 * once in tasks of its grain, and bad sizes, failed allocations
 * and threads that cannot start are reported.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "check.h"
#include "threads.h"

#define MAXTASKS 5000

static void sleep_us(long us) {
  struct timespec t = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&t, NULL);
}

typedef struct counts {
  _Atomic int runs[MAXTASKS];   /* times each task ran */
  _Atomic int thread[MAXTASKS]; /* the thread that ran it */
  _Atomic int bad_thread;       /* a thread id out of range was seen */
  int size;
} counts;

static void count_task(void *ctx, int task, int thread) {
  counts *c = ctx;
  atomic_fetch_add(&c->runs[task], 1);
  atomic_store(&c->thread[task], thread);
  if (thread < 0 || thread >= c->size) atomic_store(&c->bad_thread, 1);
}

static counts cnt; /* large: static, not on the stack */

static void test_each_task_once(int nthreads) {
  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  if (!CHECK_EQ_INT(cnn_threads_new(&pool, nthreads, err), CNN_OK)) return;
  CHECK_EQ_INT(cnn_threads_size(pool), nthreads);
  const int ntasks[] = {0, 1, 2, 3, nthreads, nthreads + 1, 97, MAXTASKS};
  for (size_t r = 0; r < sizeof ntasks / sizeof ntasks[0]; r++) {
    int n = ntasks[r];
    for (int i = 0; i < MAXTASKS; i++) atomic_store(&cnt.runs[i], 0);
    atomic_store(&cnt.bad_thread, 0);
    cnt.size = nthreads;
    cnn_threads_run(pool, count_task, &cnt, n);
    int wrong = 0;
    for (int i = 0; i < MAXTASKS; i++) wrong += atomic_load(&cnt.runs[i]) != (i < n ? 1 : 0);
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(atomic_load(&cnt.bad_thread), 0);
  }
  cnn_threads_free(pool);
}

/* Many short runs back to back: the sleep/wake hand-over must not lose or
 * repeat a run. */
typedef struct sum_ctx {
  _Atomic long long sum;
} sum_ctx;

static void sum_task(void *ctx, int task, int thread) {
  (void)thread;
  atomic_fetch_add(&((sum_ctx *)ctx)->sum, task + 1);
}

static void test_many_runs(int nthreads) {
  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  if (!CHECK_EQ_INT(cnn_threads_new(&pool, nthreads, err), CNN_OK)) return;
  sum_ctx s;
  atomic_store(&s.sum, 0);
  long long expect = 0;
  for (int r = 0; r < 20000; r++) {
    int n = 1 + r % 7;
    cnn_threads_run(pool, sum_task, &s, n);
    expect += (long long)n * (n + 1) / 2;
  }
  CHECK_EQ_INT(atomic_load(&s.sum), expect);
  /* A pause long enough for the workers to go to sleep, then more runs. */
  sleep_us(50000);
  for (int r = 0; r < 100; r++) {
    cnn_threads_run(pool, sum_task, &s, 5);
    expect += 15;
    if (r % 10 == 0) sleep_us(1000);
  }
  CHECK_EQ_INT(atomic_load(&s.sum), expect);
  cnn_threads_free(pool);
}

/* Several threads calling cnn_threads_run on one pool at once take turns. */
typedef struct caller {
  cnn_threads *pool;
  sum_ctx *sum;
} caller;

static void *caller_main(void *arg) {
  caller *c = arg;
  for (int r = 0; r < 3000; r++) cnn_threads_run(c->pool, sum_task, c->sum, 1 + r % 4);
  return NULL;
}

static void test_concurrent_callers(void) {
  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  if (!CHECK_EQ_INT(cnn_threads_new(&pool, 3, err), CNN_OK)) return;
  sum_ctx s;
  atomic_store(&s.sum, 0);
  caller c = {pool, &s};
  pthread_t th[3];
  int started = 0;
  for (int i = 0; i < 3; i++) started += pthread_create(&th[i], NULL, caller_main, &c) == 0;
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  CHECK_EQ_INT(started, 3);
  /* Per caller: 750 runs each of 1, 2, 3 and 4 tasks, task i adding i + 1. */
  CHECK_EQ_INT(atomic_load(&s.sum), 3LL * 750 * (1 + 3 + 6 + 10));
  cnn_threads_free(pool);
}

/* Two tasks on a two-thread pool each wait for the other to start: this
 * finishes only if they run at the same time on different threads. */
typedef struct meet_ctx {
  _Atomic int started;
  _Atomic int met;
  _Atomic int threads_seen; /* bit per thread id */
} meet_ctx;

static double now_sec(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void meet_task(void *ctx, int task, int thread) {
  meet_ctx *m = ctx;
  (void)task;
  atomic_fetch_or(&m->threads_seen, 1 << thread);
  atomic_fetch_add(&m->started, 1);
  double give_up = now_sec() + 10.0;
  while (atomic_load(&m->started) < 2 && now_sec() < give_up) sleep_us(100);
  if (atomic_load(&m->started) >= 2) atomic_fetch_add(&m->met, 1);
}

static void test_concurrency(void) {
  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  if (!CHECK_EQ_INT(cnn_threads_new(&pool, 2, err), CNN_OK)) return;
  for (int r = 0; r < 3; r++) {
    meet_ctx m;
    atomic_store(&m.started, 0);
    atomic_store(&m.met, 0);
    atomic_store(&m.threads_seen, 0);
    cnn_threads_run(pool, meet_task, &m, 2);
    CHECK_EQ_INT(atomic_load(&m.met), 2);
    CHECK_EQ_INT(atomic_load(&m.threads_seen), 3); /* threads 0 and 1 */
    sleep_us(30000); /* the next round starts with a sleeping worker */
  }
  cnn_threads_free(pool);
}

/* Between runs the workers sleep: after a short bounded poll, an idle pool
 * uses no CPU. */
static double cpu_sec(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void test_idle_sleeps(void) {
  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  /* As many threads as CPUs: the configuration that polls before sleeping. */
  if (!CHECK_EQ_INT(cnn_threads_new(&pool, 0, err), CNN_OK)) return;
  sum_ctx s;
  atomic_store(&s.sum, 0);
  cnn_threads_run(pool, sum_task, &s, 8);
  sleep_us(20000); /* past the poll */
  double c0 = cpu_sec();
  sleep_us(200000);
  double used = cpu_sec() - c0;
  if (!CHECK(used < 0.02)) fprintf(stderr, "idle pool used %.3f s of CPU in 0.2 s\n", used);
  CHECK_EQ_INT(atomic_load(&s.sum), 36);
  cnn_threads_free(pool);
}

/* A NULL pool (and a pool of one) runs the tasks in order on the caller. */
typedef struct order_ctx {
  int next;
  int in_order;
  int max_thread;
} order_ctx;

static void order_task(void *ctx, int task, int thread) {
  order_ctx *o = ctx;
  if (task != o->next) o->in_order = 0;
  o->next = task + 1;
  if (thread > o->max_thread) o->max_thread = thread;
}

static void test_serial(void) {
  CHECK_EQ_INT(cnn_threads_size(NULL), 1);
  order_ctx o = {0, 1, 0};
  cnn_threads_run(NULL, order_task, &o, 100);
  CHECK_EQ_INT(o.next, 100);
  CHECK_EQ_INT(o.in_order, 1);
  CHECK_EQ_INT(o.max_thread, 0);
  cnn_threads_run(NULL, order_task, &o, 0); /* no task, no call */
  CHECK_EQ_INT(o.next, 100);
  cnn_threads_free(NULL);

  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  if (!CHECK_EQ_INT(cnn_threads_new(&pool, 1, err), CNN_OK)) return;
  CHECK_EQ_INT(cnn_threads_size(pool), 1);
  order_ctx p = {0, 1, 0};
  cnn_threads_run(pool, order_task, &p, 50);
  CHECK_EQ_INT(p.next, 50);
  CHECK_EQ_INT(p.in_order, 1);
  CHECK_EQ_INT(p.max_thread, 0);
  cnn_threads_free(pool);
}

/* cnn_threads_for: ranges that cover [0, n) once, `grain` items each (the
 * last shorter); one call over everything with one thread or one task. */
typedef struct range_ctx {
  _Atomic int hits[MAXTASKS]; /* times each item was covered */
  _Atomic int calls, bad;     /* calls; a range of the wrong length or thread */
  size_t n, grain;
  int size;
} range_ctx;

static void range_fn(void *ctx, size_t lo, size_t hi, int thread) {
  range_ctx *r = ctx;
  atomic_fetch_add(&r->calls, 1);
  int whole = lo == 0 && hi == r->n;
  size_t want = r->n - lo < r->grain ? r->n - lo : r->grain;
  if (lo >= hi || hi > r->n || (!whole && (lo % r->grain || hi - lo != want)) || thread < 0 ||
      thread >= r->size)
    atomic_store(&r->bad, 1);
  for (size_t i = lo; i < hi && i < MAXTASKS; i++) atomic_fetch_add(&r->hits[i], 1);
}

static range_ctx rng; /* large: static, not on the stack */

static void test_for(int nthreads) {
  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  if (nthreads && !CHECK_EQ_INT(cnn_threads_new(&pool, nthreads, err), CNN_OK)) return;
  static const size_t cases[][2] = {{0, 7},   {1, 1},  {5, 0},       {10, 3},      {10, 10},
                                    {10, 11}, {97, 8}, {4096, 1024}, {4097, 1024}, {5000, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t n = cases[c][0], grain = cases[c][1];
    for (int i = 0; i < MAXTASKS; i++) atomic_store(&rng.hits[i], 0);
    atomic_store(&rng.calls, 0);
    atomic_store(&rng.bad, 0);
    rng.n = n, rng.grain = grain ? grain : 1, rng.size = nthreads ? nthreads : 1;
    cnn_threads_for(pool, n, grain, range_fn, &rng);
    int wrong = 0;
    for (size_t i = 0; i < MAXTASKS; i++) wrong += atomic_load(&rng.hits[i]) != (i < n ? 1 : 0);
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(atomic_load(&rng.bad), 0);
    size_t tasks = n ? (n - 1) / rng.grain + 1 : 0;
    int serial = nthreads < 2 || tasks < 2;
    CHECK_EQ_INT(atomic_load(&rng.calls), (int)(serial ? n > 0 : tasks));
  }
  cnn_threads_free(pool);
}

static void test_sizes_and_errors(void) {
  cnn_threads *pool = NULL;
  char err[CNN_ERRMAX] = "";
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (CHECK_EQ_INT(cnn_threads_new(&pool, 0, err), CNN_OK)) {
    CHECK_EQ_INT(cnn_threads_size(pool), ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
    cnn_threads_free(pool);
  }
  if (CHECK_EQ_INT(cnn_threads_new(&pool, -3, err), CNN_OK)) {
    CHECK_EQ_INT(cnn_threads_size(pool), ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
    cnn_threads_free(pool);
  }

  pool = (cnn_threads *)&pool; /* must be overwritten with NULL on failure */
  CHECK_EQ_INT(cnn_threads_new(&pool, CNN_THREADS_MAX + 1, err), CNN_ERROR);
  CHECK_STR(err, "threads must be at most 256, got 257");
  CHECK(pool == NULL);

  /* Each of the two allocations failing in turn. */
  for (int n = 1; n <= 2; n++) {
    pool = (cnn_threads *)&pool;
    err[0] = 0;
    cnn_alloc_fail_at((uint64_t)n);
    int rc = cnn_threads_new(&pool, 3, err);
    cnn_alloc_fail_at(0);
    CHECK_EQ_INT(rc, CNN_NOMEM);
    CHECK_STR(err, "out of memory");
    CHECK(pool == NULL);
  }
  /* A pool of many more threads than cores still works. */
  if (CHECK_EQ_INT(cnn_threads_new(&pool, 16, err), CNN_OK)) {
    CHECK_EQ_INT(cnn_threads_size(pool), 16);
    cnn_threads_free(pool);
  }
}

/* pthread_create failing: in a child process whose address space is capped
 * just above what it uses, no 8 MB thread stack can be mapped. The child
 * reports the status and message through its exit code. Not under
 * AddressSanitizer, whose allocator needs room of its own. */
#if defined(__SANITIZE_ADDRESS__)
#define CAN_CAP_MEMORY 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAN_CAP_MEMORY 0
#endif
#endif
#ifndef CAN_CAP_MEMORY
#define CAN_CAP_MEMORY 1
#endif

static void test_thread_start_failure(void) {
  if (!CAN_CAP_MEMORY) return;
  fflush(NULL);
  pid_t pid = fork();
  if (!CHECK(pid >= 0)) return;
  if (pid == 0) {
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) _exit(10);
    fclose(f);
    struct rlimit lim = {(rlim_t)(pages * page + (4 << 20)), (rlim_t)(pages * page + (4 << 20))};
    if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(11);
    cnn_threads *pool = (cnn_threads *)&pool;
    char err[CNN_ERRMAX] = "";
    int rc = cnn_threads_new(&pool, 4, err);
    if (rc != CNN_ERROR) _exit(12);
    if (pool != NULL) _exit(13);
    if (strncmp(err, "cannot start thread 2 of 4: ", 28) != 0) _exit(14);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK_EQ_INT(WEXITSTATUS(status), 0);
}

int main(void) {
  test_thread_start_failure(); /* first: glibc reuses the stacks of joined threads */
  test_serial();
  test_sizes_and_errors();
  for (int n = 1; n <= 5; n++) test_each_task_once(n);
  test_each_task_once(16);
  test_for(0); /* the NULL pool */
  for (int n = 1; n <= 3; n++) test_for(n);
  test_many_runs(2);
  test_many_runs(4);
  test_concurrency();
  test_concurrent_callers();
  test_idle_sleeps();
  return check_done();
}
