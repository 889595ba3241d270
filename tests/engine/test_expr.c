/*
 * test_expr.c - custom activation formulas: values and derivatives against
 * closed forms in double, those closed-form derivatives against central
 * differences, the engine's own derivative against differences of its own
 * values, precedence and associativity, the edge conventions of expr.h
 * (ties, abs at 0, locally constant arguments), block handling and aliasing,
 * and every compile error with its exact text.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "check.h"
#include "expr.h"

static cnn_expr *compile_ok(const char *src) {
  char err[CNN_ERRMAX] = "";
  cnn_expr *e = NULL;
  if (!CHECK_EQ_INT(cnn_expr_compile(&e, src, err), CNN_OK))
    fprintf(stderr, "  formula: %s\n  error: %s\n", src, err);
  return e;
}

static void compile_err(const char *src, const char *want) {
  char err[CNN_ERRMAX] = "";
  cnn_expr *e = (cnn_expr *)&e; /* must be reset to NULL */
  CHECK_EQ_INT(cnn_expr_compile(&e, src, err), CNN_ERROR);
  if (!CHECK(e == NULL) && e != (cnn_expr *)&e) cnn_expr_free(e); /* compiled after all */
  if (!CHECK_STR(err, want)) fprintf(stderr, "  formula: %s\n", src ? src : "(NULL)");
}

/* f(x) and f'(x) of one formula at one point, through the array API. */
static void eval1(const cnn_expr *e, float x, float *y, float *d) { cnn_expr_eval(e, y, d, &x, 1); }

/* |got - want| small relative to the size of want (float arithmetic). */
static int close_enough(double got, double want, double rel) {
  return fabs(got - want) <= rel * (1.0 + fabs(want));
}

/* ---- closed forms in double ---- */

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }
static double f_swish(double x) { return x * sig(x); }
static double d_swish(double x) { return sig(x) + x * sig(x) * (1.0 - sig(x)); }
static double f_leaky(double x) { return x >= 0 ? x : 0.1 * x; }
static double d_leaky(double x) { return x >= 0 ? 1.0 : 0.1; }
static double f_softsign(double x) { return x / (1.0 + fabs(x)); }
static double d_softsign(double x) { return 1.0 / ((1.0 + fabs(x)) * (1.0 + fabs(x))); }
static double f_sq(double x) { return x * x; }
static double d_sq(double x) { return 2.0 * x; }
static double f_negsq(double x) { return -x * x; }
static double d_negsq(double x) { return -2.0 * x; }
static double f_exp2(double x) { return pow(2.0, x); }
static double d_exp2(double x) { return pow(2.0, x) * log(2.0); }
static double f_explog(double x) { return exp(-x) * log(1.0 + x * x); }
static double d_explog(double x) {
  return -exp(-x) * log(1.0 + x * x) + exp(-x) * 2.0 * x / (1.0 + x * x);
}
static double f_hyp(double x) { return sqrt(x * x + 1.0); }
static double d_hyp(double x) { return x / sqrt(x * x + 1.0); }
static double f_tanh(double x) { return tanh(x); }
static double d_tanh(double x) { return 1.0 - tanh(x) * tanh(x); }
static double f_min0(double x) { return x <= 0 ? x : 0.0; }
static double d_min0(double x) { return x <= 0 ? 1.0 : 0.0; }
static double f_19(double x) { return (void)x, 19.0; }
static double d_19(double x) { return (void)x, 0.0; }
static double f_poly(double x) { return 3.0 * x * x * x - 2.0 * x + 0.5; }
static double d_poly(double x) { return 9.0 * x * x - 2.0; }
static double f_recip(double x) { return 1.0 / (1.0 + x * x); }
static double d_recip(double x) { return -2.0 * x / ((1.0 + x * x) * (1.0 + x * x)); }
static double f_gelu(double x) {
  return 0.5 * x * (1.0 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)));
}
static double d_gelu(double x) {
  double u = 0.7978845608 * (x + 0.044715 * x * x * x), t = tanh(u);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608 * (1.0 + 3.0 * 0.044715 * x * x);
}
static double f_elu(double x) { return x > 0 ? x : exp(x) - 1.0; }
static double d_elu(double x) { return x > 0 ? 1.0 : exp(x); }
static double f_softplus(double x) { return log(1.0 + exp(x)); }
static double d_softplus(double x) { return sig(x); }

