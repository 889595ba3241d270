/*
 * pictures.c - the picture functions:
 *
 *   SELECT writefile('8.png', cnn_image_png(readfile('8.jpg'), 8));
 *   SELECT writefile('grid.png', cnn_grid_png('SELECT image, label FROM mnist_test LIMIT 100'));
 *   SELECT writefile('nb.svg', cnn_history_svg('nb'));
 *
 * cnn_image_png(image [, scale]) -> BLOB, a PNG of the 28x28 pixels the model
 * sees, each scale x scale (1..64, default 4); pure.
 * cnn_grid_png(source [, columns]) -> BLOB, the notebook's figure of digits
 * with their labels; runs the caller's SQL as a source, so SQLITE_DIRECTONLY.
 * cnn_history_svg(name) -> TEXT, the notebook's accuracy plot from
 * cnn_epochs; cnn_history_svg(models, metric) -> TEXT, one metric of several
 * models on shared axes. Both read tables, so not deterministic.
 *
 * Drawing is the engine's (src/io/picture.c); this file reads the arguments.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ext.h"
#include "image.h"
#include "json.h"

/* Scale of cnn_image_png without its second argument: 112x112, big enough to
 * see in a notebook or a browser, small enough for a thumbnail column. */
#define PNG_DEFAULT_SCALE 4

void cnn_fn_image_png(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  uint8_t img[CNN_MNIST_BYTES];
  uint8_t *png = NULL; /* owned until handed to SQLite */
  size_t len = 0;
  char err[CNN_ERRMAX] = "", what[48];
  int scale = PNG_DEFAULT_SCALE, rc = CNN_OK;
  if (argc > 1) {
    sqlite3_int64 s = 0;
    int is_int = cnn_value_is_int(argv[1], &s);
    if (!is_int || s < 1 || s > CNN_PNG_MAX_SCALE) {
      if (is_int) snprintf(what, sizeof what, "%lld", (long long)s);
      rc = cnn_error(err, CNN_ERROR, "scale must be an integer from 1 to %d; got %s",
                     CNN_PNG_MAX_SCALE,
                     is_int ? what : cnn_value_describe(argv[1], what, sizeof what));
      goto done;
    }
    scale = (int)s;
  }
  if ((rc = cnn_arg_image(argv[0], img, err)) ||
      (rc = cnn_png_gray(&png, &len, img, CNN_MNIST_SIDE, CNN_MNIST_SIDE, scale, err)))
    goto done;
  sqlite3_result_blob64(ctx, png, (sqlite3_uint64)len, cnn_free);
  png = NULL;
done:
  if (rc) cnn_result_status(ctx, rc, err);
  cnn_free(png);
}

/* ---------------------------------------------------------------------------
 * cnn_grid_png(source [, columns]) -> BLOB: the notebook's figure of digits
 * with their labels (label optional: a one-column source, or NULL labels,
 * draw no label). Images in any form cnn_predict accepts; labels 0..9.
 */

#define GRID_DEFAULT_COLUMNS 10
#define GRID_MAX_COLUMNS 100

void cnn_fn_grid_png(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", what[48];
  sqlite3_stmt *st = NULL;
  uint8_t *images = NULL, *png = NULL;
  int *labels = NULL;
  size_t n = 0, cap = 0, len = 0;
  int columns = GRID_DEFAULT_COLUMNS, rc = CNN_OK, src;
  const cnn_shape in = {CNN_MNIST_SIDE, CNN_MNIST_SIDE, 1};
  const char *source;
  if ((rc = cnn_arg_source(argv[0], &source, err))) goto done;
  if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL) {
    sqlite3_int64 c = 0;
    int is_int = cnn_value_is_int(argv[1], &c);
    if (!is_int || c < 1 || c > GRID_MAX_COLUMNS) {
      if (is_int) snprintf(what, sizeof what, "%lld", (long long)c);
      rc = cnn_error(err, CNN_ERROR, "columns must be an integer 1..%d; got %s", GRID_MAX_COLUMNS,
                     is_int ? what : cnn_value_describe(argv[1], what, sizeof what));
      goto done;
    }
    columns = (int)c;
  }
  if ((rc = cnn_source_prepare(db, source, &st, err))) goto done;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == CNN_GRID_MAX_IMAGES) {
      rc = cnn_error(err, CNN_ERROR, "source has more than %u rows; add a LIMIT",
                     CNN_GRID_MAX_IMAGES);
      goto done;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      if (cap > CNN_GRID_MAX_IMAGES) cap = CNN_GRID_MAX_IMAGES;
      uint8_t *im = sqlite3_realloc64(images, (sqlite3_uint64)cap * CNN_MNIST_BYTES);
      if (im) images = im;
      int *lb = im ? sqlite3_realloc64(labels, (sqlite3_uint64)cap * sizeof *labels) : NULL;
      if (lb) labels = lb;
      if (!im || !lb) {
        rc = cnn_nomem(err);
        goto done;
      }
    }
    if ((rc = cnn_source_row(st, n + 1, in, 10, 0, images + n * CNN_MNIST_BYTES, &labels[n], err)))
      goto done;
    n++;
  }
  if (src != SQLITE_DONE) {
    rc = src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
         : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                 : cnn_error(err, CNN_ERROR, "source: %s", sqlite3_errmsg(db));
    goto done;
  }
  if (n == 0) {
    rc = cnn_error(err, CNN_ERROR, "source has no rows");
    goto done;
  }
  if ((rc = cnn_png_grid(&png, &len, images, labels, n, columns, err))) goto done;
  sqlite3_result_blob64(ctx, png, len, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  sqlite3_finalize(st);
  sqlite3_free(images);
  sqlite3_free(labels);
  cnn_free(png);
}

