/*
 * reader.h - reading a streamed dataset (cnn_dataset.read) one batch ahead:
 * while the network computes batch k from one buffer, a thread fills the
 * other with batch k+1. Used by the training loop and evaluation.
 */
#ifndef CNN_READER_H
#define CNN_READER_H

#include <pthread.h>

#include "cnn.h"

typedef struct cnn_reader {
  const cnn_dataset *d; /* borrowed */
  size_t isize;         /* bytes per image */
  int cap;              /* rows per buffer */
  uint8_t *images[2];   /* owned, cap x isize each */
  uint8_t *labels[2];   /* owned, cap each */
  uint32_t *idx[2];     /* owned, cap each: the rows asked for */
  int fill;             /* buffer the next start fills */
  int n;                /* rows asked for by the pending start */
  int pending;          /* a start has not been waited for */
  int threaded;         /* the pending read runs on `thread` */
  pthread_t thread;
  int rc; /* the pending read's status and message */
  char err[CNN_ERRMAX];
} cnn_reader;

int cnn_reader_init(cnn_reader *r, const cnn_dataset *d, size_t isize, int cap, char *err);
/* Waits for a pending read; frees the buffers. Zeroed or cleared: a no-op. */
void cnn_reader_clear(cnn_reader *r);
/* Starts reading rows idx[0..n) (n <= cap) into the next buffer, on a thread
 * unless the dataset says same_thread (or no thread can be started). */
void cnn_reader_start(cnn_reader *r, const uint32_t *idx, int n);
/* Waits for the started read: its buffers stay valid until the next start
 * but one. */
int cnn_reader_wait(cnn_reader *r, const uint8_t **images, const uint8_t **labels, char *err);

#endif