typedef struct closed_form {
  const char *src;
  double (*f)(double);
  double (*df)(double);
  double lo, hi; /* where to test */
  int kink;      /* f or f' has a kink at 0: keep finite differences away from it */
} closed_form;

static const closed_form forms[] = {
    {"x*sigmoid(x)", f_swish, d_swish, -8, 8, 0},
    {"max(x, 0.1*x)", f_leaky, d_leaky, -5, 5, 1},
    {"x/(1+abs(x))", f_softsign, d_softsign, -6, 6, 1},
    {"x^2", f_sq, d_sq, -4, 4, 0},
    {"-x^2", f_negsq, d_negsq, -4, 4, 0},
    {"2^x", f_exp2, d_exp2, -5, 5, 0},
    {"exp(-x)*log(1+x^2)", f_explog, d_explog, -3, 6, 0},
    {"sqrt(x^2+1)", f_hyp, d_hyp, -6, 6, 0},
    {"tanh(x)", f_tanh, d_tanh, -4, 4, 0},
    {"min(x,0)", f_min0, d_min0, -3, 3, 1},
    {"1+2*3^2", f_19, d_19, -3, 3, 0},
    {"3*x^3 - 2*x + .5", f_poly, d_poly, -2, 2, 0},
    {"1/(1+x*x)", f_recip, d_recip, -4, 4, 0},
    {"0.5*x*(1+tanh(0.7978845608*(x+0.044715*x^3)))", f_gelu, d_gelu, -5, 5, 0},
    {"max(x,0) + min(0, exp(x)-1)", f_elu, d_elu, -5, 5, 1},
    {"log(1 + exp(x))", f_softplus, d_softplus, -8, 8, 0},
};

static void test_closed_forms(void) {
  size_t k;
  for (k = 0; k < sizeof forms / sizeof forms[0]; k++) {
    const closed_form *c = &forms[k];
    cnn_expr *e = compile_ok(c->src);
    enum { N = 397 };
    float x[N], y[N], d[N];
    int i, bad_v = 0, bad_d = 0, bad_fd = 0;
    if (!e) continue;
    CHECK_STR(cnn_expr_source(e), c->src);
    for (i = 0; i < N; i++) x[i] = (float)(c->lo + (c->hi - c->lo) * i / (N - 1));
    cnn_expr_eval(e, y, d, x, N);
    for (i = 0; i < N; i++) {
      double xi = x[i], h = 1e-5;
      double fd = (c->f(xi + h) - c->f(xi - h)) / (2 * h);
      if (!close_enough(y[i], c->f(xi), 2e-6)) {
        if (bad_v++ < 3)
          fprintf(stderr, "  %s at %g: value %.9g, want %.9g\n", c->src, xi, y[i], c->f(xi));
      }
      if (!close_enough(d[i], c->df(xi), 4e-6)) {
        if (bad_d++ < 3)
          fprintf(stderr, "  %s at %g: derivative %.9g, want %.9g\n", c->src, xi, d[i], c->df(xi));
      }
      /* The closed-form derivative itself, against central differences. */
      if (!(c->kink && fabs(xi) < 2 * h) && !close_enough(c->df(xi), fd, 1e-7)) {
        if (bad_fd++ < 3)
          fprintf(stderr, "  %s at %g: closed form %.12g, differences %.12g\n", c->src, xi,
                  c->df(xi), fd);
      }
    }
    if (!CHECK_EQ_INT(bad_v, 0) || !CHECK_EQ_INT(bad_d, 0) || !CHECK_EQ_INT(bad_fd, 0))
      fprintf(stderr, "  in formula %s\n", c->src);
    cnn_expr_free(e);
  }
}

/* Derivatives against central differences of the engine's own float values,
 * for formulas without a closed form here: loose, as float differences are. */
