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

typedef struct cnn_threads cnn_threads;

/* Runs task(ctx, i, thread) for i in 0..ntasks-1; `thread` is 0..size-1 and
 * names the thread running the task (for per-thread scratch). */
typedef void (*cnn_task_fn)(void *ctx, int task, int thread);

#define CNN_THREADS_MAX 256

/* nthreads <= 0 means the number of online CPUs. Fails with CNN_ERROR for
 * more than CNN_THREADS_MAX or a thread that cannot start, CNN_NOMEM
 * when out of memory; *out is then NULL. */
int cnn_threads_new(cnn_threads **out, int nthreads, char *err);
void cnn_threads_free(cnn_threads *pool);
/* Threads taking part in a run (1 for a NULL pool). */
int cnn_threads_size(const cnn_threads *pool);
/* Blocks until every task has run. A NULL pool runs the tasks in order on the
 * calling thread. Not reentrant: a task must not call cnn_threads_run. Runs
 * from several threads on one pool are serialised. */
void cnn_threads_run(cnn_threads *pool, cnn_task_fn task, void *ctx, int ntasks);

#endif
