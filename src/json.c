/*
 * json.c - a strict RFC 8259 JSON reader into a cnn_json tree, and the cnn_buf
 * string builder that writes JSON and other text.
 *
 * Reading is one recursive-descent pass over text[0..len), which need not be
 * NUL-terminated. Hostile input is bounded before it costs anything: the size
 * (CNN_JSON_MAX_BYTES) is checked first, nesting (CNN_JSON_MAX_DEPTH) bounds the
 * recursion, the number of values (CNN_JSON_MAX_VALUES) bounds the tree's
 * memory, and duplicate keys are found through a hash set once an object grows,
 * so a huge object cannot cost quadratic time. The first error in text order is
 * reported as "at offset N: ..." with N the 0-based byte offset of the first
 * wrong byte (of the opening quote for an unterminated string, of the number
 * for one out of range, of the second occurrence of a duplicate key).
 *
 * Numbers and locales: the grammar is checked here, then the token is converted
 * by strtod, which rounds correctly but reads the decimal point of the current
 * locale. A host that called setlocale(LC_NUMERIC, "de_DE") would read "0.5" as
 * 0. So every conversion, and every cnn_buf_printf / cnn_buf_json_number, runs
 * with the "C" locale installed for this thread only (POSIX 2008 newlocale +
 * uselocale; in glibc newlocale("C") returns a static object, so this is cheap
 * and does not allocate). Other threads and the process locale are untouched.
 *
 * Everything is allocated with cnn_malloc and friends; a tree is freed by
 * cnn_json_free on its root, including after a failed parse.
 *
 * Why a reader of our own when Debian packages jansson (2.14) and cJSON
 * (1.7.15): measured with both, neither gives what callers and tests rely on.
 *  - Error positions and texts. The header promises the offset of the first
 *    wrong byte, and test_json.c, the SQL tests and users see texts like "at
 *    offset 7: expected ',' or '}' in object". jansson reports where it
 *    stopped reading, after the token: [1 2] at 4 (first wrong byte: 3),
 *    {"a":1 "b":2} at 10 (7), {"a":1,} at 8 (7), a duplicate key at the end of
 *    the second key (20, not 12), with one code (invalid_syntax) for nearly
 *    every mistake, so our texts cannot be derived from its errors. cJSON
 *    gives a position and no reason at all.
 *  - Duplicate keys: cJSON keeps both; jansson refuses them (an option).
 *  - Numbers: jansson refuses integers beyond 64 bits ("too big integer")
 *    unless all numbers are read as reals; cJSON reads 1e400 as infinity
 *    (the header promises an error) and takes 01.
 *  - Embedded NULs: jansson refuses \u0000 as we do; cJSON silently cuts
 *    "a\u0000b" to "a".
 *  - Depth: both caps are compile-time constants (jansson 2048, cJSON 1000);
 *    ours is 64, so a library tree would need a second walk to enforce it.
 *  - Memory: the allocator hooks of both (json_set_alloc_funcs, cJSON_InitHooks)
 *    are process-wide, so the extension would take over the allocator of any
 *    other user of the library in the host process; without them, the
 *    fault-injection tests (test_oom.c, the SQL OOM test) cannot reach the
 *    library's allocations. With the hooks installed, jansson gives every
 *    block back at each of the 60 allocation failures of parsing a small
 *    spec, but reports each as error code 0 (unknown) with an empty text:
 *    out of memory cannot be told from bad input.
 *  - The tree: json.h exposes cnn_json (items and keys arrays, read directly
 *    by spec.c, options.c and optim.c), so a library would parse into its tree and be
 *    copied into ours, twice the allocations for the same result; and the
 *    writer half of this file (cnn_buf, shortest float that reads back)
 *    stays either way.
 * What both do as we do: NaN and Infinity refused, underflow read as 0.
 */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

/* ---------------------------------------------------------------- locale */

typedef struct c_locale_scope {
  locale_t c;   /* owned: the "C" locale */
  locale_t old; /* borrowed: this thread's locale before */
} c_locale_scope;

/* Installs the "C" locale for the calling thread; returns -1 if it could not
 * be created (only under memory exhaustion). */