static void test_self_consistency(void) {
  static const char *srcs[] = {
      "sigmoid(x)*tanh(x/2) + sqrt(abs(x)+1)",
      "x^x",
      "(1+x^2)^(0.5*sigmoid(x))",
      "max(exp(x)-2, x*x-x)",
      "exp(-x^2/2) / (1 + x^2)^1.5",
      "log(2 + tanh(3*x)) * min(x, 2 - x)",
      "-(-x)^3 / 4 - 2^(-x) + x/3^x",
  };
  size_t k;
  for (k = 0; k < sizeof srcs / sizeof srcs[0]; k++) {
    const char *src = srcs[k];
    cnn_expr *e = compile_ok(src);
    int i, bad = 0, compared = 0;
    if (!e) continue;
    for (i = 0; i < 200; i++) {
      float x = -3.0f + 6.0f * (float)i / 199.0f, h = 1e-2f, y, d, yp, ym, dd;
      if (k == 1) x = 0.05f + 3.0f * (float)i / 199.0f; /* x^x: positive x only */
      eval1(e, x, &y, &d);
      eval1(e, x + h, &yp, &dd);
      eval1(e, x - h, &ym, &dd);
      /* A kink between x - h and x + h shows as a large second difference. */
      if (fabsf(yp - 2 * y + ym) > 0.05f * fabsf(d) * h + 1e-3f) continue;
      compared++;
      if (!close_enough(d, ((double)yp - ym) / (2.0 * h), 2e-3)) {
        if (bad++ < 3)
          fprintf(stderr, "  %s at %g: derivative %.9g, differences %.9g\n", src, x, d,
                  (yp - ym) / (2 * h));
      }
    }
    if (!CHECK_EQ_INT(bad, 0) || !CHECK(compared >= 190))
      fprintf(stderr, "  in formula %s (%d points compared)\n", src, compared);
    cnn_expr_free(e);
  }
}

static void check_at(const char *src, float x, double want_y, double want_d) {
  cnn_expr *e = compile_ok(src);
  float y = NAN, d = NAN;
  if (!e) return;
  eval1(e, x, &y, &d);
  if (!CHECK(close_enough(y, want_y, 1e-6)) || !CHECK(close_enough(d, want_d, 1e-6)))
    fprintf(stderr, "  %s at %g: got %.9g, %.9g; want %.9g, %.9g\n", src, x, y, d, want_y, want_d);
  cnn_expr_free(e);
}

