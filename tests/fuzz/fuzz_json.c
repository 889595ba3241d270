/*
 * fuzz_json.c - libFuzzer target for the strict JSON reader (src/json.c) and
 * the string and number writers beside it.
 *
 * Beyond "no crash": every accepted document is written back with
 * cnn_buf_json_string / cnn_buf_json_number and must parse again to a tree of
 * the same shape, with the same keys and strings byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "json.h"

static void write_value(cnn_buf *b, const cnn_json *v) {
  switch (v->type) {
  case CNN_JSON_NULL:
    cnn_buf_puts(b, "null");
    break;
  case CNN_JSON_FALSE:
    cnn_buf_puts(b, "false");
    break;
  case CNN_JSON_TRUE:
    cnn_buf_puts(b, "true");
    break;
  case CNN_JSON_NUMBER:
    cnn_buf_json_number(b, v->number);
    break;
  case CNN_JSON_STRING:
    cnn_buf_json_string(b, v->string);
    break;
  case CNN_JSON_ARRAY:
  case CNN_JSON_OBJECT:
    cnn_buf_puts(b, v->type == CNN_JSON_ARRAY ? "[" : "{");
    for (size_t i = 0; i < v->count; i++) {
      if (i) cnn_buf_puts(b, ",");
      if (v->type == CNN_JSON_OBJECT) {
        cnn_buf_json_string(b, v->keys[i]);
        cnn_buf_puts(b, ":");
      }
      write_value(b, &v->items[i]);
    }
    cnn_buf_puts(b, v->type == CNN_JSON_ARRAY ? "]" : "}");
    break;
  }
}

/* Same shape, keys and strings; numbers only agree on being numbers, as the
 * writer rounds to the shortest float form. */
static int same_tree(const cnn_json *a, const cnn_json *b) {
  if (a->type != b->type) return 0;
  if (a->type == CNN_JSON_STRING) return strcmp(a->string, b->string) == 0;
  if (a->type != CNN_JSON_ARRAY && a->type != CNN_JSON_OBJECT) return 1;
  if (a->count != b->count) return 0;
  for (size_t i = 0; i < a->count; i++) {
    if (a->type == CNN_JSON_OBJECT && strcmp(a->keys[i], b->keys[i]) != 0) return 0;
    if (!same_tree(&a->items[i], &b->items[i])) return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CNN_ERRMAX];
  cnn_json *root = NULL, *back = NULL;
  int rc = cnn_json_parse(&root, (const char *)data, size, err);
  if (rc != CNN_OK) {
    if (root != NULL || err[0] == 0) abort();
    return 0;
  }
  if (!root) abort();
  cnn_buf b = {0};
  write_value(&b, root);
  size_t len = b.len;
  char *text = cnn_buf_finish(&b);
  if (text) {
    if (cnn_json_parse(&back, text, len, err) != CNN_OK) abort();
    if (!same_tree(root, back)) abort();
    cnn_json_free(back);
    cnn_free(text);
  }
  cnn_json_free(root);
  return 0;
}