static int c_locale_enter(c_locale_scope *s) {
  s->c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  if (s->c == (locale_t)0) return -1;
  s->old = uselocale(s->c);
  return 0;
}

static void c_locale_leave(c_locale_scope *s) {
  uselocale(s->old);
  freelocale(s->c);
}

/* strtod of a NUL-terminated, already validated token with '.' as the decimal
 * point. Returns -1 if the locale could not be created. */
static int strtod_c(const char *s, double *out) {
  c_locale_scope scope;
  if (c_locale_enter(&scope)) return -1;
  *out = strtod(s, NULL);
  c_locale_leave(&scope);
  return 0;
}

/* ---------------------------------------------------------------- tree */

/* Frees what v owns, not v itself (v may be an element of an items array). */
static void json_free_contents(cnn_json *v) {
  size_t i;
  if (!v) return;
  cnn_free(v->string);
  if (v->items)
    for (i = 0; i < v->count; i++) json_free_contents(&v->items[i]);
  if (v->keys)
    for (i = 0; i < v->count; i++) cnn_free(v->keys[i]);
  cnn_free(v->items);
  cnn_free(v->keys);
  memset(v, 0, sizeof *v);
}

void cnn_json_free(cnn_json *v) {
  json_free_contents(v);
  cnn_free(v);
}

const cnn_json *cnn_json_get(const cnn_json *v, const char *key) {
  size_t i;
  if (!v || !key || v->type != CNN_JSON_OBJECT) return NULL;
  for (i = 0; i < v->count; i++)
    if (strcmp(v->keys[i], key) == 0) return &v->items[i];
  return NULL;
}

const char *cnn_json_type_name(cnn_json_type t) {
  switch (t) {
  case CNN_JSON_NULL:
    return "null";
  case CNN_JSON_FALSE:
  case CNN_JSON_TRUE:
    return "boolean";
  case CNN_JSON_NUMBER:
    return "number";
  case CNN_JSON_STRING:
    return "string";
  case CNN_JSON_ARRAY:
    return "array";
  case CNN_JSON_OBJECT:
    return "object";
  }
  return "unknown";
}

/* ---------------------------------------------------------------- parser */

typedef struct parser {
  const unsigned char *s; /* borrowed: the input */
  size_t len;             /* bytes in s */
  size_t pos;             /* next byte to read */
  size_t values;          /* values created so far (CNN_JSON_MAX_VALUES) */
  char *err;              /* borrowed: the caller's error buffer */
} parser;

static int parse_value(parser *p, cnn_json *v, int depth, const char *expected);

