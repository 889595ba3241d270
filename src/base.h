/*
 * base.h - what every file of the engine shares: status codes, the error
 * buffer convention and the one allocator.
 *
 * Conventions (the whole engine):
 *  - A fallible function returns CNN_OK or another cnn_status and, on failure,
 *    writes a one-line message into a caller-owned buffer `char err[CNN_ERRMAX]`.
 *    The message names what was wrong ("layer 3 (dense): units must be 1..1000000,
 *    got 0"); callers prefix it with their own name.
 *  - Kernels (pure arithmetic) return void and cannot fail.
 *  - All memory comes from cnn_malloc/cnn_calloc/cnn_realloc and goes back to
 *    cnn_free, so that a test can make any allocation fail on demand.
 *  - No globals besides the fault-injection counter of test builds and the
 *    CPU's features, read once (isa.c); no printing, no exit().
 */
#ifndef CNN_BASE_H
#define CNN_BASE_H

#include <stddef.h>
#include <stdint.h>

typedef enum cnn_status {
  CNN_OK = 0,
  CNN_ERROR = 1,       /* bad input or failed operation; err says why */
  CNN_NOMEM = 2,       /* an allocation failed */
  CNN_INTERRUPTED = 3, /* a callback asked to stop */
} cnn_status;

#define CNN_ERRMAX 256

/* Formats a message into err (may be NULL) and returns status. */
int cnn_error(char *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Fills err with "out of memory" and returns CNN_NOMEM. */
int cnn_nomem(char *err);

void *cnn_malloc(size_t n);
void *cnn_calloc(size_t count, size_t size);
void *cnn_realloc(void *p, size_t n);
void cnn_free(void *p);

/* Fault injection for tests: the n-th allocation from now on (1 = the next)
 * fails, and every later one succeeds again; 0 disables. Returns how many
 * allocations have been made since the last call. Only in the test builds of
 * the engine (CNN_FAULT_INJECTION: the cnn_*_testing libraries). */
uint64_t cnn_alloc_fail_at(uint64_t n);

/* Checked size arithmetic: returns 0 and stores a*b (a+b) in *out, or -1 on
 * overflow of size_t. */
int cnn_mul_size(size_t *out, size_t a, size_t b);
int cnn_add_size(size_t *out, size_t a, size_t b);

#endif
