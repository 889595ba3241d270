/*
 * pool.h - a small fixed thread pool. The calling thread takes part in every
 * run, so a pool of n threads starts n-1 workers. Workers sleep between runs
 * (no spinning against a BLAS or another pool); in a pool with no more
 * threads than CPUs they first poll for the next run for at most 0.2 ms (see
 * pool.c). Tasks must write disjoint outputs, so results never depend on the
 * number of threads.
 */
#ifndef CNN_POOL_H
#define CNN_POOL_H

typedef struct cnn_pool cnn_pool;

/* Runs task(ctx, i, thread) for i in 0..ntasks-1; `thread` is 0..size-1 and
 * names the thread running the task (for per-thread scratch). */
typedef void (*cnn_task_fn)(void *ctx, int task, int thread);

#define CNN_POOL_MAX_THREADS 256

/* nthreads <= 0 means the number of online CPUs. Fails with CNN_ERROR for
 * more than CNN_POOL_MAX_THREADS or a thread that cannot start, CNN_NOMEM
 * when out of memory; *out is then NULL. */
int cnn_pool_new(cnn_pool **out, int nthreads, char *err);
void cnn_pool_free(cnn_pool *pool);
/* Threads taking part in a run (1 for a NULL pool). */
int cnn_pool_size(const cnn_pool *pool);
/* Blocks until every task has run. A NULL pool runs the tasks in order on the
 * calling thread. Not reentrant: a task must not call cnn_pool_run. Runs
 * from several threads on one pool are serialised. */
void cnn_pool_run(cnn_pool *pool, cnn_task_fn task, void *ctx, int ntasks);

#endif