static int fail_at(parser *p, size_t off, const char *what) {
  return cnn_error(p->err, CNN_ERROR, "at offset %zu: %s", off, what);
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The 4 hex digits at s[i..i+4) as a code unit, or -1. */
static long hex4(const parser *p, size_t i) {
  long u = 0;
  size_t k;
  if (i > p->len || p->len - i < 4) return -1;
  for (k = 0; k < 4; k++) {
    int h = hex_value(p->s[i + k]);
    if (h < 0) return -1;
    u = u * 16 + h;
  }
  return u;
}

/* Length of the well-formed UTF-8 sequence at s[i..end) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_length(const unsigned char *s, size_t i, size_t end) {
  unsigned char c = s[i], lo = 0x80, hi = 0xBF;
  size_t n, k;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else
    return 0;
  if (end - i < n) return 0;
  for (k = 1; k < n; k++) {
    unsigned char b = s[i + k];
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
  }
  return n;
}

static size_t utf8_encode(char *out, unsigned long cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parses the string whose opening quote is at p->pos into a new NUL-terminated
 * UTF-8 copy. Every escape shrinks or keeps the length (\uXXXX: 6 bytes -> at
 * most 3, a surrogate pair: 12 -> 4), so the raw length bounds the output. */
static int parse_string(parser *p, char **out) {
  const unsigned char *s = p->s;
  size_t open = p->pos, start = open + 1, end = start, i, o = 0;
  int closed = 0, rc = CNN_OK;
  char *buf = NULL;

  *out = NULL;
  while (end < p->len && s[end] != '"') end += (s[end] == '\\') ? 2 : 1;
  if (end < p->len)
    closed = 1;
  else
    end = p->len; /* a trailing backslash may have stepped past the end */

  buf = cnn_malloc(end - start + 1);
  if (!buf) return cnn_nomem(p->err);
  for (i = start; i < end;) {
    unsigned char c = s[i];
    if (c == '\\') {
      unsigned char e;
      if (i + 1 >= end) break; /* the input ends inside the escape */
      e = s[i + 1];
      switch (e) {
      case '"':
        buf[o++] = '"';
        break;
      case '\\':
        buf[o++] = '\\';
        break;
      case '/':
        buf[o++] = '/';
        break;
      case 'b':
        buf[o++] = '\b';
        break;
      case 'f':
        buf[o++] = '\f';
        break;
      case 'n':
        buf[o++] = '\n';
        break;
      case 'r':
        buf[o++] = '\r';
        break;
      case 't':
        buf[o++] = '\t';
        break;
      case 'u': {
        long u = hex4(p, i + 2);
        unsigned long cp;
        char what[64];
        if (u < 0) {
          rc = fail_at(p, i, "expected 4 hex digits after \\u");
          goto done;
        }
        if (u == 0) {
          rc = fail_at(p, i, "\\u0000 is not allowed in a string");
          goto done;
        }
        snprintf(what, sizeof what, "unpaired surrogate \\u%04lX", (unsigned long)u);
        if (u >= 0xDC00 && u <= 0xDFFF) {
          rc = fail_at(p, i, what);
          goto done;
        }
        cp = (unsigned long)u;
        if (u >= 0xD800 && u <= 0xDBFF) {
          long lo;
          if (i + 7 >= end || s[i + 6] != '\\' || s[i + 7] != 'u') {
            rc = fail_at(p, i, what);
            goto done;
          }
          lo = hex4(p, i + 8);
          if (lo < 0) {
            rc = fail_at(p, i + 6, "expected 4 hex digits after \\u");
            goto done;
          }
          if (lo < 0xDC00 || lo > 0xDFFF) {
            rc = fail_at(p, i, what);
            goto done;
          }
          cp = 0x10000 + (((unsigned long)u - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
          i += 6;
        }
        o += utf8_encode(buf + o, cp);
        i += 4;
        break;
      }
      default: {
        char what[64];
        if (e >= 0x20 && e < 0x7F)
          snprintf(what, sizeof what, "invalid escape '\\%c' in a string", e);
        else
          snprintf(what, sizeof what, "invalid escape in a string");
        rc = fail_at(p, i, what);
        goto done;
      }
      }
      i += 2;
    } else if (c < 0x20) {
      char what[80];
      snprintf(what, sizeof what, "control character 0x%02X must be escaped in a string", c);
      rc = fail_at(p, i, what);
      goto done;
    } else {
      size_t n = utf8_length(s, i, end);
      if (n == 0) {
        rc = fail_at(p, i, "invalid UTF-8 in a string");
        goto done;
      }
      memcpy(buf + o, s + i, n);
      o += n;
      i += n;
    }
  }
  if (!closed) {
    rc = fail_at(p, open, "unterminated string");
    goto done;
  }
  buf[o] = '\0';
  *out = buf;
  buf = NULL;
  p->pos = end + 1;
done:
  cnn_free(buf);
  return rc;
}

static int parse_number(parser *p, cnn_json *v) {
  const unsigned char *s = p->s;
  size_t start = p->pos, i = start, n;
  char small[64], *tok = small;
  double x;
  int rc = CNN_OK;

  if (s[i] == '-') i++;
  if (i >= p->len || !is_digit(s[i])) return fail_at(p, i, "expected a digit after '-'");
  if (s[i] == '0') {
    i++;
    if (i < p->len && is_digit(s[i]))
      return fail_at(p, i, "leading zeros are not allowed in a number");
  } else {
    while (i < p->len && is_digit(s[i])) i++;
  }
  if (i < p->len && s[i] == '.') {
    i++;
    if (i >= p->len || !is_digit(s[i])) return fail_at(p, i, "expected a digit after '.'");
    while (i < p->len && is_digit(s[i])) i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= p->len || !is_digit(s[i])) return fail_at(p, i, "expected a digit in the exponent");
    while (i < p->len && is_digit(s[i])) i++;
  }

  /* strtod needs a terminated copy: the input need not be terminated. */
  n = i - start;
  if (n >= sizeof small) {
    tok = cnn_malloc(n + 1);
    if (!tok) return cnn_nomem(p->err);
  }
  memcpy(tok, s + start, n);
  tok[n] = '\0';
  if (strtod_c(tok, &x)) {
    rc = cnn_nomem(p->err);
    goto done;
  }
  /* Overflow is an error; underflow rounds towards 0 like any other rounding. */
  if (isinf(x)) {
    rc = fail_at(p, start, "number out of range");
    goto done;
  }
  v->type = CNN_JSON_NUMBER;
  v->number = x;
  p->pos = i;
done:
  if (tok != small) cnn_free(tok);
  return rc;
}

static int parse_literal(parser *p, cnn_json *v, const char *word, cnn_json_type t) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
    char what[32];
    snprintf(what, sizeof what, "expected '%s'", word);
    return fail_at(p, p->pos, what);
  }
  v->type = t;
  p->pos += n;
  return CNN_OK;
}