/* ---------------------------------------------------------------------------
 * cnn_history_svg(name) -> TEXT: accuracy and val_accuracy per epoch (SVG,
 * drawn by src/io/picture.c). Epochs missing from the table (or NULL values,
 * e.g. val_accuracy without validation) are gaps in the lines.
 *
 * cnn_history_svg(models, metric) -> TEXT: one line per model of one column of
 * cnn_epochs, for comparing runs:
 *
 *   SELECT writefile('opt.svg', cnn_history_svg('["sgd","adam"]', 'loss'));
 *
 * models is a JSON array of 1..CNN_SVG_MAX_SERIES distinct model names (or,
 * when the text does not start with '[', one model name); losses are drawn on
 * a log scale. Every model must exist and have a value of the metric.
 */

/* The metrics, their axis labels and scales; the name is also the column. */
static const struct {
  const char *name, *label;
  int log_y;
} metrics[] = {
    {"accuracy", "Accuracy", 0},           {"val_accuracy", "Validation accuracy", 0},
    {"loss", "Loss (log scale)", 1},       {"val_loss", "Validation loss (log scale)", 1},
    {"learning_rate", "Learning rate", 0}, {"seconds", "Seconds per epoch", 0},
};
#define NMETRICS (sizeof metrics / sizeof metrics[0])

/* Column `column` of the model's cnn_epochs rows into *y (sqlite3_malloc'd,
 * owned by the caller), y[e - 1] for epoch e, NaN where a row or value is
 * missing; *n is the last epoch, 0 without rows (or without the table). The
 * column is one of metrics[] (never text from the caller). */
