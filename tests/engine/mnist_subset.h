/*
 * mnist_subset.h - loads the first n records of the real MNIST files from
 * $CNN_DATA for engine tests (header-only, test code).
 */
#ifndef CNN_TEST_MNIST_SUBSET_H
#define CNN_TEST_MNIST_SUBSET_H

#include <stdio.h>
#include <stdlib.h>

#include "base.h"
#include "idx.h"

/* Reads n images and labels of "train" or "t10k" into malloc'd buffers. */
static int mnist_subset(const char *set, size_t n, uint8_t **images, uint8_t **labels) {
  char path[1024], err[CNN_ERRMAX];
  const char *dir = getenv("CNN_DATA");
  cnn_idx *f = NULL;
  if (!dir) dir = "data";
  *images = malloc(n * 784), *labels = malloc(n);
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, set);
  if (cnn_idx_open(&f, path, 3, err) || cnn_idx_read(f, *images, n, err)) goto fail;
  cnn_idx_close(f);
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, set);
  if (cnn_idx_open(&f, path, 1, err) || cnn_idx_read(f, *labels, n, err)) goto fail;
  cnn_idx_close(f);
  return 0;
fail:
  fprintf(stderr, "mnist_subset: %s\n", err);
  cnn_idx_close(f);
  return -1;
}

#endif
