/*
 * expr.c - custom activation formulas in x (grammar and semantics: expr.h).
 *
 * Compiling: a recursive-descent parser builds a tree in a node array sized by
 * the formula's length (every node consumes at least one character), folding
 * constant subtrees as it goes, so "1+2*3^2" becomes the constant 19 and "2^x"
 * a power with an immediate base. The tree is then turned into register code:
 * register 0 holds x, constants are immediates inside instructions, and the
 * operand needing more temporaries is computed first (Sethi-Ullman order), so
 * even a formula of CNN_EXPR_MAX_LEN characters needs about 10 of them: the
 * register file fits on the stack.
 *
 * Evaluating: x goes through in blocks of EXPR_BLOCK elements; each
 * instruction is one tight loop over the block computing value and derivative
 * together (forward-mode dual numbers). Nothing is allocated, and the compiled
 * formula is only read, so threads may share it. The maths of each operation
 * lives in one inline function (d_*) used by the loops and by constant folding
 * alike, so a folded constant equals what run time would have computed.
 *
 * Derivatives: a chain-rule term f'(a)*a' counts as 0 whenever a' == 0, even
 * when f'(a) is infinite or NaN: a locally constant argument makes the result
 * locally constant. So x^2 at x < 0 never touches log(x), and sqrt(max(x,0))
 * has derivative 0 rather than NaN where x < 0.
 *
 * Numbers in a formula are converted by strtod with the "C" locale installed
 * for this thread only (see json.c), so "0.5" means one half in any locale.
 */
#include "expr.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define EXPR_BLOCK 256    /* elements per block; registers: 2 x 13 x 256 floats on the stack */
#define EXPR_MAX_DEPTH 64 /* nested parentheses, signs, powers and calls */
#define EXPR_MAX_REGS 12  /* temporaries besides x; CNN_EXPR_MAX_LEN allows about 9 */
_Static_assert(EXPR_MAX_REGS < 32, "the busy mask has 32 bits");

#if defined(__GNUC__)
#define EXPR_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define EXPR_ALWAYS_INLINE static inline
#endif

/* The operations are expr.h's cnn_expr_op, which the program exposes. */
enum {
  OP_CONST, /* leaves */
  OP_X,
  OP_NEG = CNN_EXPR_NEG, /* unary */
  OP_EXP = CNN_EXPR_EXP,
  OP_LOG = CNN_EXPR_LOG,
  OP_SQRT = CNN_EXPR_SQRT,
  OP_ABS = CNN_EXPR_ABS,
  OP_TANH = CNN_EXPR_TANH,
  OP_SIGMOID = CNN_EXPR_SIGMOID,
  OP_SQR = CNN_EXPR_SQR, /* a^2, from "^2" */
  OP_ADD = CNN_EXPR_ADD, /* binary */
  OP_SUB = CNN_EXPR_SUB,
  OP_MUL = CNN_EXPR_MUL,
  OP_DIV = CNN_EXPR_DIV,
  OP_POW = CNN_EXPR_POW,
  OP_MIN = CNN_EXPR_MIN,
  OP_MAX = CNN_EXPR_MAX,
};
_Static_assert(OP_X + 1 == OP_NEG, "leaves come right before the operations");
#define OP_IS_UNARY(op) ((op) >= OP_NEG && (op) <= OP_SQR)

static const struct {
  const char *name;
  uint8_t op;
  int nargs;
} functions[] = {
    {"exp", OP_EXP, 1},   {"log", OP_LOG, 1},         {"sqrt", OP_SQRT, 1}, {"abs", OP_ABS, 1},
    {"tanh", OP_TANH, 1}, {"sigmoid", OP_SIGMOID, 1}, {"min", OP_MIN, 2},   {"max", OP_MAX, 2},
};

/* ---------------------------------------------------------------- maths */

typedef struct dual {
  float v; /* value */
  float d; /* derivative with respect to x */
} dual;

/* c ? a : b with both computed, as bit operations. GCC (with the default
 * -ftrapping-math) will not turn `c ? a : x * y` into a vector blend because
 * the product might trap; through integers it vectorises. */
