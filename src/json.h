/*
 * json.h - a small strict JSON reader (RFC 8259) for model specs and options,
 * and a string builder for writing JSON and other text.
 *
 * Parsing builds a tree owned by the returned root; strings are NUL-terminated
 * UTF-8 copies (escapes decoded, \u0000 refused). Nesting depth, input size and
 * the number of values are capped so hostile input cannot exhaust the stack or
 * memory. Duplicate keys in one object are an error (a spec must say one thing).
 * Numbers are read and written with '.' as the decimal point whatever the
 * process locale is.
 */
#ifndef CNN_JSON_H
#define CNN_JSON_H

#include <stddef.h>

typedef enum cnn_json_type {
  CNN_JSON_NULL,
  CNN_JSON_FALSE,
  CNN_JSON_TRUE,
  CNN_JSON_NUMBER,
  CNN_JSON_STRING,
  CNN_JSON_ARRAY,
  CNN_JSON_OBJECT,
} cnn_json_type;

typedef struct cnn_json cnn_json;
struct cnn_json {
  cnn_json_type type;
  double number;   /* CNN_JSON_NUMBER */
  char *string;    /* CNN_JSON_STRING: owned, NUL-terminated */
  size_t count;    /* ARRAY / OBJECT: number of items */
  cnn_json *items; /* ARRAY / OBJECT: owned array of count values */
  char **keys;     /* OBJECT: owned array of count owned keys */
};

#define CNN_JSON_MAX_DEPTH 64          /* nested arrays/objects */
#define CNN_JSON_MAX_BYTES (16u << 20) /* input size */
#define CNN_JSON_MAX_VALUES (1u << 20) /* values in one document (48 bytes each) */

/* Parses text[0..len) (need not be NUL-terminated) into a new tree in *out.
 * On error *out is NULL and it returns CNN_ERROR with a message giving the
 * 0-based byte offset of the first error ("at offset 12: expected ',' or '}'
 * in object", "at offset 3: duplicate key \"epochs\""), or CNN_NOMEM.
 * Numbers that overflow a double are errors; underflow rounds to 0. */
int cnn_json_parse(cnn_json **out, const char *text, size_t len, char *err);
/* Frees the whole tree; NULL is a no-op. */
void cnn_json_free(cnn_json *v);

/* Member of an object by key, or NULL (also when v is not an object). */
const cnn_json *cnn_json_get(const cnn_json *v, const char *key);
/* Name of a JSON type for messages: "null", "boolean", "number", ... */
const char *cnn_json_type_name(cnn_json_type t);
/* A value for messages: 12, 0.5, "text" (cut at 40 bytes), true, null, an
 * array, an object. buf holds at least 64 bytes. */
const char *cnn_json_describe(const cnn_json *v, char *buf, size_t size);

/* A growable string; start from `cnn_buf b = {0};`. On allocation failure it
 * records the failure, keeps accepting calls as no-ops, and cnn_buf_finish
 * reports it. cnn_buf_printf formats in the "C" locale (decimal point '.'). */
typedef struct cnn_buf {
  char *data; /* owned, NUL-terminated when not NULL */
  size_t len, cap;
  int failed;
} cnn_buf;

void cnn_buf_append(cnn_buf *b, const char *s, size_t n);
void cnn_buf_puts(cnn_buf *b, const char *s);
void cnn_buf_printf(cnn_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s as a JSON string literal with quotes and escapes (control
 * characters, '"' and '\\'); bytes that are not valid UTF-8 become \uFFFD so
 * the output is always valid JSON. NULL appends null. */
void cnn_buf_json_string(cnn_buf *b, const char *s);
/* Appends a float (given as a double) as the shortest JSON number that reads
 * back to the same float: 0.1f -> 0.1, 1e-7f -> 1e-7. Integers exact in a
 * double print as integers (3, 60000), -0 as 0, non-finite values as null,
 * and doubles beyond float range with the digits of a double. */
void cnn_buf_json_number(cnn_buf *b, double x);
/* Returns the owned string (caller frees with cnn_free) or NULL if any
 * allocation failed; the buffer is reset either way. */
char *cnn_buf_finish(cnn_buf *b);
/* Frees the contents and resets b to empty, forgetting any failure. */
void cnn_buf_clear(cnn_buf *b);

#endif
