/*
 * augment.c - cnn_augment(image, options [, seed]) -> BLOB: an image as
 * training's "augment" option would change it, to look at:
 *
 *   SELECT writefile('augmented.png', cnn_grid_png('SELECT cnn_augment(image,
 *     ''{"rotation": 15, "elastic": {"alpha": 34, "sigma": 4}}'', id) AS image,
 *     label FROM mnist_train LIMIT 100'));
 *
 * image: any image argument (784 raw bytes or an encoded image); options: the
 * JSON object of cnn_train's "augment" (src/augmentation.h); seed: an integer.
 * The result is 784 bytes, 28x28 uint8. With a seed it is pure: the same
 * arguments give the same bytes (SQLITE_DETERMINISTIC); without one each
 * call draws a fresh seed, so that form is not deterministic.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ext.h"
#include "image.h"
#include "json.h"

void cnn_fn_augment(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  uint8_t img[CNN_MNIST_BYTES];
  float out[CNN_MNIST_BYTES];
  char err[CNN_ERRMAX] = "", sub[CNN_ERRMAX], what[48];
  cnn_json *root = NULL;
  cnn_augment *a = NULL;
  cnn_augment_config cfg;
  sqlite3_int64 seed = 0;
  int rc;

  if ((rc = cnn_arg_image(argv[0], img, err))) goto done;
  if (sqlite3_value_type(argv[1]) != SQLITE_TEXT) {
    rc = cnn_error(err, CNN_ERROR, "options must be JSON text like '{\"rotation\": 10}'; got %s",
                   cnn_value_describe(argv[1], what, sizeof what));
    goto done;
  }
  const char *text = (const char *)sqlite3_value_text(argv[1]);
  if (!text) {
    rc = cnn_nomem(err);
    goto done;
  }
  if ((rc = cnn_json_parse(&root, text, strlen(text), sub))) {
    if (rc != CNN_NOMEM) rc = cnn_error(err, rc, "options are not valid JSON: %s", sub);
    goto done;
  }
  if ((rc = cnn_augment_parse(&cfg, root, NULL, err))) goto done;
  if (argc > 2) {
    if (!cnn_value_is_int(argv[2], &seed)) {
      rc = cnn_error(err, CNN_ERROR,
                     "seed must be an integer (leave it out for a random one); got %s",
                     cnn_value_describe(argv[2], what, sizeof what));
      goto done;
    }
  } else {
    sqlite3_randomness(sizeof seed, &seed);
  }
  if ((rc = cnn_augment_new(&a, &cfg, CNN_MNIST_SIDE, CNN_MNIST_SIDE, 1, 1, err))) goto done;
  cnn_augment_image(a, out, img, cnn_augment_stream((uint64_t)seed, 0, 0), 0);
  for (int i = 0; i < CNN_MNIST_BYTES; i++) img[i] = (uint8_t)lrintf(out[i] * 255.0f);
  sqlite3_result_blob(ctx, img, CNN_MNIST_BYTES, SQLITE_TRANSIENT);
done:
  if (rc) cnn_result_status(ctx, rc, err);
  cnn_augment_free(a);
  cnn_json_free(root);
}