/* Grows an items (and keys) array to hold one more element; *cap is updated
 * only when every array grew. */
static int grow(parser *p, cnn_json *v, size_t *cap, int with_keys) {
  size_t want = *cap ? *cap * 2 : 4, bytes;
  void *q;
  if (v->count < *cap) return CNN_OK;
  if (cnn_mul_size(&bytes, want, sizeof(cnn_json))) return cnn_nomem(p->err);
  q = cnn_realloc(v->items, bytes);
  if (!q) return cnn_nomem(p->err);
  v->items = q;
  if (with_keys) {
    if (cnn_mul_size(&bytes, want, sizeof(char *))) return cnn_nomem(p->err);
    q = cnn_realloc(v->keys, bytes);
    if (!q) return cnn_nomem(p->err);
    v->keys = q;
  }
  *cap = want;
  return CNN_OK;
}

static int parse_array(parser *p, cnn_json *v, int depth) {
  size_t cap = 0;
  int rc;
  v->type = CNN_JSON_ARRAY;
  p->pos++; /* '[' */
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == ']') {
    p->pos++;
    return CNN_OK;
  }
  for (;;) {
    if ((rc = grow(p, v, &cap, 0)) != CNN_OK) return rc;
    /* Counted before it is parsed so that a half-built child is freed too. */
    memset(&v->items[v->count], 0, sizeof(cnn_json));
    v->count++;
    rc = parse_value(p, &v->items[v->count - 1], depth + 1,
                     v->count == 1 ? "expected a value or ']'" : "expected a value");
    if (rc != CNN_OK) return rc;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == ']') {
      p->pos++;
      return CNN_OK;
    }
    return fail_at(p, p->pos, "expected ',' or ']' in array");
  }
}

/* Duplicate-key detection: a linear scan while an object is small, then an
 * open-addressing hash set of item indexes so a hostile object with a
 * million keys costs linear time. */
#define KEYSET_LINEAR 16

typedef struct keyset {
  size_t *slot; /* owned: index + 1 of a key, 0 = empty; NULL while linear */
  size_t cap;   /* slots, a power of two */
} keyset;

static uint64_t key_hash(const char *k) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  while (*k) h = (h ^ (unsigned char)*k++) * 1099511628211u;
  return h;
}

static void keyset_put(keyset *ks, char **keys, size_t idx) {
  size_t m = ks->cap - 1, j = (size_t)key_hash(keys[idx]) & m;
  while (ks->slot[j]) j = (j + 1) & m;
  ks->slot[j] = idx + 1;
}

