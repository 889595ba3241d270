/*
 * image.c - image arguments and the picture functions of the SQLite face:
 *   cnn_arg_image(value, out, err)   any image argument -> 784 MNIST bytes
 *   cnn_preprocess(image)            -> BLOB, the 784 bytes the model sees
 *   cnn_image_png(image [, scale])   -> BLOB, a PNG of those 28x28 pixels,
 *                                       each scale x scale (1..64, default 4)
 *
 * An image argument is a BLOB (TEXT is read as its bytes): 784 bytes that are
 * not an encoded image are a raw MNIST image taken as is; anything stb_image
 * recognises is decoded and preprocessed (src/io/decode.c). Both functions are
 * pure: the same argument always gives the same bytes.
 */
#include <string.h>

#include "ext.h"
#include "image.h"

/* Scale of cnn_image_png without its second argument: 112x112, big enough to
 * see in a notebook or a browser, small enough for a thumbnail column. */
#define PNG_DEFAULT_SCALE 4

int cnn_arg_image(sqlite3_value *v, uint8_t out[784], char *err) {
  char desc[64];
  int type = sqlite3_value_type(v);
  if (type == SQLITE_BLOB || type == SQLITE_TEXT) {
    const uint8_t *p = sqlite3_value_blob(v);
    int n = sqlite3_value_bytes(v);
    int w, h;
    int rc = n > 0 && p ? cnn_image_info(p, (size_t)n, &w, &h, err) : CNN_ERROR;
    if (rc == CNN_NOMEM) return rc;
    if (rc == CNN_OK) return cnn_image_to_mnist(out, p, (size_t)n, err);
    if (n == CNN_MNIST_BYTES) {
      memcpy(out, p, CNN_MNIST_BYTES);
      return CNN_OK;
    }
  }
  return cnn_error(err, CNN_ERROR, "image must be 784 raw bytes or an encoded image; got %s",
                   cnn_value_describe(v, desc, sizeof desc));
}

void cnn_fn_preprocess(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  uint8_t img[CNN_MNIST_BYTES];
  char err[CNN_ERRMAX] = "";
  int rc = cnn_arg_image(argv[0], img, err);
  if (rc != CNN_OK) {
    cnn_result_status(ctx, "cnn_preprocess", rc, err);
    return;
  }
  sqlite3_result_blob(ctx, img, CNN_MNIST_BYTES, SQLITE_TRANSIENT);
}

void cnn_fn_image_png(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  uint8_t img[CNN_MNIST_BYTES];
  uint8_t *png = NULL; /* owned until handed to SQLite */
  size_t len = 0;
  char err[CNN_ERRMAX] = "";
  int scale = PNG_DEFAULT_SCALE;
  if (argc > 1) {
    sqlite3_int64 s = 0;
    int is_int = cnn_value_is_int(argv[1], &s);
    if (!is_int || s < 1 || s > CNN_PNG_MAX_SCALE) {
      char desc[64];
      if (is_int)
        cnn_result_errorf(ctx, "cnn_image_png: scale must be an integer from 1 to %d; got %lld",
                          CNN_PNG_MAX_SCALE, (long long)s);
      else
        cnn_result_errorf(ctx, "cnn_image_png: scale must be an integer from 1 to %d; got %s",
                          CNN_PNG_MAX_SCALE, cnn_value_describe(argv[1], desc, sizeof desc));
      return;
    }
    scale = (int)s;
  }
  int rc = cnn_arg_image(argv[0], img, err);
  if (rc == CNN_OK) rc = cnn_png_gray(&png, &len, img, CNN_MNIST_SIDE, CNN_MNIST_SIDE, scale, err);
  if (rc != CNN_OK) {
    cnn_result_status(ctx, "cnn_image_png", rc, err);
    return;
  }
  sqlite3_result_blob64(ctx, png, (sqlite3_uint64)len, cnn_free);
}