static int read_metric(sqlite3 *db, const char *name, const char *column, double **y, size_t *n,
                       char *err) {
  sqlite3_stmt *st = NULL;
  size_t cap = 0;
  int rc = CNN_OK, src = SQLITE_NOMEM;
  char *sql = sqlite3_mprintf(
      "SELECT epoch, \"%w\" FROM cnn_epochs WHERE model = ?1 ORDER BY epoch", column);
  *y = NULL;
  *n = 0;
  if (sql) src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  while (src == SQLITE_OK || src == SQLITE_ROW) {
    if ((src = sqlite3_step(st)) != SQLITE_ROW) break;
    sqlite3_int64 e = sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || e < 1 || e > CNN_MAX_EPOCHS) {
      rc = cnn_error(err, CNN_ERROR, "model '%s': cnn_epochs has epoch %s; expected 1..%d", name,
                     sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "NULL",
                     CNN_MAX_EPOCHS);
      goto done;
    }
    if ((size_t)e > cap) {
      size_t ncap = cap ? cap : 16;
      while (ncap < (size_t)e) ncap *= 2;
      double *a = sqlite3_realloc64(*y, ncap * sizeof *a);
      if (!a) {
        rc = cnn_nomem(err);
        goto done;
      }
      *y = a;
      for (size_t i = cap; i < ncap; i++) a[i] = NAN;
      cap = ncap;
    }
    (*y)[e - 1] = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 1);
    if ((size_t)e > *n) *n = (size_t)e;
  }
  if (src != SQLITE_DONE && !(src == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table")))
    rc = src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
         : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                 : cnn_error(err, CNN_ERROR, "%s", sqlite3_errmsg(db));
done:
  sqlite3_finalize(st);
  sqlite3_free(sql);
  if (rc) {
    sqlite3_free(*y);
    *y = NULL;
    *n = 0;
  }
  return rc;
}

/* The model must exist and have completed epochs. */
static int check_model(sqlite3 *db, const char *name, size_t epochs, char *err) {
  int exists = cnn_store_exists(db, name, err);
  if (exists < 0) return CNN_ERROR;
  if (!exists) return cnn_error(err, CNN_ERROR, "no model named '%s'", name);
  if (epochs == 0)
    return cnn_error(err, CNN_ERROR, "model '%s' has no completed epochs (train it with cnn_train)",
                     name);
  return CNN_OK;
}

static void history_one(sqlite3_context *ctx, sqlite3_value *arg) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  double *acc = NULL, *val = NULL; /* owned: a value per epoch each */
  char *svg = NULL, *title = NULL;
  size_t na = 0, nv = 0;
  int rc;
  const char *name;
  if ((rc = cnn_arg_name(arg, &name, err))) goto done;
  int exists = cnn_store_exists(db, name, err);
  if (exists <= 0) {
    rc = exists < 0 ? CNN_ERROR : cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    goto done;
  }
  if ((rc = read_metric(db, name, "accuracy", &acc, &na, err)) ||
      (rc = read_metric(db, name, "val_accuracy", &val, &nv, err)) ||
      (rc = check_model(db, name, na, err)))
    goto done;
  if (!(title = sqlite3_mprintf("%s: accuracy", name))) {
    rc = cnn_nomem(err);
    goto done;
  }
  /* Both columns come from the same rows, so na == nv. */
  if ((rc = cnn_svg_history(&svg, acc, val, na < nv ? na : nv, title, err))) goto done;
  sqlite3_result_text(ctx, svg, -1, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  sqlite3_free(acc);
  sqlite3_free(val);
  sqlite3_free(title);
  cnn_free(svg);
}

static void history_compare(sqlite3_context *ctx, sqlite3_value *models_arg,
                            sqlite3_value *metric_arg) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", what[64];
  cnn_json *list = NULL;                       /* owned: the parsed models */
  cnn_svg_series series[CNN_SVG_MAX_SERIES];   /* names borrowed, values owned */
  double *values[CNN_SVG_MAX_SERIES] = {NULL}; /* owned (sqlite3_malloc) */
  const char *names[CNN_SVG_MAX_SERIES];       /* borrowed from list or the argument */
  char *svg = NULL, *title = NULL;
  size_t count = 0, m = 0;
  int rc = CNN_OK;

  if (sqlite3_value_type(metric_arg) == SQLITE_TEXT) {
    const char *t = (const char *)sqlite3_value_text(metric_arg);
    while (t && m < NMETRICS && strcmp(t, metrics[m].name)) m++;
  } else
    m = NMETRICS;
  if (m == NMETRICS) {
    const char *t = sqlite3_value_type(metric_arg) == SQLITE_TEXT
                        ? (const char *)sqlite3_value_text(metric_arg)
                        : NULL;
    if (t) snprintf(what, sizeof what, "'%.40s'", t);
    rc = cnn_error(err, CNN_ERROR,
                   "metric must be one of accuracy, val_accuracy, loss, val_loss, learning_rate, "
                   "seconds; got %s",
                   t ? what : cnn_value_describe(metric_arg, what, sizeof what));
    goto done;
  }

  if (sqlite3_value_type(models_arg) != SQLITE_TEXT) {
    rc = cnn_error(err, CNN_ERROR, "models must be a JSON array of model names or one name; got %s",
                   cnn_value_describe(models_arg, what, sizeof what));
    goto done;
  }
  const char *text = (const char *)sqlite3_value_text(models_arg);
  if (!text) {
    rc = cnn_nomem(err);
    goto done;
  }
  const char *p = text;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p != '[') {
    if (!text[0] || sqlite3_value_bytes(models_arg) > 200) {
      rc = cnn_error(err, CNN_ERROR,
                     "models must be a JSON array of model names or one name; got %s",
                     text[0] ? "a text of more than 200 bytes" : "an empty text");
      goto done;
    }
    names[0] = text;
    count = 1;
  } else {
    char jerr[CNN_ERRMAX] = "";
    rc = cnn_json_parse(&list, text, (size_t)sqlite3_value_bytes(models_arg), jerr);
    if (rc) {
      rc = rc == CNN_NOMEM ? cnn_nomem(err)
                           : cnn_error(err, CNN_ERROR, "models is not valid JSON: %s", jerr);
      goto done;
    }
    if (list->type != CNN_JSON_ARRAY) {
      rc = cnn_error(err, CNN_ERROR, "models must be a JSON array of model names; got %s",
                     cnn_json_describe(list, what, sizeof what));
      goto done;
    }
    if (list->count == 0) {
      rc = cnn_error(err, CNN_ERROR, "models is an empty array; name at least one model");
      goto done;
    }
    if (list->count > CNN_SVG_MAX_SERIES) {
      rc = cnn_error(err, CNN_ERROR, "models names %zu models; the limit is %d", list->count,
                     CNN_SVG_MAX_SERIES);
      goto done;
    }
    for (size_t i = 0; i < list->count; i++) {
      const cnn_json *it = &list->items[i];
      if (it->type != CNN_JSON_STRING || !it->string[0]) {
        rc = cnn_error(err, CNN_ERROR, "models[%zu] must be a model name; got %s", i,
                       it->type == CNN_JSON_STRING ? "an empty text"
                                                   : cnn_json_describe(it, what, sizeof what));
        goto done;
      }
      for (size_t j = 0; j < i; j++)
        if (!strcmp(names[j], it->string)) {
          rc = cnn_error(err, CNN_ERROR, "models names '%s' twice", it->string);
          goto done;
        }
      names[count++] = it->string;
    }
  }

  for (size_t i = 0; i < count; i++) {
    size_t n = 0, k = 0;
    if ((rc = read_metric(db, names[i], metrics[m].name, &values[i], &n, err)) ||
        (rc = check_model(db, names[i], n, err)))
      goto done;
    size_t finite = 0;
    for (size_t e = 0; e < n; e++) {
      finite += isfinite(values[i][e]) != 0;
      k += isfinite(values[i][e]) && (!metrics[m].log_y || values[i][e] > 0);
    }
    if (!finite) {
      rc = cnn_error(err, CNN_ERROR, "model '%s' has no %s values%s", names[i], metrics[m].name,
                     !strncmp(metrics[m].name, "val_", 4) ? " (train it with validation)" : "");
      goto done;
    }
    if (!k) {
      rc = cnn_error(err, CNN_ERROR, "model '%s' has no positive %s values (a log scale)", names[i],
                     metrics[m].name);
      goto done;
    }
    series[i] = (cnn_svg_series){names[i], values[i], n};
  }
  if (!(title = sqlite3_mprintf("%s per epoch", metrics[m].name))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if ((rc = cnn_svg_compare(&svg, series, count, title, metrics[m].label, metrics[m].log_y, err)))
    goto done;
  sqlite3_result_text(ctx, svg, -1, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  for (size_t i = 0; i < CNN_SVG_MAX_SERIES; i++) sqlite3_free(values[i]);
  cnn_json_free(list);
  sqlite3_free(title);
  cnn_free(svg);
}

void cnn_fn_history_svg(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  if (argc == 1)
    history_one(ctx, argv[0]);
  else
    history_compare(ctx, argv[0], argv[1]);
}

/* ---------------------------------------------------------------------------
 * cnn_layer_stats_svg(name, metric) -> TEXT: one statistic of the training
 * option layer_stats per epoch, a line per layer that has it (in layer
 * order), on shared axes:
 *
 *   SELECT writefile('grads.svg', cnn_layer_stats_svg('deep', 'grad_mean_abs'));
 *
 * Gradients and update ratios span decades: a log scale; norms and shares
 * of zeros a linear one.
 */
static const struct {
  const char *name, *label;
  int log_y;
} layer_metrics[] = {
    {"grad_mean_abs", "Mean |gradient| of the kernel (log scale)", 1},
    {"weight_norm", "Norm of the kernel", 0},
    {"update_ratio", "Update / weight norm (log scale)", 1},
    {"zero_fraction", "Share of outputs that are 0", 0},
};
#define NLAYER_METRICS (sizeof layer_metrics / sizeof layer_metrics[0])

void cnn_fn_layer_stats_svg(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "", what[64];
  cnn_svg_series series[CNN_SVG_MAX_SERIES];
  double *values[CNN_SVG_MAX_SERIES] = {NULL}; /* owned (sqlite3_malloc) */
  char *names[CNN_SVG_MAX_SERIES] = {NULL};    /* owned (sqlite3_malloc) */
  char *svg = NULL, *title = NULL, *sql = NULL;
  sqlite3_stmt *st = NULL;
  size_t count = 0, m = 0, cap[CNN_SVG_MAX_SERIES] = {0};
  const char *name;
  int rc = cnn_arg_name(argv[0], &name, err), last_layer = -1, layers_with = 0;
  if (rc) goto done;
  const char *t =
      sqlite3_value_type(argv[1]) == SQLITE_TEXT ? (const char *)sqlite3_value_text(argv[1]) : NULL;
  while (t && m < NLAYER_METRICS && strcmp(t, layer_metrics[m].name)) m++;
  if (!t || m == NLAYER_METRICS) {
    if (t) snprintf(what, sizeof what, "'%.40s'", t);
    rc = cnn_error(err, CNN_ERROR,
                   "metric must be one of grad_mean_abs, weight_norm, update_ratio, "
                   "zero_fraction; got %s",
                   t ? what : cnn_value_describe(argv[1], what, sizeof what));
    goto done;
  }
  int exists = cnn_store_exists(db, name, err);
  if (exists <= 0) {
    rc = exists < 0 ? CNN_ERROR : cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    goto done;
  }
  /* The column is one of layer_metrics[], never text from the caller. */
  if (!(sql = sqlite3_mprintf("SELECT layer, name, epoch, \"%w\" FROM cnn_layer_epochs "
                              "WHERE model = ?1 AND \"%w\" IS NOT NULL ORDER BY layer, epoch",
                              layer_metrics[m].name, layer_metrics[m].name))) {
    rc = cnn_nomem(err);
    goto done;
  }
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  while (src == SQLITE_OK || src == SQLITE_ROW) {
    if ((src = sqlite3_step(st)) != SQLITE_ROW) break;
    int layer = sqlite3_column_int(st, 0);
    sqlite3_int64 e = sqlite3_column_int64(st, 2);
    if (e < 1 || e > CNN_MAX_EPOCHS) continue; /* rows written by hand: not an epoch */
    if (layer != last_layer) {
      last_layer = layer;
      if (++layers_with > CNN_SVG_MAX_SERIES) continue;
      const unsigned char *ln = sqlite3_column_text(st, 1);
      if (!(names[count] = sqlite3_mprintf("%s", ln ? (const char *)ln : "?"))) {
        rc = cnn_nomem(err);
        goto done;
      }
      series[count] = (cnn_svg_series){names[count], NULL, 0};
      count++;
    }
    if (layers_with > CNN_SVG_MAX_SERIES) continue;
    size_t i = count - 1;
    if ((size_t)e > cap[i]) {
      size_t ncap = cap[i] ? cap[i] : 16;
      while (ncap < (size_t)e) ncap *= 2;
      double *a = sqlite3_realloc64(values[i], ncap * sizeof *a);
      if (!a) {
        rc = cnn_nomem(err);
        goto done;
      }
      for (size_t k = cap[i]; k < ncap; k++) a[k] = NAN;
      values[i] = a, cap[i] = ncap;
    }
    values[i][e - 1] = sqlite3_column_double(st, 3);
    if ((size_t)e > series[i].n) series[i].n = (size_t)e;
    series[i].y = values[i];
  }
  if (src != SQLITE_DONE && !(src == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table"))) {
    rc = src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
         : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                 : cnn_error(err, CNN_ERROR, "%s", sqlite3_errmsg(db));
    goto done;
  }
  if (layers_with == 0) {
    rc = cnn_error(err, CNN_ERROR,
                   "model '%s' has no layer statistics%s (train it with the option layer_stats)",
                   name, m < 3 ? " of kernels" : "");
    goto done;
  }
  if (layers_with > CNN_SVG_MAX_SERIES) {
    rc = cnn_error(err, CNN_ERROR, "model '%s' has %d layers with %s; a chart draws at most %d",
                   name, layers_with, layer_metrics[m].name, CNN_SVG_MAX_SERIES);
    goto done;
  }
  if (!(title = sqlite3_mprintf("%s: %s per layer", name, layer_metrics[m].name))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if ((rc = cnn_svg_compare(&svg, series, count, title, layer_metrics[m].label,
                            layer_metrics[m].log_y, err)))
    goto done;
  sqlite3_result_text(ctx, svg, -1, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  sqlite3_finalize(st);
  for (size_t i = 0; i < CNN_SVG_MAX_SERIES; i++) sqlite3_free(values[i]), sqlite3_free(names[i]);
  sqlite3_free(sql);
  sqlite3_free(title);
  cnn_free(svg);
}
