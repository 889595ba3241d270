/*
 * layer.c - what several layers share: the sliding-window arithmetic of conv
 * and pooling (Keras' rules), and the bias gradient of conv2d and dense (their
 * forward bias is part of the product: cnn_gemm_bias).
 */
#include <string.h>

#include "layer.h"

int cnn_window(int in, int k, int s, cnn_padding pad, int *pad_before) {
  if (pad == CNN_PAD_SAME) {
    int out = (in + s - 1) / s;
    long total = (long)(out - 1) * s + k - in;
    if (total < 0) total = 0;
    *pad_before = (int)(total / 2); /* the odd pixel goes after, as in TF */
    return out;
  }
  *pad_before = 0;
  return in < k ? 0 : (in - k) / s + 1;
}

void cnn_bias_grad(float *restrict db, const float *restrict dy, size_t rows, size_t cols) {
  memset(db, 0, cols * sizeof *db);
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < cols; j++) db[j] += dy[r * cols + j];
}