static inline float pick(int c, float a, float b) {
  uint32_t ua, ub, m = (uint32_t)0 - (uint32_t)(c != 0);
  memcpy(&ua, &a, sizeof ua);
  memcpy(&ub, &b, sizeof ub);
  ua = (ua & m) | (ub & ~m);
  memcpy(&a, &ua, sizeof a);
  return a;
}

/* f'(a) * a', or 0 when a' is 0 (see the top of the file). */
static inline float chain(float fprime, float da) { return pick(da != 0, fprime * da, 0.0f); }

static inline dual d_neg(dual a) { return (dual){-a.v, -a.d}; }

static inline dual d_exp(dual a) {
  float v = expf(a.v);
  return (dual){v, chain(v, a.d)};
}

static inline dual d_log(dual a) { return (dual){logf(a.v), chain(1.0f / a.v, a.d)}; }

static inline dual d_sqrt(dual a) {
  float v = sqrtf(a.v);
  return (dual){v, chain(0.5f / v, a.d)};
}

/* d|a| at a = 0 is taken as 0. */
static inline dual d_abs(dual a) {
  return (dual){fabsf(a.v), pick(a.v > 0, a.d, pick(a.v < 0, -a.d, 0.0f))};
}

static inline dual d_tanh(dual a) {
  float v = tanhf(a.v);
  return (dual){v, chain(1.0f - v * v, a.d)};
}

/* With z = e^-|a| in (0, 1], s = 1/(1+z) for a >= 0 and z/(1+z) below, and
 * s(1-s) = z/(1+z)^2 on both sides: nothing overflows and nothing cancels,
 * so sigmoid(-100) is a tiny positive number, not 0/0, and the derivative
 * of sigmoid(30) is not rounded to 0 by 1 - s. */
static inline dual d_sigmoid(dual a) {
  float z = expf(-fabsf(a.v)), p = 1.0f / (1.0f + z);
  return (dual){pick(a.v >= 0, p, z * p), chain(z * p * p, a.d)};
}

static inline dual d_sqr(dual a) { return (dual){a.v * a.v, chain(2.0f * a.v, a.d)}; }

static inline dual d_add(dual a, dual b) { return (dual){a.v + b.v, a.d + b.d}; }

static inline dual d_sub(dual a, dual b) { return (dual){a.v - b.v, a.d - b.d}; }

static inline dual d_mul(dual a, dual b) {
  return (dual){a.v * b.v, chain(b.v, a.d) + chain(a.v, b.d)};
}

/* (a/b)' = a'/b - (a/b) b'/b */
static inline dual d_div(dual a, dual b) {
  float q = a.v / b.v;
  return (dual){q, chain(1.0f / b.v, a.d) - chain(q / b.v, b.d)};
}

/* (a^b)' = b a^(b-1) a' + a^b ln(a) b'. The first term is skipped when b = 0
 * (x^0 is constant, even at x = 0), the second when a^b = 0 (0^x is 0 for
 * x > 0): both would otherwise be 0 * infinity. */
static inline dual d_pow(dual a, dual b) {
  float v = powf(a.v, b.v), d = 0.0f;
  if (a.d != 0 && b.v != 0) d += b.v * powf(a.v, b.v - 1.0f) * a.d;
  if (b.d != 0 && v != 0) d += v * logf(a.v) * b.d;
  return (dual){v, d};
}

/* The first argument wins a tie (so does its derivative); a NaN in either
 * argument comes out rather than being hidden. */
static inline dual d_max(dual a, dual b) { return (a.v >= b.v || isnan(a.v)) ? a : b; }
static inline dual d_min(dual a, dual b) { return (a.v <= b.v || isnan(a.v)) ? a : b; }

/* One operation on one dual number: constant folding. */
static dual d_apply(int op, dual a, dual b) {
  switch (op) {
  case OP_NEG:
    return d_neg(a);
  case OP_EXP:
    return d_exp(a);
  case OP_LOG:
    return d_log(a);
  case OP_SQRT:
    return d_sqrt(a);
  case OP_ABS:
    return d_abs(a);
  case OP_TANH:
    return d_tanh(a);
  case OP_SIGMOID:
    return d_sigmoid(a);
  case OP_SQR:
    return d_sqr(a);
  case OP_ADD:
    return d_add(a, b);
  case OP_SUB:
    return d_sub(a, b);
  case OP_MUL:
    return d_mul(a, b);
  case OP_DIV:
    return d_div(a, b);
  case OP_POW:
    return d_pow(a, b);
  case OP_MIN:
    return d_min(a, b);
  case OP_MAX:
    return d_max(a, b);
  }
  return a;
}