/* Returns 1 if keys[n] equals an earlier key, 0 if not, -1 out of memory. */
static int keyset_seen(keyset *ks, char **keys, size_t n) {
  size_t i, m, j;
  if (n < KEYSET_LINEAR) {
    for (i = 0; i < n; i++)
      if (strcmp(keys[i], keys[n]) == 0) return 1;
    return 0;
  }
  if (ks->slot == NULL || (n + 1) * 2 > ks->cap) { /* (re)build at most half full */
    size_t cap = ks->cap ? ks->cap * 2 : 64, bytes;
    size_t *slot;
    while (cap < (n + 1) * 2) cap *= 2;
    if (cnn_mul_size(&bytes, cap, sizeof(size_t))) return -1;
    slot = cnn_calloc(cap, sizeof(size_t));
    if (!slot) return -1;
    cnn_free(ks->slot);
    ks->slot = slot;
    ks->cap = cap;
    for (i = 0; i < n; i++) keyset_put(ks, keys, i);
  }
  m = ks->cap - 1;
  for (j = (size_t)key_hash(keys[n]) & m; ks->slot[j]; j = (j + 1) & m)
    if (strcmp(keys[ks->slot[j] - 1], keys[n]) == 0) return 1;
  ks->slot[j] = n + 1;
  return 0;
}

/* Writes key as a JSON string for an error message, shortened to about 40
 * bytes of text without cutting a UTF-8 sequence. */
static void quote_key(char *out, size_t outsz, const char *key) {
  size_t o = 0, i = 0;
  out[o++] = '"';
  while (key[i] && o + 12 < outsz) {
    unsigned char c = (unsigned char)key[i];
    if (o > 40 && (c & 0xC0) != 0x80) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, outsz - o, "\\u%04X", c);
    } else {
      out[o++] = (char)c;
    }
    i++;
  }
  out[o++] = '"';
  out[o] = '\0';
}

static int parse_object(parser *p, cnn_json *v, int depth) {
  size_t cap = 0;
  keyset ks = {NULL, 0};
  int rc = CNN_OK;
  v->type = CNN_JSON_OBJECT;
  p->pos++; /* '{' */
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == '}') {
    p->pos++;
    return CNN_OK;
  }
  for (;;) {
    size_t key_at;
    int seen;
    if (p->pos >= p->len || p->s[p->pos] != '"') {
      rc = fail_at(p, p->pos,
                   v->count == 0 ? "expected a string key or '}'" : "expected a string key");
      goto done;
    }
    if ((rc = grow(p, v, &cap, 1)) != CNN_OK) goto done;
    memset(&v->items[v->count], 0, sizeof(cnn_json));
    v->keys[v->count] = NULL;
    v->count++;
    key_at = p->pos;
    if ((rc = parse_string(p, &v->keys[v->count - 1])) != CNN_OK) goto done;
    seen = keyset_seen(&ks, v->keys, v->count - 1);
    if (seen < 0) {
      rc = cnn_nomem(p->err);
      goto done;
    }
    if (seen) {
      char q[64], what[96];
      quote_key(q, sizeof q, v->keys[v->count - 1]);
      snprintf(what, sizeof what, "duplicate key %s", q);
      rc = fail_at(p, key_at, what);
      goto done;
    }
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != ':') {
      rc = fail_at(p, p->pos, "expected ':' after the key");
      goto done;
    }
    p->pos++;
    if ((rc = parse_value(p, &v->items[v->count - 1], depth + 1, "expected a value")) != CNN_OK)
      goto done;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      p->pos++;
      skip_ws(p);
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == '}') {
      p->pos++;
      goto done;
    }
    rc = fail_at(p, p->pos, "expected ',' or '}' in object");
    goto done;
  }
done:
  cnn_free(ks.slot);
  return rc;
}

/* Parses one value at p->pos (after whitespace) into v, which is zeroed. depth
 * counts the containers v sits in; `expected` is the message when no value
 * starts here. On failure v is left consistent for json_free_contents. */