static void test_syntax_and_conventions(void) {
  /* Precedence and associativity. */
  check_at("1+2*3^2", 0.0f, 19, 0);
  check_at("1+2*3^2", -7.5f, 19, 0);
  check_at("2^3^2", 1.0f, 512, 0); /* 2^(3^2) */
  check_at("-2^2", 1.0f, -4, 0);   /* -(2^2) */
  check_at("2^-1", 1.0f, 0.5, 0);
  check_at("(-2)^2", 1.0f, 4, 0);
  check_at("10-4-3", 1.0f, 3, 0); /* left-associative */
  check_at("8/2/2", 1.0f, 2, 0);
  check_at("x-1-2", 10.0f, 7, 1);
  check_at("x/2/2", 8.0f, 2, 0.25);
  check_at("2*x+3*x", 1.5f, 7.5, 5);
  check_at("-x^2", 3.0f, -9, -6);
  check_at("--x", 2.0f, 2, 1);
  check_at("+x", 2.0f, 2, 1);
  check_at("x*-1", 2.0f, -2, -1);
  check_at("-x*-x", 3.0f, 9, 6);
  check_at("x^-2", 2.0f, 0.25, -0.25);
  check_at("2^-x", 1.0f, 0.5, -0.5 * log(2.0));
  check_at(" \t x \n* 2\r ", 4.0f, 8, 2);
  check_at("x", 5.0f, 5, 1);
  check_at("(((x)))", 5.0f, 5, 1);
  check_at("7", 5.0f, 7, 0);
  check_at(".5*x", 2.0f, 1, 0.5);
  check_at("5.*x", 2.0f, 10, 5);
  check_at("1e-3*x", 2.0f, 0.002, 0.001);
  check_at("2.5E+1", 0.0f, 25, 0);
  check_at("x^0", 0.0f, 1, 0);
  check_at("x^1", -3.0f, -3, 1);
  check_at("x^0.5", 4.0f, 2, 0.25);
  check_at("x^3", -2.0f, -8, 12); /* negative base, constant exponent */
  check_at("x^2", -3.0f, 9, -6);
  check_at("x^2.5", 4.0f, 32, 20);

  /* Conventions: ties pick the first argument, |x|' = 0 at 0. */
  check_at("max(x, 0)", 0.0f, 0, 1);
  check_at("max(0, x)", 0.0f, 0, 0);
  check_at("min(x, 0)", 0.0f, 0, 1);
  check_at("min(0, x)", 0.0f, 0, 0);
  check_at("max(x, 0.1*x)", 0.0f, 0, 1);
  check_at("max(2*x, x)", 0.0f, 0, 2);
  check_at("max(x, 2*x)", 0.0f, 0, 1);
  check_at("abs(x)", 0.0f, 0, 0);
  check_at("abs(x)", -2.0f, 2, -1);
  check_at("abs(x)", 2.0f, 2, 1);
  /* A locally constant argument gives derivative 0, never NaN. */
  check_at("sqrt(max(x, 0))", -1.0f, 0, 0);
  check_at("sqrt(max(x, 0))", 4.0f, 2, 0.25);
  check_at("log(max(x, 1))", -3.0f, 0, 0);
  check_at("max(x, 0)^0.5", -2.0f, 0, 0);
  check_at("0^x", 2.0f, 0, 0);

  /* Numerical edges. */
  {
    cnn_expr *e = compile_ok("sigmoid(x)");
    float y, d;
    if (e) {
      eval1(e, -100.0f, &y, &d);
      CHECK(y > 0 && y < 1e-40f && d >= 0 && d < 1e-40f);
      eval1(e, 100.0f, &y, &d);
      CHECK(y == 1.0f && d >= 0 && d < 1e-40f);
      eval1(e, 30.0f, &y, &d);
      CHECK_NEAR(d, exp(-30.0), 1e-16); /* not rounded to 0 by 1 - s */
      eval1(e, -1000.0f, &y, &d);
      CHECK(y == 0.0f && d == 0.0f);
      eval1(e, 0.0f, &y, &d);
      CHECK(y == 0.5f && d == 0.25f);
      eval1(e, INFINITY, &y, &d);
      CHECK(y == 1.0f && d == 0.0f);
      eval1(e, -INFINITY, &y, &d);
      CHECK(y == 0.0f && d == 0.0f);
      cnn_expr_free(e);
    }
    e = compile_ok("x*sigmoid(x)");
    if (e) {
      eval1(e, -200.0f, &y, &d);
      CHECK(isfinite(y) && isfinite(d) && fabsf(y) < 1e-30f);
      cnn_expr_free(e);
    }
    e = compile_ok("max(x, 0)");
    if (e) {
      eval1(e, NAN, &y, &d);
      CHECK(isnan(y)); /* NaN comes out, not 0 */
      cnn_expr_free(e);
    }
    e = compile_ok("max(0, x)");
    if (e) {
      eval1(e, NAN, &y, &d);
      CHECK(isnan(y));
      cnn_expr_free(e);
    }
    e = compile_ok("log(x)");
    if (e) {
      eval1(e, 0.0f, &y, &d);
      CHECK(isinf(y) && y < 0 && isinf(d));
      eval1(e, -1.0f, &y, &d);
      CHECK(isnan(y));
      cnn_expr_free(e);
    }
  }
}