/* ---------------------------------------------------------------- program */

enum { MODE_RR, MODE_RK, MODE_KR }; /* both registers; b = k; a = k */

typedef struct instr {
  uint8_t op;
  uint8_t mode;
  uint8_t dst, a, b; /* registers; 0 is x (never a dst) */
  float k;           /* the immediate operand of MODE_RK / MODE_KR */
} instr;

struct cnn_expr {
  char *source; /* owned: the formula as given */
  instr *code;  /* owned: ncode instructions */
  size_t ncode;
  int result; /* register holding f(x) (0: f is x), or -1: f is the constant k */
  float k;
};

typedef float expr_block[EXPR_BLOCK];

/* The loops, one per operation and operand mode, over m elements. The
 * register allocator never gives an instruction a destination that is also
 * one of its operands, so the pointers are restrict and the loops vectorise
 * where the maths allows (everything but the libm calls). In value-only runs
 * (want_d == 0) derivatives read as 0, so every chain() term and the extra
 * powf of d_pow drop out, and the d registers are not touched. */
#define EXPR_LOOP(call)       \
  for (i = 0; i < m; i++) {   \
    dual r_ = call;           \
    ov[i] = r_.v;             \
    if (want_d) od[i] = r_.d; \
  }
#define EXPR_A ((dual){av[i], want_d ? ad[i] : 0.0f})
#define EXPR_B ((dual){bv[i], want_d ? bd[i] : 0.0f})
#define EXPR_K ((dual){k, 0.0f})

#define EXPR_DEFINE_UNARY(name, fn)                                                              \
  EXPR_ALWAYS_INLINE void name(float *restrict ov, float *restrict od, const float *restrict av, \
                               const float *restrict ad, size_t m, const int want_d) {           \
    size_t i;                                                                                    \
    EXPR_LOOP(fn(EXPR_A))                                                                        \
  }
#define EXPR_DEFINE_BINARY(name, fn)                                                             \
  EXPR_ALWAYS_INLINE void name(float *restrict ov, float *restrict od, const float *restrict av, \
                               const float *restrict ad, const float *restrict bv,               \
                               const float *restrict bd, float k, int mode, size_t m,            \
                               const int want_d) {                                               \
    size_t i;                                                                                    \
    if (mode == MODE_RR)                                                                         \
      EXPR_LOOP(fn(EXPR_A, EXPR_B))                                                              \
    else if (mode == MODE_RK)                                                                    \
      EXPR_LOOP(fn(EXPR_A, EXPR_K))                                                              \
    else                                                                                         \
      EXPR_LOOP(fn(EXPR_K, EXPR_B))                                                              \
  }

EXPR_DEFINE_UNARY(loop_neg, d_neg)
EXPR_DEFINE_UNARY(loop_exp, d_exp)
EXPR_DEFINE_UNARY(loop_log, d_log)
EXPR_DEFINE_UNARY(loop_sqrt, d_sqrt)
EXPR_DEFINE_UNARY(loop_abs, d_abs)
EXPR_DEFINE_UNARY(loop_tanh, d_tanh)
EXPR_DEFINE_UNARY(loop_sigmoid, d_sigmoid)
EXPR_DEFINE_UNARY(loop_sqr, d_sqr)
EXPR_DEFINE_BINARY(loop_add, d_add)
EXPR_DEFINE_BINARY(loop_sub, d_sub)
EXPR_DEFINE_BINARY(loop_mul, d_mul)
EXPR_DEFINE_BINARY(loop_div, d_div)
EXPR_DEFINE_BINARY(loop_pow, d_pow)
EXPR_DEFINE_BINARY(loop_min, d_min)
EXPR_DEFINE_BINARY(loop_max, d_max)

/* One instruction over m elements of the register file (v, d: registers x
 * EXPR_BLOCK values and derivatives). */
