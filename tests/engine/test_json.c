/*
 * test_json.c - the JSON reader (every value kind, escapes, UTF-8, caps, every
 * error message with its offset, out-of-memory at every allocation) and the
 * cnn_buf writer (escaping, shortest float round trips, the "C" locale).
 */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "check.h"
#include "json.h"

/* Parses text (its strlen) and expects success. */
static cnn_json *parse_ok(const char *text) {
  char err[CNN_ERRMAX] = "";
  cnn_json *v = NULL;
  int rc = cnn_json_parse(&v, text, strlen(text), err);
  if (!CHECK_EQ_INT(rc, CNN_OK)) fprintf(stderr, "  input: %s\n  error: %s\n", text, err);
  return v;
}

/* Parses text[0..len) and expects exactly the message want. */
static void parse_err_n(const char *text, size_t len, const char *want) {
  char err[CNN_ERRMAX] = "";
  cnn_json *v = (cnn_json *)&v; /* must be reset to NULL */
  int rc = cnn_json_parse(&v, text, len, err);
  CHECK_EQ_INT(rc, CNN_ERROR);
  if (!CHECK(v == NULL) && v != (cnn_json *)&v) cnn_json_free(v); /* parsed after all */
  if (!CHECK_STR(err, want))
    fprintf(stderr, "  input: %.*s\n", (int)(len > 80 ? 80 : len), text ? text : "");
}

static void parse_err(const char *text, const char *want) { parse_err_n(text, strlen(text), want); }

static double parse_number(const char *text) {
  cnn_json *v = parse_ok(text);
  double x = NAN;
  if (v && CHECK_EQ_INT(v->type, CNN_JSON_NUMBER)) x = v->number;
  cnn_json_free(v);
  return x;
}

