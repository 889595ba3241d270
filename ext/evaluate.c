/*
 * evaluate.c - cnn_evaluate(name, source [, options]) -> TEXT
 * {"loss":..,"accuracy":..,"count":..}, as Keras' evaluate: the loss is the
 * model's training loss (cross-entropy) over every source row.
 *
 *   SELECT cnn_evaluate('nb', 'mnist_test');
 *   SELECT cnn_evaluate('nb', 'big_table', '{"data": "stream"}');
 *
 * options: a JSON object whose one key, "data", is cnn_train's option of
 * that name with the same values and messages: the source is read into
 * memory (ext/source.c), or streamed from its table (ext/stream.c), by
 * default when its images would take more than 1 GiB. Either way it is
 * evaluated by the engine in rowid order with the same batches, so both give
 * the same result; the engine polls for interrupts between batches. It runs
 * the caller's SQL text, so it is SQLITE_DIRECTONLY; not deterministic,
 * since training changes the answer.
 */
#include <string.h>

#include "ext.h"
#include "json.h"

/* The options argument (NULL: the defaults). */
static int read_options(const char *text, cnn_data_mode *data, char *err) {
  char sub[CNN_ERRMAX];
  cnn_json *root = NULL;
  *data = CNN_DATA_AUTO;
  if (!text) return CNN_OK;
  int rc = cnn_json_parse(&root, text, strlen(text), sub);
  if (rc == CNN_NOMEM) return cnn_nomem(err);
  if (rc) return cnn_error(err, CNN_ERROR, "options are not valid JSON: %s", sub);
  if (root->type != CNN_JSON_OBJECT)
    rc = cnn_error(err, CNN_ERROR, "options must be a JSON object, got %s",
                   cnn_json_type_name(root->type));
  for (size_t i = 0; rc == CNN_OK && i < root->count; i++) {
    if (!strcmp(root->keys[i], "data"))
      rc = cnn_data_mode_parse(&root->items[i], data, err);
    else
      rc = cnn_error(err, CNN_ERROR, "unknown option \"%.40s\" (data)", root->keys[i]);
  }
  cnn_json_free(root);
  return rc;
}

void cnn_fn_evaluate(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  cnn_stored_model *m = NULL;
  cnn_rows rows = {0};
  cnn_stream *stream = NULL;
  sqlite3_stmt *probe = NULL;
  char *json = NULL;
  const char *name, *source, *options = NULL;
  cnn_data_mode mode;
  double loss, accuracy;
  int rc;
  if ((rc = cnn_arg_name(argv[0], &name, err)) || (rc = cnn_arg_source(argv[1], &source, err)) ||
      (argc > 2 && (rc = cnn_arg_options(argv[2], &options, err))) ||
      (rc = read_options(options, &mode, err)) ||
      (rc = cnn_cache_get(cnn_ctx_conn(ctx), db, name, &m, err)) ||
      (rc = cnn_stream_open(db, source, cnn_net_input(m->net), cnn_net_classes(m->net), 1, mode, 0,
                            &stream, err)) ||
      (!stream && (rc = cnn_source_read(db, source, cnn_net_input(m->net), cnn_net_classes(m->net),
                                        1, &rows, err))))
    goto done;
  cnn_dataset data = {.images = rows.images, .labels = rows.labels, .count = rows.count};
  if (stream) cnn_stream_dataset(stream, &data);
  if ((rc = cnn_probe_open(db, &probe, err)) ||
      (rc = cnn_evaluate(m->net, &data, 0, cnn_probe_stop, probe, &loss, &accuracy, err)))
    goto done;
  cnn_buf b = {0};
  cnn_buf_puts(&b, "{\"loss\":");
  cnn_buf_json_number(&b, loss);
  cnn_buf_puts(&b, ",\"accuracy\":");
  cnn_buf_json_number(&b, accuracy);
  cnn_buf_printf(&b, ",\"count\":%zu}", data.count);
  if (!(json = cnn_buf_finish(&b))) {
    rc = cnn_nomem(err);
    goto done;
  }
  sqlite3_result_text(ctx, json, -1, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  cnn_free(json);
  sqlite3_finalize(probe);
  cnn_rows_clear(&rows);
  cnn_stream_free(stream);
  cnn_stored_model_release(m);
}