EXPR_ALWAYS_INLINE void exec(const instr *in, expr_block *v, expr_block *d, size_t m,
                             const int want_d) {
  float *ov = v[in->dst], *od = d[in->dst];
  const float *av = v[in->a], *ad = d[in->a], *bv = v[in->b], *bd = d[in->b];
  float k = in->k;
  int mode = in->mode;
  switch (in->op) {
  case OP_NEG:
    loop_neg(ov, od, av, ad, m, want_d);
    break;
  case OP_EXP:
    loop_exp(ov, od, av, ad, m, want_d);
    break;
  case OP_LOG:
    loop_log(ov, od, av, ad, m, want_d);
    break;
  case OP_SQRT:
    loop_sqrt(ov, od, av, ad, m, want_d);
    break;
  case OP_ABS:
    loop_abs(ov, od, av, ad, m, want_d);
    break;
  case OP_TANH:
    loop_tanh(ov, od, av, ad, m, want_d);
    break;
  case OP_SIGMOID:
    loop_sigmoid(ov, od, av, ad, m, want_d);
    break;
  case OP_SQR:
    loop_sqr(ov, od, av, ad, m, want_d);
    break;
  case OP_ADD:
    loop_add(ov, od, av, ad, bv, bd, k, mode, m, want_d);
    break;
  case OP_SUB:
    loop_sub(ov, od, av, ad, bv, bd, k, mode, m, want_d);
    break;
  case OP_MUL:
    loop_mul(ov, od, av, ad, bv, bd, k, mode, m, want_d);
    break;
  case OP_DIV:
    loop_div(ov, od, av, ad, bv, bd, k, mode, m, want_d);
    break;
  case OP_POW:
    loop_pow(ov, od, av, ad, bv, bd, k, mode, m, want_d);
    break;
  case OP_MIN:
    loop_min(ov, od, av, ad, bv, bd, k, mode, m, want_d);
    break;
  case OP_MAX:
    loop_max(ov, od, av, ad, bv, bd, k, mode, m, want_d);
    break;
  }
}

/* Two copies of the interpreter, with and without derivatives. */
static void run_with_d(const cnn_expr *e, expr_block *v, expr_block *d, size_t m) {
  size_t j;
  for (j = 0; j < e->ncode; j++) exec(&e->code[j], v, d, m, 1);
}

static void run_value(const cnn_expr *e, expr_block *v, expr_block *d, size_t m) {
  size_t j;
  for (j = 0; j < e->ncode; j++) exec(&e->code[j], v, d, m, 0);
}

void cnn_expr_eval(const cnn_expr *e, float *y, float *dydx, const float *x, size_t n) {
  expr_block v[EXPR_MAX_REGS + 1], d[EXPR_MAX_REGS + 1]; /* register 0 is x */
  size_t start, i;
  if (dydx)
    for (i = 0; i < EXPR_BLOCK; i++) d[0][i] = 1.0f; /* dx/dx */
  for (start = 0; start < n; start += EXPR_BLOCK) {
    size_t m = n - start < EXPR_BLOCK ? n - start : EXPR_BLOCK;
    if (e->result < 0) {
      for (i = 0; i < m; i++) y[start + i] = e->k;
      if (dydx) memset(dydx + start, 0, m * sizeof(float));
      continue;
    }
    memcpy(v[0], x + start, m * sizeof(float)); /* before y is written: they may alias */
    if (dydx)
      run_with_d(e, v, d, m);
    else
      run_value(e, v, d, m);
    memcpy(y + start, v[e->result], m * sizeof(float));
    if (dydx) memcpy(dydx + start, d[e->result], m * sizeof(float));
  }
}

const char *cnn_expr_source(const cnn_expr *e) { return e ? e->source : NULL; }

size_t cnn_expr_steps(const cnn_expr *e) { return e->ncode; }

cnn_expr_step cnn_expr_step_at(const cnn_expr *e, size_t i) {
  const instr *in = &e->code[i];
  cnn_expr_step s = {(cnn_expr_op)in->op, in->dst, in->a, in->b, in->k};
  if (OP_IS_UNARY(in->op))
    s.b = 0;
  else if (in->mode == MODE_RK)
    s.b = -1;
  else if (in->mode == MODE_KR)
    s.a = -1;
  return s;
}

