/*
 * image.c - image arguments of the SQLite face:
 *   cnn_arg_image(value, out, err)   any image argument -> 784 MNIST bytes
 *   cnn_preprocess(image)            -> BLOB, the 784 bytes the model sees
 * (cnn_image_png, which draws those bytes, is in ext/pictures.c.)
 *
 * An image argument is a BLOB (TEXT is read as its bytes): 784 bytes that are
 * not an encoded image are a raw MNIST image taken as is; anything stb_image
 * recognises is decoded and preprocessed (src/io/decode.c). cnn_preprocess is
 * pure: the same argument always gives the same bytes.
 */
#include <string.h>

#include "ext.h"
#include "image.h"

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
    cnn_result_status(ctx, rc, err);
    return;
  }
  sqlite3_result_blob(ctx, img, CNN_MNIST_BYTES, SQLITE_TRANSIENT);
}
