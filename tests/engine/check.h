/*
 * check.h - the assertions of the engine's C tests (one test executable each).
 *
 *   CHECK(cond)                 cond is true
 *   CHECK_EQ_INT(a, b)          a == b as long long
 *   CHECK_NEAR(a, b, tol)       |a - b| <= tol as double (NaN never passes)
 *   CHECK_STR(a, b)             equal C strings (NULL equals only NULL)
 *   CHECK_CONTAINS(hay, needle) needle occurs in hay (NULL hay fails)
 *   return check_done();        from main: prints a summary, 0 if all passed
 *
 * A failed check prints "file:line: <the expression> (<the values>)" to stderr
 * and the test carries on, so one run shows every failure. Each macro is an
 * expression worth 1 on success and 0 on failure, so a test can stop early:
 * `if (!CHECK(p != NULL)) return;`. Arguments are evaluated exactly once.
 *
 * The counters are static to the one translation unit of a test executable;
 * everything else is static inline, so unused helpers cause no warnings.
 */
#ifndef CNN_CHECK_H
#define CNN_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "threads.h"

static int check_run_;    /* checks evaluated */
static int check_failed_; /* checks that failed */

static inline int check_result_(int ok) {
  check_run_++;
  if (!ok) check_failed_++;
  return ok;
}

static inline int check_true_(int ok, const char *file, int line, const char *expr) {
  if (!ok) fprintf(stderr, "%s:%d: CHECK(%s) failed\n", file, line, expr);
  return check_result_(ok);
}

static inline int check_eq_int_(long long a, long long b, const char *file, int line,
                                const char *ea, const char *eb) {
  int ok = a == b;
  if (!ok)
    fprintf(stderr, "%s:%d: CHECK_EQ_INT(%s, %s) failed: %lld != %lld\n", file, line, ea, eb, a, b);
  return check_result_(ok);
}

static inline int check_near_(double a, double b, double tol, const char *file, int line,
                              const char *ea, const char *eb) {
  int ok = fabs(a - b) <= tol; /* false for NaN */
  if (!ok)
    fprintf(stderr, "%s:%d: CHECK_NEAR(%s, %s) failed: %.9g vs %.9g, difference %.3g > %.3g\n",
            file, line, ea, eb, a, b, fabs(a - b), tol);
  return check_result_(ok);
}

static inline int check_str_(const char *a, const char *b, const char *file, int line,
                             const char *ea, const char *eb) {
  int ok = (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
  if (!ok)
    fprintf(stderr, "%s:%d: CHECK_STR(%s, %s) failed:\n  got      %s%s%s\n  expected %s%s%s\n",
            file, line, ea, eb, a ? "\"" : "", a ? a : "NULL", a ? "\"" : "", b ? "\"" : "",
            b ? b : "NULL", b ? "\"" : "");
  return check_result_(ok);
}

static inline int check_contains_(const char *hay, const char *needle, const char *file, int line,
                                  const char *eh, const char *en) {
  int ok = hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
  if (!ok)
    fprintf(stderr, "%s:%d: CHECK_CONTAINS(%s, %s) failed: \"%s\" does not contain \"%s\"\n", file,
            line, eh, en, hay ? hay : "(NULL)", needle ? needle : "(NULL)");
  return check_result_(ok);
}

#define CHECK(cond) check_true_((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(a, b) check_eq_int_((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_NEAR(a, b, tol) \
  check_near_((double)(a), (double)(b), (double)(tol), __FILE__, __LINE__, #a, #b)
#define CHECK_STR(a, b) check_str_((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_CONTAINS(hay, needle) \
  check_contains_((hay), (needle), __FILE__, __LINE__, #hay, #needle)

/* Prints "<n> checks, <m> failed" and returns the exit code for main. A test
 * that ran no check at all fails too: it cannot have tested anything. */
static inline int check_done(void) {
  int bad = check_failed_ != 0 || check_run_ == 0;
  fprintf(bad ? stderr : stdout, "%d checks, %d failed\n", check_run_, check_failed_);
  return bad ? 1 : 0;
}

/* Whether this CPU runs the kernels of `isa`; prints that it skips them when
 * not, so a log says which instruction sets a run could not check. */
static inline int check_isa(cnn_isa isa) {
  cnn_isa got;
  char err[256];
  if (cnn_isa_parse(cnn_isa_name(isa), &got, err) == 0) return 1;
  printf("isa %s: not supported by this CPU, skipped (%s)\n", cnn_isa_name(isa), err);
  return 0;
}

/* A pool of n threads running the kernels of `isa`, or NULL (a failed
 * check) when it cannot start. */
static inline cnn_threads *check_pool(int n, cnn_isa isa) {
  cnn_threads *pool = NULL;
  char err[256];
  if (!check_true_(cnn_threads_new(&pool, n, err) == 0, __FILE__, __LINE__, "cnn_threads_new"))
    return NULL;
  cnn_threads_set_isa(pool, isa);
  return pool;
}

/* Random test data: xorshift64, the same sequence on every machine. A test
 * that wants its own sequence calls check_seed first. */
static uint64_t check_rng_state_ = 0x9e3779b97f4a7c15ull;
static inline void check_seed(uint64_t seed) { check_rng_state_ = seed ? seed : 1; }
static inline uint64_t check_rng(void) {
  check_rng_state_ ^= check_rng_state_ << 13;
  check_rng_state_ ^= check_rng_state_ >> 7;
  check_rng_state_ ^= check_rng_state_ << 17;
  return check_rng_state_;
}
/* An integer in [0, n). */
static inline int check_rng_int(int n) { return (int)(check_rng() % (uint64_t)n); }
/* A float in [-1, 1). */
static inline float check_rng_float(void) {
  return (float)((check_rng() >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static inline void check_fill(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = check_rng_float();
}

#endif