int cnn_expr_result(const cnn_expr *e, float *k) {
  if (e->result < 0) *k = e->k;
  return e->result;
}

void cnn_expr_free(cnn_expr *e) {
  if (!e) return;
  cnn_free(e->source);
  cnn_free(e->code);
  cnn_free(e);
}

/* ---------------------------------------------------------------- parser */

typedef struct node {
  uint8_t op;
  int a, b; /* children (node indexes) or -1 */
  float k;  /* OP_CONST */
  int need; /* registers needed to compute it (Sethi-Ullman number) */
} node;

typedef struct compiler {
  const char *src; /* borrowed: the formula */
  size_t len;
  size_t pos;  /* next byte to read */
  node *nodes; /* owned: count of cap nodes */
  int count, cap;
  int depth;   /* current nesting, against EXPR_MAX_DEPTH */
  char *err;   /* borrowed: the caller's error buffer */
  instr *code; /* owned until handed to the cnn_expr */
  size_t ncode;
  uint32_t busy; /* temporary registers in use, bit r for register r */
  int nomem;     /* the failure was out of memory */
} compiler;

/* 1-based number of the character at byte offset off (UTF-8 aware). */
static int char_number(const compiler *c, size_t off) {
  int n = 1;
  size_t i;
  for (i = 0; i < off && i < c->len; i++)
    if (((unsigned char)c->src[i] & 0xC0) != 0x80) n++;
  return n;
}