/* Several blocks, a partial last block, y aliasing x, dydx NULL. */
static void test_arrays(void) {
  enum { N = 1000 }; /* 3 full blocks of 256 and a partial one */
  cnn_expr *e = compile_ok("x*sigmoid(x) + 0.25*max(x, x^2 - 1)/(1 + abs(x))");
  float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
  float *d = malloc(N * sizeof(float)), *y2 = malloc(N * sizeof(float));
  int i, same = 1;
  if (!e) goto done;
  for (i = 0; i < N; i++) x[i] = (float)(i - 500) / 37.0f;
  cnn_expr_eval(e, y, d, x, N);
  for (i = 0; i < N; i++) {
    float yi, di;
    eval1(e, x[i], &yi, &di);
    if (yi != y[i] || di != d[i]) same = 0;
  }
  CHECK(same); /* element by element equals the blocked result */
  cnn_expr_eval(e, y2, NULL, x, N);
  CHECK(memcmp(y, y2, N * sizeof(float)) == 0); /* value-only path, same values */
  memcpy(y2, x, N * sizeof(float));
  cnn_expr_eval(e, y2, d, y2, N); /* in place */
  CHECK(memcmp(y, y2, N * sizeof(float)) == 0);
  memcpy(y2, x, N * sizeof(float));
  cnn_expr_eval(e, d, y2, y2, N); /* derivatives over x */
  CHECK(memcmp(y, d, N * sizeof(float)) == 0);
  cnn_expr_eval(e, y2, d, x, 0); /* nothing to do */
  cnn_expr_free(e);

  /* A formula that is just x, or just a constant. */
  e = compile_ok("x");
  if (e) {
    cnn_expr_eval(e, y, d, x, N);
    CHECK(memcmp(y, x, N * sizeof(float)) == 0 && d[0] == 1.0f && d[N - 1] == 1.0f);
    cnn_expr_free(e);
  }
  e = compile_ok("(1+2)*4");
  if (e) {
    cnn_expr_eval(e, y, d, x, N);
    CHECK(y[0] == 12.0f && y[N - 1] == 12.0f && d[0] == 0.0f && d[N - 1] == 0.0f);
    cnn_expr_free(e);
  }
  /* The longest formula allowed: x+x+...+x, 512 terms, and a space. */
  {
    char src[CNN_EXPR_MAX_LEN + 2];
    int o = 0;
    src[o++] = 'x';
    while (o + 2 <= CNN_EXPR_MAX_LEN - 1) {
      src[o++] = '+';
      src[o++] = 'x';
    }
    src[o++] = ' ';
    src[o] = '\0';
    CHECK_EQ_INT(strlen(src), CNN_EXPR_MAX_LEN);
    e = compile_ok(src);
    if (e) {
      float yy, dd;
      eval1(e, 0.5f, &yy, &dd);
      CHECK(yy == 256.0f && dd == 512.0f);
      cnn_expr_free(e);
    }
    src[o++] = 'x';
    src[o] = '\0';
    compile_err(src, "formula too long: 1025 characters, at most 1024");
  }
  /* A balanced tree: the most registers a formula can need. */
  {
    char src[CNN_EXPR_MAX_LEN + 1] = "x";
    char tmp[CNN_EXPR_MAX_LEN + 1];
    size_t n;
    while ((n = strlen(src)) * 2 + 5 <= CNN_EXPR_MAX_LEN) { /* src -> (src)*(src) */
      tmp[0] = '(';
      memcpy(tmp + 1, src, n);
      memcpy(tmp + 1 + n, ")*(", 3);
      memcpy(tmp + 4 + n, src, n);
      memcpy(tmp + 4 + 2 * n, ")", 2);
      memcpy(src, tmp, 2 * n + 6);
    }
    CHECK_EQ_INT(strlen(src), 763);
    e = compile_ok(src);
    if (e) {
      float yy, dd;
      eval1(e, 1.0f, &yy, &dd);
      CHECK(yy == 1.0f && dd == 128.0f); /* x^128 */
      cnn_expr_free(e);
    }
  }
done:
  free(x);
  free(y);
  free(d);
  free(y2);
}