static int parse_value(parser *p, cnn_json *v, int depth, const char *expected) {
  unsigned char c;
  skip_ws(p);
  if (p->pos >= p->len) return fail_at(p, p->pos, expected);
  if (++p->values > CNN_JSON_MAX_VALUES) {
    char what[64];
    snprintf(what, sizeof what, "more than %u values", (unsigned)CNN_JSON_MAX_VALUES);
    return fail_at(p, p->pos, what);
  }
  c = p->s[p->pos];
  switch (c) {
  case '{':
  case '[':
    if (depth >= CNN_JSON_MAX_DEPTH) {
      char what[64];
      snprintf(what, sizeof what, "nested deeper than %d levels", CNN_JSON_MAX_DEPTH);
      return fail_at(p, p->pos, what);
    }
    return c == '{' ? parse_object(p, v, depth) : parse_array(p, v, depth);
  case '"':
    v->type = CNN_JSON_STRING;
    return parse_string(p, &v->string);
  case 't':
    return parse_literal(p, v, "true", CNN_JSON_TRUE);
  case 'f':
    return parse_literal(p, v, "false", CNN_JSON_FALSE);
  case 'n':
    return parse_literal(p, v, "null", CNN_JSON_NULL);
  default:
    if (c == '-' || is_digit(c)) return parse_number(p, v);
    return fail_at(p, p->pos, expected);
  }
}

int cnn_json_parse(cnn_json **out, const char *text, size_t len, char *err) {
  parser p;
  cnn_json *root = NULL;
  int rc = CNN_OK;

  *out = NULL;
  if (!text) len = 0;
  if (len > CNN_JSON_MAX_BYTES)
    return cnn_error(err, CNN_ERROR, "input of %zu bytes is larger than the limit of %u bytes", len,
                     (unsigned)CNN_JSON_MAX_BYTES);
  p.s = (const unsigned char *)text;
  p.len = len;
  p.pos = 0;
  p.values = 0;
  p.err = err;
  root = cnn_calloc(1, sizeof *root);
  if (!root) return cnn_nomem(err);
  if ((rc = parse_value(&p, root, 0, "expected a value")) != CNN_OK) goto done;
  skip_ws(&p);
  if (p.pos < p.len) {
    rc = fail_at(&p, p.pos, "expected the end of the input after the value");
    goto done;
  }
  *out = root;
  root = NULL;
done:
  cnn_json_free(root);
  return rc;
}

/* ---------------------------------------------------------------- cnn_buf */

/* Makes room for n more bytes and the terminating NUL; 0 or -1 (failed). */
static int buf_reserve(cnn_buf *b, size_t n) {
  size_t need, cap;
  char *d;
  if (b->failed) return -1;
  if (cnn_add_size(&need, b->len, n) || cnn_add_size(&need, need, 1)) goto fail;
  if (need <= b->cap) return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  d = cnn_realloc(b->data, cap);
  if (!d) goto fail;
  b->data = d;
  b->cap = cap;
  return 0;
fail:
  b->failed = 1;
  return -1;
}

void cnn_buf_append(cnn_buf *b, const char *s, size_t n) {
  if (buf_reserve(b, n)) return;
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void cnn_buf_puts(cnn_buf *b, const char *s) { cnn_buf_append(b, s, strlen(s)); }

void cnn_buf_printf(cnn_buf *b, const char *fmt, ...) {
  va_list ap;
  c_locale_scope scope;
  int n;
  if (b->failed) return;
  if (c_locale_enter(&scope)) {
    b->failed = 1;
    return;
  }
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap); /* measure, then format in place */
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
  } else if (buf_reserve(b, (size_t)n) == 0) {
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
  }
  c_locale_leave(&scope);
}

void cnn_buf_json_string(cnn_buf *b, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run = 0, end;
  if (!s) {
    cnn_buf_puts(b, "null");
    return;
  }
  end = strlen(s);
  cnn_buf_append(b, "\"", 1);
  /* Copies runs of plain bytes in one append; escapes the rest. */
  while (i < end) {
    unsigned char c = u[i];
    size_t n = c < 0x80 ? 1 : utf8_length(u, i, end);
    const char *esc = NULL;
    char tmp[8];
    if (c == '"')
      esc = "\\\"";
    else if (c == '\\')
      esc = "\\\\";
    else if (c == '\n')
      esc = "\\n";
    else if (c == '\r')
      esc = "\\r";
    else if (c == '\t')
      esc = "\\t";
    else if (c == '\b')
      esc = "\\b";
    else if (c == '\f')
      esc = "\\f";
    else if (c < 0x20) {
      snprintf(tmp, sizeof tmp, "\\u%04X", c);
      esc = tmp;
    } else if (n == 0) {
      esc = "\\uFFFD"; /* invalid UTF-8 byte: the output must stay valid JSON */
      n = 1;
    }
    if (esc) {
      cnn_buf_append(b, s + i - run, run);
      run = 0;
      cnn_buf_puts(b, esc);
    } else {
      run += n;
    }
    i += n;
  }
  cnn_buf_append(b, s + i - run, run);
  cnn_buf_append(b, "\"", 1);
}

