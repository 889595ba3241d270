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
 * cnn_epochs; reads tables, so not deterministic.
 *
 * Drawing is the engine's (src/io/picture.c); this file reads the arguments.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ext.h"
#include "image.h"

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
 */

void cnn_fn_history_svg(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  char err[CNN_ERRMAX] = "";
  sqlite3_stmt *st = NULL;
  double *acc = NULL, *val = NULL; /* owned, cap epochs each */
  char *svg = NULL, *title = NULL;
  size_t epochs = 0, cap = 0;
  int rc = CNN_OK, src;
  const char *name;
  int exists;
  if ((rc = cnn_arg_name(argv[0], &name, err))) goto done;
  exists = cnn_store_exists(db, name, err);
  if (exists <= 0) {
    rc = exists < 0 ? CNN_ERROR : cnn_error(err, CNN_ERROR, "no model named '%s'", name);
    goto done;
  }
  src = sqlite3_prepare_v2(db,
                           "SELECT epoch, accuracy, val_accuracy FROM cnn_epochs WHERE model = ?1 "
                           "ORDER BY epoch",
                           -1, &st, NULL);
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
      double *a = sqlite3_realloc64(acc, ncap * sizeof *a);
      if (a) acc = a;
      double *v = a ? sqlite3_realloc64(val, ncap * sizeof *v) : NULL;
      if (v) val = v;
      if (!a || !v) {
        rc = cnn_nomem(err);
        goto done;
      }
      for (size_t i = cap; i < ncap; i++) acc[i] = val[i] = NAN;
      cap = ncap;
    }
    acc[e - 1] = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 1);
    val[e - 1] = sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2);
    if ((size_t)e > epochs) epochs = (size_t)e;
  }
  if (src != SQLITE_DONE && !(src == SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table"))) {
    rc = src == SQLITE_INTERRUPT ? cnn_error(err, CNN_INTERRUPTED, "interrupted")
         : src == SQLITE_NOMEM   ? cnn_nomem(err)
                                 : cnn_error(err, CNN_ERROR, "%s", sqlite3_errmsg(db));
    goto done;
  }
  if (epochs == 0) {
    rc = cnn_error(err, CNN_ERROR, "model '%s' has no completed epochs (train it with cnn_train)",
                   name);
    goto done;
  }
  if (!(title = sqlite3_mprintf("%s: accuracy", name))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if ((rc = cnn_svg_history(&svg, acc, val, epochs, title, err))) goto done;
  sqlite3_result_text(ctx, svg, -1, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  sqlite3_finalize(st);
  sqlite3_free(acc);
  sqlite3_free(val);
  sqlite3_free(title);
  cnn_free(svg);
}