static void test_errors(void) {
  char deep[200];
  int i;
  compile_err("", "empty formula");
  compile_err("  \t ", "empty formula");
  compile_err(NULL, "empty formula");
  compile_err("x**2", "at character 3 ('*'): expected a number, x, a function or '('");
  compile_err("2*", "at character 3 (end of formula): expected a number, x, a function or '('");
  compile_err("x^", "at character 3 (end of formula): expected a number, x, a function or '('");
  compile_err("*x", "at character 1 ('*'): expected a number, x, a function or '('");
  compile_err("max()", "at character 5 (')'): expected a number, x, a function or '('");
  compile_err(".", "at character 1 ('.'): expected a number, x, a function or '('");
  compile_err("x + \xC3\xA9",
              "at character 5 ('\xC3\xA9'): expected a number, x, a function or '('");
  compile_err("x + \xFF", "at character 5 (byte 0xFF): expected a number, x, a function or '('");
  compile_err("x\x01",
              "at character 2 (byte 0x01): expected an operator or the end of the formula");
  compile_err("foo(x)", "unknown function 'foo' at character 1");
  compile_err("2 * Exp(x)", "unknown function 'Exp' at character 5");
  compile_err("y+1", "unknown name 'y' at character 1 (the variable is x)");
  compile_err("X", "unknown name 'X' at character 1 (the variable is x)");
  compile_err("x2", "unknown name 'x2' at character 1 (the variable is x)");
  compile_err("exp x", "at character 5 ('x'): expected '(' after 'exp'");
  compile_err("1+sigmoid", "at character 10 (end of formula): expected '(' after 'sigmoid'");
  compile_err("max(x)", "'max' takes 2 arguments, got 1 at character 1");
  compile_err("1 + exp(x, 2)", "'exp' takes 1 argument, got 2 at character 5");
  compile_err("min(x, 1, 2)", "'min' takes 2 arguments, got 3 at character 1");
  compile_err("(x", "unbalanced parentheses: '(' at character 1 is never closed");
  compile_err("max(x, (1)", "unbalanced parentheses: '(' at character 4 is never closed");
  compile_err("sqrt(x", "unbalanced parentheses: '(' at character 5 is never closed");
  compile_err("x)", "unbalanced parentheses: ')' at character 2 has no matching '('");
  compile_err("(x)) + 1", "unbalanced parentheses: ')' at character 4 has no matching '('");
  compile_err("(x y)", "at character 4 ('y'): expected an operator or ')'");
  compile_err("max(x y)", "at character 7 ('y'): expected an operator, ',' or ')'");
  compile_err("x y", "at character 3 ('y'): expected an operator or the end of the formula");
  compile_err("2x", "at character 2 ('x'): expected an operator or the end of the formula");
  compile_err("x(2)", "at character 2 ('('): expected an operator or the end of the formula");
  compile_err("1.5.2", "at character 4 ('.'): expected an operator or the end of the formula");
  compile_err("1e", "at character 3 (end of formula): expected a digit in the exponent");
  compile_err("1e+x", "at character 4 ('x'): expected a digit in the exponent");
  compile_err("1e39", "number out of range at character 1");
  compile_err("x + 1e999", "number out of range at character 5");

  /* Nesting: 64 levels are fine, the 65th opener is refused. */
  for (i = 0; i < 64; i++) deep[i] = '(';
  deep[64] = 'x';
  for (i = 0; i < 64; i++) deep[65 + i] = ')';
  deep[129] = '\0';
  {
    cnn_expr *e = compile_ok(deep);
    cnn_expr_free(e);
  }
  for (i = 0; i < 65; i++) deep[i] = '(';
  deep[65] = 'x';
  deep[66] = '\0';
  compile_err(deep, "formula nested more than 64 levels deep at character 65");
  for (i = 0; i < 70; i++) deep[i] = '-';
  deep[70] = 'x';
  deep[71] = '\0';
  compile_err(deep, "formula nested more than 64 levels deep at character 65");
  {
    char many[CNN_EXPR_MAX_LEN + 1];
    for (i = 0; i < CNN_EXPR_MAX_LEN; i++) many[i] = '(';
    many[CNN_EXPR_MAX_LEN] = '\0';
    compile_err(many, "formula nested more than 64 levels deep at character 65");
    strcpy(many, "2");
    for (i = 0; i < 70; i++) strcat(many, "^2");
    compile_err(many, "formula nested more than 64 levels deep at character 130");
  }
}

/* Every allocation of a compile fails once in turn. */
static void test_out_of_memory(void) {
  uint64_t n;
  int saw_ok = 0, failures = 0;
  for (n = 1; n < 100 && !saw_ok; n++) {
    char err[CNN_ERRMAX] = "";
    cnn_expr *e = NULL;
    int rc;
    cnn_alloc_fail_at(n);
    rc = cnn_expr_compile(&e, "x*sigmoid(x) + 1", err);
    cnn_alloc_fail_at(0);
    if (rc == CNN_OK) {
      float y, d;
      saw_ok = 1;
      eval1(e, 0.0f, &y, &d);
      CHECK(y == 1.0f && d == 0.5f);
    } else {
      failures++;
      CHECK_EQ_INT(rc, CNN_NOMEM);
      CHECK_STR(err, "out of memory");
      CHECK(e == NULL);
    }
    cnn_expr_free(e);
  }
  CHECK(saw_ok);
  CHECK(failures >= 3);
  cnn_expr_free(NULL);
  CHECK(cnn_expr_source(NULL) == NULL);
}

int main(void) {
  test_closed_forms();
  test_self_consistency();
  test_syntax_and_conventions();
  test_arrays();
  test_errors();
  test_out_of_memory();
  return check_done();
}
