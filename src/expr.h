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
 * Numbers are decimal with optional fraction and exponent ("0.1", "1e-3").
 *
 * The formula compiles once into a small program; evaluation computes the value
 * and the exact derivative dy/dx together (forward-mode dual numbers), over a
 * whole array at a time, never by finite differences. Where the derivative is
 * undefined (abs at 0, max at a tie) it takes the left branch's convention:
 * d|x|/dx at 0 = 0, max/min pick the first argument on ties.
 */
#ifndef CNN_EXPR_H
#define CNN_EXPR_H

#include <stddef.h>

typedef struct cnn_expr cnn_expr;

#define CNN_EXPR_MAX_LEN 1024 /* characters in a formula */

/* Compiles src. On a syntax error returns CNN_ERROR and a message saying where:
 * "at character 5 ('*'): expected a number, x, a function or '('". */
int cnn_expr_compile(cnn_expr **out, const char *src, char *err);
void cnn_expr_free(cnn_expr *e);
/* The formula as given (owned by e). */
const char *cnn_expr_source(const cnn_expr *e);

/* y[i] = f(x[i]); dydx[i] = f'(x[i]) when dydx is not NULL. y and x may alias.
 * Thread-safe: e is read-only during evaluation. */
void cnn_expr_eval(const cnn_expr *e, float *y, float *dydx, const float *x, size_t n);

#endif