static void test_values(void) {
  cnn_json *v;
  const cnn_json *m;

  v = parse_ok("null");
  CHECK(v && v->type == CNN_JSON_NULL);
  cnn_json_free(v);
  v = parse_ok(" \t\r\ntrue\n");
  CHECK(v && v->type == CNN_JSON_TRUE);
  cnn_json_free(v);
  v = parse_ok("false");
  CHECK(v && v->type == CNN_JSON_FALSE);
  cnn_json_free(v);
  v = parse_ok("\"hi\"");
  if (CHECK(v && v->type == CNN_JSON_STRING)) CHECK_STR(v->string, "hi");
  cnn_json_free(v);
  v = parse_ok("\"\"");
  if (CHECK(v && v->type == CNN_JSON_STRING)) CHECK_STR(v->string, "");
  cnn_json_free(v);

  CHECK(parse_number("0") == 0.0);
  CHECK(parse_number("-0") == 0.0 && signbit(parse_number("-0")));
  CHECK(parse_number("7") == 7.0);
  CHECK(parse_number("-12") == -12.0);
  CHECK(parse_number("1.5") == 1.5);
  CHECK(parse_number("0.1") == 0.1);
  CHECK(parse_number("-1.25e2") == -125.0);
  CHECK(parse_number("1E+2") == 100.0);
  CHECK(parse_number("25e-1") == 2.5);
  CHECK(parse_number("1e-7") == 1e-7);
  CHECK(parse_number("123456789012") == 123456789012.0);
  CHECK(parse_number("1.7976931348623157e308") == DBL_MAX);
  CHECK(parse_number("2.2250738585072014e-308") == DBL_MIN);
  CHECK(parse_number("1e-400") == 0.0); /* underflow rounds to 0 */
  CHECK(parse_number("0.30000000000000004") == 0.1 + 0.2);
  /* A long token goes through the heap copy. */
  CHECK(parse_number("1.00000000000000000000000000000000000000000000000000000000000000000000001") ==
        1.0);

  /* The input need not be NUL-terminated: only len bytes are read. */
  {
    char err[CNN_ERRMAX];
    v = NULL;
    CHECK_EQ_INT(cnn_json_parse(&v, "12345", 3, err), CNN_OK);
    if (CHECK(v != NULL)) CHECK(v->number == 123.0);
    cnn_json_free(v);
    v = NULL;
    CHECK_EQ_INT(cnn_json_parse(&v, "[true]xyz", 6, err), CNN_OK);
    if (CHECK(v != NULL)) CHECK_EQ_INT(v->count, 1);
    cnn_json_free(v);
  }

  v = parse_ok("[]");
  if (CHECK(v && v->type == CNN_JSON_ARRAY)) CHECK_EQ_INT(v->count, 0);
  cnn_json_free(v);
  v = parse_ok("{}");
  if (CHECK(v && v->type == CNN_JSON_OBJECT)) CHECK_EQ_INT(v->count, 0);
  cnn_json_free(v);
  v = parse_ok("[1, \"two\", [3], {\"four\": 4}, null, true, false]");
  if (CHECK(v && v->type == CNN_JSON_ARRAY && v->count == 7)) {
    CHECK(v->items[0].type == CNN_JSON_NUMBER && v->items[0].number == 1);
    CHECK_STR(v->items[1].string, "two");
    CHECK(v->items[2].type == CNN_JSON_ARRAY && v->items[2].count == 1 &&
          v->items[2].items[0].number == 3);
    CHECK(v->items[3].type == CNN_JSON_OBJECT && cnn_json_get(&v->items[3], "four")->number == 4);
    CHECK_EQ_INT(v->items[4].type, CNN_JSON_NULL);
    CHECK_EQ_INT(v->items[5].type, CNN_JSON_TRUE);
    CHECK_EQ_INT(v->items[6].type, CNN_JSON_FALSE);
  }
  cnn_json_free(v);

  v = parse_ok(
      "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":32,"
      "\"activation\":{\"expr\":\"x*sigmoid(x)\"}}],\"rate\":0.5}");
  if (CHECK(v && v->type == CNN_JSON_OBJECT && v->count == 3)) {
    CHECK_STR(v->keys[0], "input");
    CHECK_STR(v->keys[1], "layers");
    CHECK_STR(v->keys[2], "rate");
    m = cnn_json_get(v, "input");
    CHECK(m && m->type == CNN_JSON_ARRAY && m->count == 3 && m->items[2].number == 1);
    m = cnn_json_get(v, "layers");
    if (CHECK(m && m->count == 1)) {
      const cnn_json *act = cnn_json_get(&m->items[0], "activation");
      CHECK(act != NULL && cnn_json_get(act, "expr") != NULL);
      if (act && cnn_json_get(act, "expr"))
        CHECK_STR(cnn_json_get(act, "expr")->string, "x*sigmoid(x)");
      CHECK(cnn_json_get(&m->items[0], "filters")->number == 32);
    }
    CHECK(cnn_json_get(v, "rate")->number == 0.5);
    CHECK(cnn_json_get(v, "missing") == NULL);
    CHECK(cnn_json_get(v, "Rate") == NULL); /* keys are case-sensitive */
    CHECK(cnn_json_get(m, "type") == NULL); /* not an object */
    CHECK(cnn_json_get(NULL, "x") == NULL);
  }
  cnn_json_free(v);

  CHECK_STR(cnn_json_type_name(CNN_JSON_NULL), "null");
  CHECK_STR(cnn_json_type_name(CNN_JSON_TRUE), "boolean");
  CHECK_STR(cnn_json_type_name(CNN_JSON_FALSE), "boolean");
  CHECK_STR(cnn_json_type_name(CNN_JSON_NUMBER), "number");
  CHECK_STR(cnn_json_type_name(CNN_JSON_STRING), "string");
  CHECK_STR(cnn_json_type_name(CNN_JSON_ARRAY), "array");
  CHECK_STR(cnn_json_type_name(CNN_JSON_OBJECT), "object");
  cnn_json_free(NULL);
}

