/*
 * base.c - error formatting and the one allocator of the engine.
 *
 * Every allocation of src/ and ext/ (engine objects) goes through cnn_malloc so
 * that the out-of-memory tests can fail the n-th one. The counter is the only
 * mutable static of the engine; it is atomic so threads may allocate.
 */
#include "base.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

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

void *cnn_malloc(size_t n) {
  if (alloc_should_fail()) return NULL;
  return malloc(n ? n : 1);
}

void *cnn_calloc(size_t count, size_t size) {
  if (alloc_should_fail()) return NULL;
  if (count == 0 || size == 0) count = size = 1;
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
