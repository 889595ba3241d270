/*
 * fuzz_expr.c - libFuzzer target for custom activation formulas (src/expr.c):
 * compile, then evaluate over awkward inputs (zeros of both signs, tiny and
 * huge values, infinities, NaN) and over more than one evaluation block.
 *
 * Beyond "no crash": the value is the same (bit for bit, NaN as NaN) whether
 * or not the derivative is computed and whether or not y aliases x, and the
 * compiled formula keeps its source text.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "expr.h"

#define N 1100 /* more than one block of the evaluator */

static int same(float a, float b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return memcmp(&a, &b, sizeof a) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CNN_ERRMAX];
  static float x[N], y[N], y2[N], d[N], inplace[N];
  char *src = malloc(size + 1);
  if (!src) return 0;
  memcpy(src, data, size);
  src[size] = 0;
  cnn_expr *e = NULL;
  int rc = cnn_expr_compile(&e, src, err);
  if (rc != CNN_OK) {
    if (e != NULL || err[0] == 0) abort();
    free(src);
    return 0;
  }
  if (strcmp(cnn_expr_source(e), src) != 0) abort();
  free(src);

  static const float special[] = {0.0f,     -0.0f,     1.0f,     -1.0f,   0.5f,   -0.5f,
                                  2.0f,     -2.0f,     1e-45f,   -1e-45f, 1e-30f, 1e30f,
                                  -1e30f,   3.4e38f,   -3.4e38f, 88.7f,   -88.7f, 1e-7f,
                                  INFINITY, -INFINITY, NAN,      3.0f,    -3.0f,  10.0f};
  size_t ns = sizeof special / sizeof special[0];
  for (size_t i = 0; i < N; i++) x[i] = i < ns ? special[i] : (float)((double)i - N / 2.0) / 37.0f;
  cnn_expr_eval(e, y, d, x, N);
  cnn_expr_eval(e, y2, NULL, x, N);
  memcpy(inplace, x, sizeof x);
  cnn_expr_eval(e, inplace, NULL, inplace, N);
  for (size_t i = 0; i < N; i++)
    if (!same(y[i], y2[i]) || !same(y[i], inplace[i])) abort();
  cnn_expr_free(e);
  return 0;
}
