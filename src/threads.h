/*
 * threads.h - a small fixed thread pool. The calling thread takes part in every
 * run, so a pool of n threads starts n-1 workers. Workers sleep between runs
 * (no spinning against a BLAS or another pool); in a pool with no more
 * threads than CPUs they first poll for the next run for at most 0.2 ms (see
 * threads.c). Tasks must write disjoint outputs, so results never depend on the
 * number of threads.
 */
#ifndef CNN_THREADS_H
#define CNN_THREADS_H

#include <stddef.h>

#include "isa.h"

typedef struct cnn_threads cnn_threads;

/* Runs task(ctx, i, thread) for i in 0..ntasks-1; `thread` is 0..size-1 and
 * names the thread running the task (for per-thread scratch). */
typedef void (*cnn_task_fn)(void *ctx, int task, int thread);

#define CNN_THREADS_MAX 256

/* nthreads <= 0 means the number of online CPUs. The pool's kernels use
 * cnn_isa_default()'s instruction set. Fails with CNN_ERROR for more than
 * CNN_THREADS_MAX, a thread that cannot start or a bad $CNN_ISA, CNN_NOMEM
 * when out of memory; *out is then NULL. */
int cnn_threads_new(cnn_threads **out, int nthreads, char *err);
void cnn_threads_free(cnn_threads *pool);
/* Threads taking part in a run (1 for a NULL pool). */
int cnn_threads_size(const cnn_threads *pool);
/* The instruction set of the kernels that run on this pool; a NULL pool
 * uses cnn_isa_default()'s (the CPU's best when $CNN_ISA is bad). */
cnn_isa cnn_threads_isa(const cnn_threads *pool);
/* Sets it (callers check it with cnn_isa_parse first). */
void cnn_threads_set_isa(cnn_threads *pool, cnn_isa isa);
/* Whether the matrix products on this pool run in mixed precision (bf16
 * operands, fp32 sums: cnn_gemm_bf16 in gemm.h); off by default and for a
 * NULL pool. */
int cnn_threads_bf16(const cnn_threads *pool);
void cnn_threads_set_bf16(cnn_threads *pool, int on);
/* Blocks until every task has run. A NULL pool runs the tasks in order on the
 * calling thread. Not reentrant: a task must not call cnn_threads_run. Runs
 * from several threads on one pool are serialised. */
void cnn_threads_run(cnn_threads *pool, cnn_task_fn task, void *ctx, int ntasks);

/* Runs fn(ctx, lo, hi, thread) over disjoint ranges covering [0, n): tasks of
 * `grain` items (the last one shorter), or a single call over all of [0, n)
 * when the pool has one thread or there is one task. So fn must compute each
 * item alike whatever range it comes in. */
typedef void (*cnn_range_fn)(void *ctx, size_t lo, size_t hi, int thread);
void cnn_threads_for(cnn_threads *pool, size_t n, size_t grain, cnn_range_fn fn, void *ctx);

#endif