/* Formats an error and returns -1, the parser's failure value. */
static int fail(compiler *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int fail(compiler *c, const char *fmt, ...) {
  va_list ap;
  if (c->err) {
    va_start(ap, fmt);
    vsnprintf(c->err, CNN_ERRMAX, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* "at character 5 ('*'): expected <what>" */
static int expected_at(compiler *c, size_t off, const char *what) {
  char shown[16];
  if (off >= c->len) {
    snprintf(shown, sizeof shown, "end of formula");
  } else {
    unsigned char ch = (unsigned char)c->src[off];
    size_t n = 1;
    while (ch >= 0xC2 && n < 4 && off + n < c->len &&
           ((unsigned char)c->src[off + n] & 0xC0) == 0x80)
      n++;
    if (ch > 0x20 && ch < 0x7F)
      snprintf(shown, sizeof shown, "'%c'", ch);
    else if (n > 1)
      snprintf(shown, sizeof shown, "'%.*s'", (int)n, c->src + off);
    else
      snprintf(shown, sizeof shown, "byte 0x%02X", ch);
  }
  return fail(c, "at character %d (%s): expected %s", char_number(c, off), shown, what);
}

static int unclosed(compiler *c, size_t open) {
  return fail(c, "unbalanced parentheses: '(' at character %d is never closed",
              char_number(c, open));
}

static void skip_ws(compiler *c) {
  while (c->pos < c->len) {
    char ch = c->src[c->pos];
    if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') break;
    c->pos++;
  }
}

/* The next non-blank byte, or -1 at the end. */
static int peek(compiler *c) {
  skip_ws(c);
  return c->pos < c->len ? (unsigned char)c->src[c->pos] : -1;
}

static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static int is_name_start(int ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static int new_node(compiler *c, int op, int a, int b, float k) {
  node *n;
  if (c->count >= c->cap) return fail(c, "formula too complex"); /* cannot happen: see cap */
  n = &c->nodes[c->count];
  n->op = (uint8_t)op;
  n->a = a;
  n->b = b;
  n->k = k;
  if (op == OP_CONST || op == OP_X)
    n->need = 0; /* x lives in register 0, constants in code */
  else if (b < 0)
    n->need = c->nodes[a].need > 1 ? c->nodes[a].need : 1;
  else {
    int l = c->nodes[a].need, r = c->nodes[b].need;
    n->need = l == r ? l + 1 : (l > r ? l : r);
  }
  return c->count++;
}

static int make_unary(compiler *c, int op, int a) {
  if (c->nodes[a].op == OP_CONST) { /* fold, reusing the constant's node */
    c->nodes[a].k = d_apply(op, (dual){c->nodes[a].k, 0.0f}, (dual){0.0f, 0.0f}).v;
    return a;
  }
  return new_node(c, op, a, -1, 0.0f);
}

static int make_binary(compiler *c, int op, int a, int b) {
  if (c->nodes[a].op == OP_CONST && c->nodes[b].op == OP_CONST) {
    c->nodes[a].k = d_apply(op, (dual){c->nodes[a].k, 0.0f}, (dual){c->nodes[b].k, 0.0f}).v;
    return a;
  }
  if (op == OP_POW && c->nodes[b].op == OP_CONST && c->nodes[b].k == 2.0f)
    return new_node(c, OP_SQR, a, -1, 0.0f);
  return new_node(c, op, a, b, 0.0f);
}

/* strtod of a validated token with '.' as the decimal point in any locale. */
static int strtod_c(const char *s, double *out) {
  locale_t cl = newlocale(LC_ALL_MASK, "C", (locale_t)0), old;
  if (cl == (locale_t)0) return -1;
  old = uselocale(cl);
  *out = strtod(s, NULL);
  uselocale(old);
  freelocale(cl);
  return 0;
}

static int parse_expr(compiler *c);
static int parse_unary(compiler *c);

/* Every recursion of the parser passes an opener: '(', a function call, a
 * sign or '^'. Each one nests a level; the whole formula is level 0. */
static int nest_enter(compiler *c, size_t at) {
  if (c->depth >= EXPR_MAX_DEPTH)
    return fail(c, "formula nested more than %d levels deep at character %d", EXPR_MAX_DEPTH,
                char_number(c, at));
  c->depth++;
  return 0;
}

/* digits ['.' digits] [('e'|'E') ['+'|'-'] digits], at least one mantissa digit */
static int parse_number(compiler *c) {
  size_t at = c->pos, n;
  char tok[CNN_EXPR_MAX_LEN + 1];
  double dv;
  float f;
  while (c->pos < c->len && is_digit(c->src[c->pos])) c->pos++;
  if (c->pos < c->len && c->src[c->pos] == '.') c->pos++;
  while (c->pos < c->len && is_digit(c->src[c->pos])) c->pos++;
  if (c->pos < c->len && (c->src[c->pos] == 'e' || c->src[c->pos] == 'E')) {
    c->pos++;
    if (c->pos < c->len && (c->src[c->pos] == '+' || c->src[c->pos] == '-')) c->pos++;
    if (c->pos >= c->len || !is_digit(c->src[c->pos]))
      return expected_at(c, c->pos, "a digit in the exponent");
    while (c->pos < c->len && is_digit(c->src[c->pos])) c->pos++;
  }
  n = c->pos - at; /* <= len <= CNN_EXPR_MAX_LEN */
  memcpy(tok, c->src + at, n);
  tok[n] = '\0';
  if (strtod_c(tok, &dv)) {
    c->nomem = 1;
    return fail(c, "out of memory");
  }
  f = (float)dv;
  if (isinf(f)) return fail(c, "number out of range at character %d", char_number(c, at));
  return new_node(c, OP_CONST, -1, -1, f);
}

/* x, or name '(' expr (',' expr)* ')' */
static int parse_name(compiler *c) {
  size_t at = c->pos, n, open;
  int f = -1, nargs = 0, args[2] = {-1, -1};
  size_t i;
  while (c->pos < c->len && (is_name_start(c->src[c->pos]) || is_digit(c->src[c->pos]))) c->pos++;
  n = c->pos - at;
  if (n == 1 && c->src[at] == 'x') return new_node(c, OP_X, -1, -1, 0.0f);
  for (i = 0; i < sizeof functions / sizeof functions[0]; i++)
    if (strlen(functions[i].name) == n && memcmp(functions[i].name, c->src + at, n) == 0)
      f = (int)i;
  if (peek(c) != '(') {
    if (f >= 0) {
      char what[32];
      snprintf(what, sizeof what, "'(' after '%s'", functions[f].name);
      return expected_at(c, c->pos, what);
    }
    return fail(c, "unknown name '%.*s' at character %d (the variable is x)", n > 32 ? 32 : (int)n,
                c->src + at, char_number(c, at));
  }
  if (f < 0)
    return fail(c, "unknown function '%.*s' at character %d", n > 32 ? 32 : (int)n, c->src + at,
                char_number(c, at));
  if (nest_enter(c, at)) return -1;
  open = c->pos++;
  for (;;) {
    int r = parse_expr(c), ch;
    if (r < 0) return -1;
    if (nargs < 2) args[nargs] = r;
    nargs++;
    ch = peek(c);
    if (ch == ',') {
      c->pos++;
      continue;
    }
    if (ch == ')') {
      c->pos++;
      break;
    }
    if (ch < 0) return unclosed(c, open);
    return expected_at(c, c->pos, "an operator, ',' or ')'");
  }
  c->depth--;
  if (nargs != functions[f].nargs)
    return fail(c, "'%s' takes %d argument%s, got %d at character %d", functions[f].name,
                functions[f].nargs, functions[f].nargs == 1 ? "" : "s", nargs, char_number(c, at));
  if (functions[f].nargs == 1) return make_unary(c, functions[f].op, args[0]);
  return make_binary(c, functions[f].op, args[0], args[1]);
}

static int parse_atom(compiler *c) {
  int ch = peek(c);
  if (is_digit(ch) || (ch == '.' && c->pos + 1 < c->len && is_digit(c->src[c->pos + 1])))
    return parse_number(c);
  if (ch == '(') {
    size_t open = c->pos;
    int r;
    if (nest_enter(c, open)) return -1;
    c->pos++;
    r = parse_expr(c);
    c->depth--;
    if (r < 0) return -1;
    ch = peek(c);
    if (ch == ')') {
      c->pos++;
      return r;
    }
    if (ch < 0) return unclosed(c, open);
    return expected_at(c, c->pos, "an operator or ')'");
  }
  if (is_name_start(ch)) return parse_name(c);
  return expected_at(c, c->pos, "a number, x, a function or '('");
}

/* atom ['^' unary]: right-associative, and tighter than a sign on its left */
static int parse_power(compiler *c) {
  int a = parse_atom(c), b;
  if (a < 0 || peek(c) != '^') return a;
  if (nest_enter(c, c->pos)) return -1;
  c->pos++;
  b = parse_unary(c);
  c->depth--;
  if (b < 0) return -1;
  return make_binary(c, OP_POW, a, b);
}

static int parse_unary(compiler *c) {
  int ch = peek(c), r;
  size_t at = c->pos;
  if (ch != '-' && ch != '+') return parse_power(c);
  if (nest_enter(c, at)) return -1;
  c->pos++;
  r = parse_unary(c);
  if (r >= 0 && ch == '-') r = make_unary(c, OP_NEG, r);
  c->depth--;
  return r;
}

static int parse_term(compiler *c) {
  int a = parse_unary(c);
  while (a >= 0) {
    int ch = peek(c), b;
    if (ch != '*' && ch != '/') break;
    c->pos++;
    if ((b = parse_unary(c)) < 0) return -1;
    a = make_binary(c, ch == '*' ? OP_MUL : OP_DIV, a, b);
  }
  return a;
}

static int parse_expr(compiler *c) {
  int a = parse_term(c);
  while (a >= 0) {
    int ch = peek(c), b;
    if (ch != '+' && ch != '-') break;
    c->pos++;
    if ((b = parse_term(c)) < 0) return -1;
    a = make_binary(c, ch == '+' ? OP_ADD : OP_SUB, a, b);
  }
  return a;
}

/* ---------------------------------------------------------------- code generation */

typedef struct operand {
  int is_k; /* the constant k, else register reg */
  int reg;  /* 0 is x, 1.. temporaries */
  float k;
} operand;

/* The lowest free temporary register, or -1. */
static int alloc_reg(compiler *c) {
  int r;
  for (r = 1; r <= EXPR_MAX_REGS; r++)
    if (!(c->busy & (1u << r))) {
      c->busy |= 1u << r;
      return r;
    }
  return fail(c, "formula too complex");
}

static void release(compiler *c, const operand *o) {
  if (!o->is_k && o->reg > 0) c->busy &= ~(1u << o->reg);
}

static void emit(compiler *c, int op, int mode, int dst, int a, int b, float k) {
  instr *in = &c->code[c->ncode++];
  in->op = (uint8_t)op;
  in->mode = (uint8_t)mode;
  in->dst = (uint8_t)dst;
  in->a = (uint8_t)a;
  in->b = (uint8_t)b;
  in->k = k;
}

/* Emits code for node ni and says where its result is. The destination is
 * taken before the operands' registers are released, so it is never one of
 * them (the loops rely on that). Returns 0 or -1. */
static int gen(compiler *c, int ni, operand *out) {
  const node *n = &c->nodes[ni];
  operand a, b;
  int dst;
  out->is_k = 0;
  out->reg = 0;
  out->k = 0.0f;
  if (n->op == OP_CONST) {
    out->is_k = 1;
    out->k = n->k;
    return 0;
  }
  if (n->op == OP_X) return 0;
  if (OP_IS_UNARY(n->op)) {
    if (gen(c, n->a, &a)) return -1; /* never a constant: those were folded */
    if ((dst = alloc_reg(c)) < 0) return -1;
    emit(c, n->op, MODE_RR, dst, a.reg, 0, 0.0f);
    release(c, &a);
    out->reg = dst;
    return 0;
  }
  /* The operand needing more registers first, so it does not wait holding one. */
  if (c->nodes[n->b].need > c->nodes[n->a].need) {
    if (gen(c, n->b, &b) || gen(c, n->a, &a)) return -1;
  } else {
    if (gen(c, n->a, &a) || gen(c, n->b, &b)) return -1;
  }
  if ((dst = alloc_reg(c)) < 0) return -1;
  emit(c, n->op, a.is_k ? MODE_KR : (b.is_k ? MODE_RK : MODE_RR), dst, a.reg, b.reg,
       a.is_k ? a.k : b.k);
  release(c, &a);
  release(c, &b);
  out->reg = dst;
  return 0;
}

int cnn_expr_compile(cnn_expr **out, const char *src, char *err) {
  compiler c;
  cnn_expr *e = NULL;
  operand res;
  size_t len;
  int root, rc = CNN_OK;

  *out = NULL;
  memset(&c, 0, sizeof c);
  len = src ? strlen(src) : 0;
  c.src = src;
  c.len = len;
  c.err = err;
  if (peek(&c) < 0) return cnn_error(err, CNN_ERROR, "empty formula");
  if (len > CNN_EXPR_MAX_LEN)
    return cnn_error(err, CNN_ERROR, "formula too long: %zu characters, at most %d", len,
                     CNN_EXPR_MAX_LEN);

  /* Every node consumes at least one character, so len nodes always suffice. */
  c.cap = (int)len;
  c.nodes = cnn_calloc(len, sizeof(node));
  if (!c.nodes) {
    rc = cnn_nomem(err);
    goto done;
  }
  c.pos = 0;
  root = parse_expr(&c);
  if (root < 0) {
    rc = c.nomem ? CNN_NOMEM : CNN_ERROR;
    goto done;
  }
  if (peek(&c) == ')') {
    rc =
        cnn_error(err, CNN_ERROR, "unbalanced parentheses: ')' at character %d has no matching '('",
                  char_number(&c, c.pos));
    goto done;
  }
  if (c.pos < c.len) {
    expected_at(&c, c.pos, "an operator or the end of the formula");
    rc = CNN_ERROR;
    goto done;
  }

  c.code = cnn_calloc((size_t)c.count, sizeof(instr));
  e = cnn_calloc(1, sizeof *e);
  if (e) e->source = cnn_malloc(len + 1);
  if (!c.code || !e || !e->source) {
    rc = cnn_nomem(err);
    goto done;
  }
  memcpy(e->source, src, len + 1);
  if (gen(&c, root, &res)) {
    rc = CNN_ERROR;
    goto done;
  }
  e->code = c.code;
  c.code = NULL;
  e->ncode = c.ncode;
  e->result = res.is_k ? -1 : res.reg;
  e->k = res.k;
  *out = e;
  e = NULL;
done:
  cnn_free(c.nodes);
  cnn_free(c.code);
  cnn_expr_free(e);
  return rc;
}
