/*
 * base.c - error formatting and the one allocator of the engine.
 *
 * Every allocation of src/ and ext/ (engine objects) goes through cnn_malloc so
 * that the out-of-memory tests can fail the n-th one. The counter is the only
 * mutable static of the engine; it is atomic so threads may allocate.
 *
 * Blocks of 4 MB and more (a dense layer's kernel, its gradient and the
 * optimizer's moments, a dataset's images) start on a 2 MB boundary and ask
 * Linux for transparent huge pages. Their loops stream through several such
 * arrays at once, and with 4 KB pages each stream walks the page tables
 * every 4 KB: with huge pages Adam's step over the notebook's 2.9 million
 * weights ran 25% faster on two threads, and the first dense layer's
 * forward 5-10% (a Zen 4). Where the kernel's setting is "never" the advice
 * is ignored and nothing else changes.
 */
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE besides POSIX */
#include "base.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int cnn_error(char *err, int status, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CNN_ERRMAX, fmt, ap);
    va_end(ap);
  }
  return status;
}

int cnn_nomem(char *err) { return cnn_error(err, CNN_NOMEM, "out of memory"); }

#ifdef CNN_FAULT_INJECTION
/* Test builds only: cnn.so pays no atomic per allocation for this. */
static _Atomic uint64_t alloc_count; /* allocations since the last cnn_alloc_fail_at */
static _Atomic uint64_t alloc_fail;  /* which one fails; 0 = none */

uint64_t cnn_alloc_fail_at(uint64_t n) {
  uint64_t made = atomic_exchange(&alloc_count, 0);
  atomic_store(&alloc_fail, n);
  return made;
}

static int alloc_should_fail(void) {
  uint64_t k = atomic_fetch_add(&alloc_count, 1) + 1;
  uint64_t f = atomic_load(&alloc_fail);
  return f != 0 && k == f;
}
#else
static int alloc_should_fail(void) { return 0; }
#endif

#define BIG_BLOCK ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

/* n >= BIG_BLOCK bytes on a huge-page boundary, advised to use them; free()
 * takes it back like any other block. */
static void *alloc_big(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, HUGE_PAGE, n)) return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, n & ~(HUGE_PAGE - 1), MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
  return p;
}

void *cnn_malloc(size_t n) {
  if (alloc_should_fail()) return NULL;
  if (n >= BIG_BLOCK) return alloc_big(n);
  return malloc(n ? n : 1);
}

void *cnn_calloc(size_t count, size_t size) {
  if (alloc_should_fail()) return NULL;
  if (count == 0 || size == 0) count = size = 1;
  if (count > SIZE_MAX / size) return NULL; /* count * size does not fit */
  if (count * size >= BIG_BLOCK) {
    void *p = alloc_big(count * size);
    if (p) memset(p, 0, count * size);
    return p;
  }
  return calloc(count, size);
}

void *cnn_realloc(void *p, size_t n) {
  if (alloc_should_fail()) return NULL;
  return realloc(p, n ? n : 1);
}

void cnn_free(void *p) { free(p); }

int cnn_mul_size(size_t *out, size_t a, size_t b) {
  if (a != 0 && b > SIZE_MAX / a) return -1;
  *out = a * b;
  return 0;
}

int cnn_add_size(size_t *out, size_t a, size_t b) {
  if (b > SIZE_MAX - a) return -1;
  *out = a + b;
  return 0;
}