/* Formats x with %.*g for each precision in [lo, hi] and keeps the first text
 * that reads back to the same value, as a float when `as_float`: %.*g rounds
 * correctly, so the first precision that works gives the shortest text. (6
 * digits would always do for a normal float, but not for a subnormal one:
 * 1e-45 must not print as 1.4013e-45.) Runs inside a "C" locale scope. */
static int shortest_g(char *out, size_t outsz, double x, int lo, int hi, int as_float) {
  int prec, n = 0;
  for (prec = lo; prec <= hi; prec++) {
    double back;
    n = snprintf(out, outsz, "%.*g", prec, x);
    back = strtod(out, NULL);
    if (as_float ? (float)back == (float)x : back == x) break;
  }
  return n;
}

/* Rewrites "1e-07" as "1e-7" and "1e+20" as "1e20": both are JSON, the short
 * form reads better. */
static void tidy_exponent(char *s) {
  char *e = strchr(s, 'e'), *d;
  if (!e) return;
  d = e + 1;
  if (*d == '+')
    memmove(d, d + 1, strlen(d + 1) + 1);
  else if (*d == '-')
    d++;
  while (d[0] == '0' && d[1] != '\0') memmove(d, d + 1, strlen(d + 1) + 1);
}

void cnn_buf_json_number(cnn_buf *b, double x) {
  char out[64];
  c_locale_scope scope;
  float f = (float)x;
  if (b->failed) return;
  if (!isfinite(x)) {
    cnn_buf_puts(b, "null");
    return;
  }
  if (x == 0) { /* -0 too: JSON readers differ on "-0"; the sign carries nothing here */
    cnn_buf_puts(b, "0");
    return;
  }
  if (c_locale_enter(&scope)) {
    b->failed = 1;
    return;
  }
  if (x == floor(x) && fabs(x) <= 9007199254740992.0) /* an integer exact in double */
    snprintf(out, sizeof out, "%.0f", x);
  else if (isfinite(f) && f != 0) /* a float: shortest text giving the same float */
    shortest_g(out, sizeof out, (double)f, 1, 9, 1);
  else /* beyond float range: keep the double */
    shortest_g(out, sizeof out, x, 1, 17, 0);
  c_locale_leave(&scope);
  tidy_exponent(out);
  cnn_buf_puts(b, out);
}

char *cnn_buf_finish(cnn_buf *b) {
  char *s = NULL;
  if (!b->failed) {
    s = b->data ? b->data : cnn_malloc(1);
    if (s == b->data)
      b->data = NULL;
    else if (s)
      s[0] = '\0';
  }
  cnn_buf_clear(b);
  return s;
}

void cnn_buf_clear(cnn_buf *b) {
  cnn_free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

const char *cnn_json_describe(const cnn_json *v, char *buf, size_t size) {
  c_locale_scope scope;
  switch (v->type) {
  case CNN_JSON_NULL:
    return "null";
  case CNN_JSON_FALSE:
    return "false";
  case CNN_JSON_TRUE:
    return "true";
  case CNN_JSON_STRING:
    snprintf(buf, size, "\"%.40s\"%s", v->string, strlen(v->string) > 40 ? "..." : "");
    return buf;
  case CNN_JSON_ARRAY:
    return "an array";
  case CNN_JSON_OBJECT:
    return "an object";
  case CNN_JSON_NUMBER:
    break;
  }
  if (c_locale_enter(&scope)) return "a number";
  if (v->number == floor(v->number) && fabs(v->number) < 1e16)
    snprintf(buf, size, "%.0f", v->number);
  else
    shortest_g(buf, size, v->number, 1, 17, 0);
  c_locale_leave(&scope);
  tidy_exponent(buf);
  return buf;
}