static void test_strings(void) {
  cnn_json *v;
  v = parse_ok("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
  if (CHECK(v != NULL)) CHECK_STR(v->string, "\" \\ / \b \f \n \r \t");
  cnn_json_free(v);
  v = parse_ok("\"\\u0041\\u00e9\\u20AC\\uD83D\\uDE00\\u0001\\u007f\"");
  if (CHECK(v != NULL)) CHECK_STR(v->string, "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x01\x7F");
  cnn_json_free(v);
  v = parse_ok("\"\\uDBFF\\uDFFF\""); /* U+10FFFF, the last code point */
  if (CHECK(v != NULL)) CHECK_STR(v->string, "\xF4\x8F\xBF\xBF");
  cnn_json_free(v);
  /* Raw UTF-8 of every length passes through unchanged; DEL needs no escape. */
  v = parse_ok("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF\x7F\"");
  if (CHECK(v != NULL))
    CHECK_STR(v->string, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF\x7F");
  cnn_json_free(v);
  v = parse_ok("{\"\\u00e9t\\u00e9\": 1}"); /* escapes in keys */
  if (CHECK(v != NULL)) CHECK(cnn_json_get(v, "\xC3\xA9t\xC3\xA9") != NULL);
  cnn_json_free(v);
}

static void test_errors(void) {
  parse_err("", "at offset 0: expected a value");
  parse_err("   ", "at offset 3: expected a value");
  parse_err_n(NULL, 0, "at offset 0: expected a value");
  parse_err("[", "at offset 1: expected a value or ']'");
  parse_err("[}", "at offset 1: expected a value or ']'");
  parse_err("[1,]", "at offset 3: expected a value");
  parse_err("[1 2]", "at offset 3: expected ',' or ']' in array");
  parse_err("[1", "at offset 2: expected ',' or ']' in array");
  parse_err("{", "at offset 1: expected a string key or '}'");
  parse_err("{1:2}", "at offset 1: expected a string key or '}'");
  parse_err("{\"a\":1,}", "at offset 7: expected a string key");
  parse_err("{\"a\" 1}", "at offset 5: expected ':' after the key");
  parse_err("{\"a\":}", "at offset 5: expected a value");
  parse_err("{\"a\":1 \"b\":2}", "at offset 7: expected ',' or '}' in object");
  parse_err("{\"a\":1", "at offset 6: expected ',' or '}' in object");
  parse_err("{\"epochs\":1,\"epochs\":2}", "at offset 12: duplicate key \"epochs\"");
  parse_err("{\"a\":{\"b\":1,\"b\":1}}", "at offset 12: duplicate key \"b\"");
  parse_err("{\"\\u0061\":1,\"a\":2}", "at offset 12: duplicate key \"a\""); /* after decoding */
  parse_err("{\"q\\\"\\n\":1,\"q\\\"\\n\":2}", "at offset 11: duplicate key \"q\\\"\\u000A\"");
  parse_err(
      "{\"0123456789012345678901234567890123456789012345\":1,"
      "\"0123456789012345678901234567890123456789012345\":2}",
      "at offset 52: duplicate key \"0123456789012345678901234567890123456789...\"");
  parse_err("true false", "at offset 5: expected the end of the input after the value");
  parse_err("{}}", "at offset 2: expected the end of the input after the value");
  parse_err("nullx", "at offset 4: expected the end of the input after the value");
  parse_err("\xEF\xBB\xBF{}", "at offset 0: expected a value"); /* a BOM is not JSON */
  parse_err_n("[1,\0]", 5, "at offset 3: expected a value");

  /* literals */
  parse_err("tru", "at offset 0: expected 'true'");
  parse_err("[fals]", "at offset 1: expected 'false'");
  parse_err("nul", "at offset 0: expected 'null'");
  parse_err("nan", "at offset 0: expected 'null'");
  parse_err("NaN", "at offset 0: expected a value");
  parse_err("Infinity", "at offset 0: expected a value");
  parse_err("'a'", "at offset 0: expected a value");

  /* numbers */
  parse_err("-", "at offset 1: expected a digit after '-'");
  parse_err("-Infinity", "at offset 1: expected a digit after '-'");
  parse_err("- 1", "at offset 1: expected a digit after '-'");
  parse_err("+1", "at offset 0: expected a value");
  parse_err(".5", "at offset 0: expected a value");
  parse_err("01", "at offset 1: leading zeros are not allowed in a number");
  parse_err("[-00]", "at offset 3: leading zeros are not allowed in a number");
  parse_err("1.", "at offset 2: expected a digit after '.'");
  parse_err("1.e5", "at offset 2: expected a digit after '.'");
  parse_err("1e", "at offset 2: expected a digit in the exponent");
  parse_err("1e+", "at offset 3: expected a digit in the exponent");
  parse_err("1E-x", "at offset 3: expected a digit in the exponent");
  parse_err("0x10", "at offset 1: expected the end of the input after the value");
  parse_err("1e999", "at offset 0: number out of range");
  parse_err("[1, -1.8e308]", "at offset 4: number out of range");

  /* strings */
  parse_err("\"abc", "at offset 0: unterminated string");
  parse_err("[\"abc\\\"]", "at offset 1: unterminated string");
  parse_err("\"abc\\", "at offset 0: unterminated string");
  parse_err("\"a\\qb\"", "at offset 2: invalid escape '\\q' in a string");
  parse_err("\"a\\'\"", "at offset 2: invalid escape '\\'' in a string");
  parse_err("\"\\\x01\"", "at offset 1: invalid escape in a string");
  parse_err("\"\\u12G4\"", "at offset 1: expected 4 hex digits after \\u");
  parse_err("\"\\u12", "at offset 1: expected 4 hex digits after \\u");
  parse_err("\"\\u0000\"", "at offset 1: \\u0000 is not allowed in a string");
  parse_err("\"ab\\uD800\"", "at offset 3: unpaired surrogate \\uD800");
  parse_err("\"\\udc00x\"", "at offset 1: unpaired surrogate \\uDC00");
  parse_err("\"\\uD800\\u0041\"", "at offset 1: unpaired surrogate \\uD800");
  parse_err("\"\\uD800\\uD800\"", "at offset 1: unpaired surrogate \\uD800");
  parse_err("\"\\uD800\\n\"", "at offset 1: unpaired surrogate \\uD800");
  parse_err("\"\\uD800\\uZZZZ\"", "at offset 7: expected 4 hex digits after \\u");
  parse_err("\"a\nb\"", "at offset 2: control character 0x0A must be escaped in a string");
  parse_err("\"\t\"", "at offset 1: control character 0x09 must be escaped in a string");
  parse_err_n("\"a\0\"", 4, "at offset 2: control character 0x00 must be escaped in a string");
  parse_err("\"\xFF\"", "at offset 1: invalid UTF-8 in a string");
  parse_err("\"ab\xC3\"", "at offset 3: invalid UTF-8 in a string");       /* truncated */
  parse_err("\"\xC3(\"", "at offset 1: invalid UTF-8 in a string");        /* bad continuation */
  parse_err("\"\xC0\xAF\"", "at offset 1: invalid UTF-8 in a string");     /* overlong '/' */
  parse_err("\"\xE0\x80\xAF\"", "at offset 1: invalid UTF-8 in a string"); /* overlong */
  parse_err("\"\xF0\x80\x80\xAF\"", "at offset 1: invalid UTF-8 in a string"); /* overlong */
  parse_err("\"\xED\xA0\x80\"", "at offset 1: invalid UTF-8 in a string");     /* a surrogate */
  parse_err("\"\xF4\x90\x80\x80\"", "at offset 1: invalid UTF-8 in a string"); /* > U+10FFFF */
  parse_err("\"\xF8\x88\x80\x80\x80\"", "at offset 1: invalid UTF-8 in a string");
  parse_err("\"\x80\"", "at offset 1: invalid UTF-8 in a string");
  parse_err("[\"ok\", \xC3\xA9]", "at offset 7: expected a value");
}

/* n nested arrays around a 0. */
static char *nested(int n) {
  char *s = malloc((size_t)2 * n + 2);
  int i;
  for (i = 0; i < n; i++) s[i] = '[';
  s[n] = '0';
  for (i = 0; i < n; i++) s[n + 1 + i] = ']';
  s[2 * n + 1] = '\0';
  return s;
}

static void test_caps(void) {
  char *s;
  cnn_json *v;
  size_t i;

  s = nested(CNN_JSON_MAX_DEPTH);
  v = parse_ok(s);
  CHECK(v != NULL);
  cnn_json_free(v);
  free(s);
  s = nested(CNN_JSON_MAX_DEPTH + 1);
  parse_err(s, "at offset 64: nested deeper than 64 levels");
  free(s);
  s = nested(100000); /* far too deep: must fail without recursing that far */
  parse_err(s, "at offset 64: nested deeper than 64 levels");
  free(s);
  /* Objects count too. */
  {
    char buf[8 * CNN_JSON_MAX_DEPTH + 16];
    size_t o = 0;
    for (i = 0; i < CNN_JSON_MAX_DEPTH; i++) o += (size_t)sprintf(buf + o, "{\"a\":");
    sprintf(buf + o, "[");
    parse_err(buf, "at offset 320: nested deeper than 64 levels");
  }

  /* Size: the limit is checked before anything is read. */
  s = malloc(CNN_JSON_MAX_BYTES + 1);
  memset(s, ' ', CNN_JSON_MAX_BYTES + 1);
  s[0] = '0';
  parse_err_n(s, CNN_JSON_MAX_BYTES + 1,
              "input of 16777217 bytes is larger than the limit of 16777216 bytes");
  {
    char err[CNN_ERRMAX];
    v = NULL;
    CHECK_EQ_INT(cnn_json_parse(&v, s, CNN_JSON_MAX_BYTES, err), CNN_OK); /* exactly at the limit */
    CHECK(v && v->type == CNN_JSON_NUMBER && v->number == 0);
    cnn_json_free(v);
  }
  free(s);

  /* Values: the array itself plus its elements. Element k is at offset 1 + 2k. */
  {
    size_t n = CNN_JSON_MAX_VALUES;
    s = malloc(2 * n + 2);
    s[0] = '[';
    for (i = 0; i < n; i++) {
      s[1 + 2 * i] = '0';
      s[2 + 2 * i] = ',';
    }
    s[2 * n - 2] = ']'; /* n - 1 elements: n values in all */
    v = NULL;
    {
      char err[CNN_ERRMAX];
      CHECK_EQ_INT(cnn_json_parse(&v, s, 2 * n - 1, err), CNN_OK);
    }
    if (CHECK(v != NULL)) CHECK_EQ_INT(v->count, n - 1);
    cnn_json_free(v);
    s[2 * n - 2] = ',';
    s[2 * n] = ']'; /* n elements: one value too many */
    parse_err_n(s, 2 * n + 1, "at offset 2097151: more than 1048576 values");
    free(s);
  }

  /* Duplicate keys in a large object go through the hash set. */
  {
    size_t cap = 64 * 1000, o = 0;
    char want[96];
    s = malloc(cap);
    o += (size_t)sprintf(s + o, "{");
    for (i = 0; i < 1000; i++) o += (size_t)sprintf(s + o, "%s\"key%zu\":%zu", i ? "," : "", i, i);
    sprintf(s + o, "}");
    v = parse_ok(s); /* 1000 distinct keys */
    if (CHECK(v != NULL)) {
      CHECK_EQ_INT(v->count, 1000);
      CHECK(cnn_json_get(v, "key999")->number == 999);
      CHECK(cnn_json_get(v, "key17")->number == 17);
    }
    cnn_json_free(v);
    snprintf(want, sizeof want, "at offset %zu: duplicate key \"key573\"", o + 1);
    sprintf(s + o, ",\"key573\":1}");
    parse_err(s, want);
    sprintf(s + o, ",\"key5\":1}"); /* a key of the linear part, found by hash */
    snprintf(want, sizeof want, "at offset %zu: duplicate key \"key5\"", o + 1);
    parse_err(s, want);
    free(s);
  }
}

/* Every allocation of a parse fails once in turn: CNN_NOMEM, no leak (ASan). */
static void test_out_of_memory(void) {
  const char *doc =
      "{\"a\":[1,2,3,4,5,6,7,8,9,{\"b\":\"text\\u00e9\"}],\"c\":{\"d\":null},"
      "\"e\":1.00000000000000000000000000000000000000000000000000000000000000000001,"
      "\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,"
      "\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,"
      "\"k16\":16,\"k17\":17}";
  uint64_t n;
  int saw_ok = 0, failures = 0;
  for (n = 1; n < 1000 && !saw_ok; n++) {
    char err[CNN_ERRMAX] = "";
    cnn_json *v = NULL;
    int rc;
    cnn_alloc_fail_at(n);
    rc = cnn_json_parse(&v, doc, strlen(doc), err);
    if (rc == CNN_OK) {
      saw_ok = 1;
      CHECK(v && cnn_json_get(v, "k17")->number == 17);
    } else {
      failures++;
      if (!CHECK_EQ_INT(rc, CNN_NOMEM))
        fprintf(stderr, "  allocation %llu: %s\n", (unsigned long long)n, err);
      CHECK_STR(err, "out of memory");
      CHECK(v == NULL);
    }
    cnn_json_free(v);
  }
  cnn_alloc_fail_at(0);
  CHECK(saw_ok);
  CHECK(failures > 10);
}

static char *number_text(double x) {
  cnn_buf b = {0};
  cnn_buf_json_number(&b, x);
  return cnn_buf_finish(&b);
}

static void check_number_text(double x, const char *want) {
  char *s = number_text(x);
  if (!CHECK_STR(s, want)) fprintf(stderr, "  for %.17g\n", x);
  cnn_free(s);
}

static void test_buf(void) {
  cnn_buf b = {0};
  char *s, big[1001];
  int i;

  s = cnn_buf_finish(&b); /* nothing appended: an empty string */
  CHECK_STR(s, "");
  cnn_free(s);

  cnn_buf_puts(&b, "ab");
  cnn_buf_append(&b, "cdef", 2);
  cnn_buf_append(&b, NULL, 0);
  cnn_buf_printf(&b, "[%d|%s|%.2f]", 42, "z", 0.5);
  memset(big, 'q', 1000);
  big[1000] = '\0';
  cnn_buf_printf(&b, "%s", big);
  CHECK_EQ_INT(b.len, 4 + 11 + 1000);
  s = cnn_buf_finish(&b);
  CHECK(s && strncmp(s, "abcd[42|z|0.50]qqq", 18) == 0 && strlen(s) == 1015);
  cnn_free(s);
  CHECK(b.data == NULL && b.len == 0 && b.cap == 0);

  cnn_buf_json_string(&b, "plain");
  cnn_buf_puts(&b, " ");
  cnn_buf_json_string(&b, "q\"b\\s\n\r\t\b\f\x01\x1f\x7f/\xC3\xA9\xF0\x9F\x98\x80");
  cnn_buf_puts(&b, " ");
  cnn_buf_json_string(&b, "bad\xFF\xC3(\xED\xA0\x80!");
  cnn_buf_puts(&b, " ");
  cnn_buf_json_string(&b, NULL);
  s = cnn_buf_finish(&b);
  CHECK_STR(s,
            "\"plain\" \"q\\\"b\\\\s\\n\\r\\t\\b\\f\\u0001\\u001F\x7f/\xC3\xA9\xF0\x9F\x98\x80\" "
            "\"bad\\uFFFD\\uFFFD(\\uFFFD\\uFFFD\\uFFFD!\" null");
  /* What it writes, the reader reads back. */
  {
    cnn_buf c = {0};
    cnn_json *v;
    const char *orig = "q\"b\\s\n\r\t\b\f\x01\x1f\x7f/\xC3\xA9\xF0\x9F\x98\x80";
    cnn_buf_json_string(&c, orig);
    cnn_free(s);
    s = cnn_buf_finish(&c);
    v = parse_ok(s);
    if (CHECK(v && v->type == CNN_JSON_STRING)) CHECK_STR(v->string, orig);
    cnn_json_free(v);
  }
  cnn_free(s);

  check_number_text(0.1f, "0.1");
  check_number_text(0.1, "0.1");
  check_number_text(1e-7f, "1e-7");
  check_number_text(3, "3");
  check_number_text(-0.5, "-0.5");
  check_number_text(0.0, "0");
  check_number_text(-0.0, "0");
  check_number_text(60000, "60000");
  check_number_text(-123456789, "-123456789");
  check_number_text(16777217.0, "16777217"); /* an integer stays exact, even beyond float */
  check_number_text(1.0 / 3.0, "0.33333334");
  check_number_text(2.0f / 3.0f, "0.6666667");
  check_number_text(0.999f, "0.999");
  check_number_text(1e20f, "1e20");
  check_number_text(1.5e-5f, "1.5e-5");
  check_number_text(FLT_MAX, "3.4028235e38");
  check_number_text(FLT_MIN, "1.1754944e-38");
  check_number_text(1e-45f, "1e-45"); /* the smallest subnormal float */
  check_number_text(1e300, "1e300");  /* beyond float range: a double */
  check_number_text(-2.5e-300, "-2.5e-300");
  check_number_text(NAN, "null");
  check_number_text(INFINITY, "null");
  check_number_text(-INFINITY, "null");

  /* Round trip of many floats through writer and reader. */
  {
    uint32_t state = 12345;
    int bad = 0;
    for (i = 0; i < 20000; i++) {
      uint32_t bits;
      float f;
      char *t;
      cnn_json *v;
      char err[CNN_ERRMAX];
      state = state * 1664525u + 1013904223u;
      bits = state;
      memcpy(&f, &bits, sizeof f);
      if (!isfinite(f)) continue;
      t = number_text(f);
      v = NULL;
      if (!t || cnn_json_parse(&v, t, strlen(t), err) != CNN_OK || (float)v->number != f ||
          (f != floorf(f) && strlen(t) > 15)) { /* at most 9 digits, sign, '.', "e-38" */
        if (bad++ < 5) fprintf(stderr, "  round trip of %.9g gave %s\n", f, t ? t : "NULL");
      }
      cnn_json_free(v);
      cnn_free(t);
    }
    CHECK_EQ_INT(bad, 0);
  }

  /* A failed allocation makes the rest no-ops and finish report NULL. */
  cnn_buf_puts(&b, "start");
  cnn_alloc_fail_at(1);
  cnn_buf_printf(&b, "%s", big);
  cnn_alloc_fail_at(0);
  CHECK(b.failed);
  cnn_buf_puts(&b, "more");
  cnn_buf_json_number(&b, 1.5);
  cnn_buf_json_string(&b, "x");
  CHECK(cnn_buf_finish(&b) == NULL);
  CHECK(b.data == NULL && !b.failed);
  cnn_buf_puts(&b, "again"); /* usable again after finish */
  s = cnn_buf_finish(&b);
  CHECK_STR(s, "again");
  cnn_free(s);
  cnn_buf_puts(&b, "dropped");
  cnn_buf_clear(&b);
  CHECK(b.data == NULL && b.len == 0);
}

/* Numbers must not depend on the process locale. Only testable where a
 * locale with a decimal comma is installed. */
static void test_locale(void) {
  static const char *names[] = {"de_DE.UTF-8", "de_DE.utf8",  "fr_FR.UTF-8", "fr_FR.utf8",
                                "ru_RU.UTF-8", "nl_NL.UTF-8", "de_DE"};
  size_t i;
  const char *got = NULL;
  for (i = 0; i < sizeof names / sizeof names[0] && !got; i++)
    got = setlocale(LC_NUMERIC, names[i]);
  if (!got) {
    printf("test_locale: no decimal-comma locale installed, skipped\n");
    return;
  }
  {
    char tmp[16];
    cnn_buf b = {0};
    char *s;
    snprintf(tmp, sizeof tmp, "%.1f", 0.5);
    CHECK_STR(tmp, "0,5"); /* the locale is really active */
    CHECK(parse_number("0.5") == 0.5);
    CHECK(parse_number("-1.25e1") == -12.5);
    cnn_buf_json_number(&b, 0.1f);
    cnn_buf_puts(&b, " ");
    cnn_buf_printf(&b, "%.2f", 2.25);
    s = cnn_buf_finish(&b);
    CHECK_STR(s, "0.1 2.25");
    cnn_free(s);
    snprintf(tmp, sizeof tmp, "%.1f", 0.5);
    CHECK_STR(tmp, "0,5"); /* and still is afterwards */
  }
  setlocale(LC_NUMERIC, "C");
}

int main(void) {
  test_values();
  test_strings();
  test_errors();
  test_caps();
  test_out_of_memory();
  test_buf();
  test_locale();
  return check_done();
}
