/*
 * evaluate.c - cnn_evaluate(name, source) -> TEXT
 * {"loss":..,"accuracy":..,"count":..}, as Keras' evaluate: the loss is the
 * model's training loss (cross-entropy) over every source row.
 *
 *   SELECT cnn_evaluate('nb', 'mnist_test');
 *
 * The source is read into memory (ext/source.c), or streamed from its table
 * when its images would take more than 1 GiB (ext/stream.c), and evaluated
 * by the engine, which polls for interrupts between batches. It runs the caller's SQL text,
 * so it is SQLITE_DIRECTONLY; not deterministic, since training changes the
 * answer.
 */
#include "ext.h"
#include "json.h"

void cnn_fn_evaluate(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  cnn_stored_model *m = NULL;
  cnn_rows rows = {0};
  cnn_stream *stream = NULL;
  sqlite3_stmt *probe = NULL;
  char *json = NULL;
  const char *name, *source;
  double loss, accuracy;
  int rc;
  if ((rc = cnn_arg_name(argv[0], &name, err)) || (rc = cnn_arg_source(argv[1], &source, err)) ||
      (rc = cnn_cache_get(cnn_ctx_conn(ctx), db, name, &m, err)) ||
      (rc = cnn_stream_open(db, source, cnn_net_input(m->net), cnn_net_classes(m->net), 1,
                            CNN_DATA_AUTO, 0, &stream, err)) ||
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
