/*
 * fuzz_image.c - libFuzzer target for image input (src/io/decode.c, stb.c):
 * decoding any encoded image and preprocessing it into the 28x28 MNIST
 * convention, exactly what cnn_predict does with a blob.
 *
 * Checks beyond "no crash": a decoded image has a size within the caps and
 * owned pixels; the 784-byte output of a successful conversion is the same
 * when the already decoded image is preprocessed again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CNN_ERRMAX];
  uint8_t out[CNN_MNIST_BYTES], again[CNN_MNIST_BYTES];
  int rc = cnn_image_to_mnist(out, data, size, err);
  if (rc != CNN_OK && rc != CNN_ERROR && rc != CNN_NOMEM) abort();

  cnn_gray g = {0};
  int drc = cnn_image_decode(&g, data, size, err);
  if (drc == CNN_OK) {
    if (!g.px || g.w <= 0 || g.h <= 0 || (uint64_t)g.w * (uint64_t)g.h > CNN_IMAGE_MAX_PIXELS)
      abort();
    int prc = cnn_gray_to_mnist(again, &g, err);
    /* A 784-byte blob that is not an image is taken raw by to_mnist; an
     * image must give the same answer both ways. */
    if (size != CNN_MNIST_BYTES || rc == CNN_OK) {
      if (prc != rc) abort();
      if (rc == CNN_OK && memcmp(out, again, sizeof out) != 0) abort();
    }
  } else if (g.px || g.w || g.h) {
    abort(); /* on failure the image is left empty */
  }
  cnn_gray_clear(&g);
  return 0;
}
