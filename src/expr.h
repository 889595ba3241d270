/*
 * expr.h - custom activation functions given as a formula in x.
 *
 * Grammar (precedence low to high; ^ is right-associative and binds tighter
 * than unary minus, so -x^2 = -(x^2)):
 *   expr   := term (('+'|'-') term)*
 *   term   := unary (('*'|'/') unary)*
 *   unary  := ('-'|'+') unary | power
 *   power  := atom ('^' unary)?
 *   atom   := number | 'x' | '(' expr ')' | name '(' expr (',' expr)* ')'
 *   names  := exp log sqrt abs tanh sigmoid (one argument), min max (two)
 * Numbers are decimal with optional fraction and exponent ("0.1", ".5", "2.",
 * "1e-3"), read with '.' whatever the locale, and must fit a float. Names are
 * lowercase and case-sensitive; blanks (space, tab, CR, LF) may go anywhere
 * between tokens. Nesting ('(', calls, signs, '^') is capped at 64 levels.
 *
 * The formula compiles once into a small program (constant parts folded);
 * evaluation computes the value and the exact derivative dy/dx together
 * (forward-mode dual numbers) in float, over a whole array at a time, never by
 * finite differences. Conventions where the derivative is undefined or the
 * maths degenerates:
 *  - d|x|/dx at 0 is 0; max/min pick the first argument on ties (value and
 *    derivative), and a NaN in either argument comes out;
 *  - a chain-rule term f'(u)*u' is 0 whenever u' is 0, even if f'(u) is
 *    infinite: x^2 at x < 0 is fine (the ln term of d(a^b) is only used when b
 *    depends on x) and sqrt(max(x,0)) has derivative 0 for x < 0;
 *  - sigmoid is computed without overflow or cancellation for any x.
 * Otherwise IEEE float rules apply (log(0) = -inf, log(-1) = NaN).
 */
#ifndef CNN_EXPR_H
#define CNN_EXPR_H

#include <stddef.h>

typedef struct cnn_expr cnn_expr;

#define CNN_EXPR_MAX_LEN 1024 /* bytes in a formula (characters, as it is ASCII) */

/* Compiles src into *out (NULL on failure). Errors (CNN_ERROR) say what and
 * where, counting characters from 1:
 *   "empty formula", "formula too long: 1100 characters, at most 1024",
 *   "at character 5 ('*'): expected a number, x, a function or '('",
 *   "at character 3 (end of formula): expected an operator or ')'",
 *   "unknown function 'foo' at character 1",
 *   "unknown name 'y' at character 1 (the variable is x)",
 *   "'max' takes 2 arguments, got 1 at character 1",
 *   "unbalanced parentheses: '(' at character 4 is never closed",
 *   "number out of range at character 3",
 *   "formula nested more than 64 levels deep at character 65".
 * CNN_NOMEM (message "out of memory") if an allocation fails. */
int cnn_expr_compile(cnn_expr **out, const char *src, char *err);
void cnn_expr_free(cnn_expr *e);
/* The formula as given (owned by e). */
const char *cnn_expr_source(const cnn_expr *e);

/* y[i] = f(x[i]); dydx[i] = f'(x[i]) when dydx is not NULL (value-only is
 * faster). y or dydx may be x itself. Never fails, allocates nothing, uses
 * about 27 KB of stack. Thread-safe: e is read-only during evaluation. */
void cnn_expr_eval(const cnn_expr *e, float *y, float *dydx, const float *x, size_t n);

/* The compiled program, for translating a formula into another form (the
 * ONNX export, src/io/onnx.c). Steps run in order; each writes register dst
 * (>= 1) from its operands, registers a and b, where register 0 is x and -1
 * stands for the step's constant k. One-argument operations use a only.
 * Constant parts are already folded, and "^2" is CNN_EXPR_SQR (a * a). */
typedef enum cnn_expr_op {
  CNN_EXPR_NEG = 2,
  CNN_EXPR_EXP,
  CNN_EXPR_LOG,
  CNN_EXPR_SQRT,
  CNN_EXPR_ABS,
  CNN_EXPR_TANH,
  CNN_EXPR_SIGMOID,
  CNN_EXPR_SQR,
  CNN_EXPR_ADD,
  CNN_EXPR_SUB,
  CNN_EXPR_MUL,
  CNN_EXPR_DIV,
  CNN_EXPR_POW,
  CNN_EXPR_MIN, /* the first argument on ties; NaN in either comes out */
  CNN_EXPR_MAX,
} cnn_expr_op;

typedef struct cnn_expr_step {
  cnn_expr_op op;
  int dst;
  int a, b; /* registers, or -1: the constant k */
  float k;
} cnn_expr_step;

size_t cnn_expr_steps(const cnn_expr *e);
cnn_expr_step cnn_expr_step_at(const cnn_expr *e, size_t i);
/* The register holding f(x) after the last step: 0 when f is x itself, -1
 * when f is the constant *k (set then). */
int cnn_expr_result(const cnn_expr *e, float *k);

#endif
