/*
 * fuzz_idx.c - libFuzzer target for the IDX reader (src/io/idx.c), raw and
 * gzip-compressed.
 *
 * cnn_idx_open reads from a path, so the input goes into one memfd per
 * process, opened again through /proc/self/fd/N on every run (no files left
 * behind, no disk traffic). The file is opened as labels and as images; when
 * it opens, records are pulled with reads and skips of varying sizes until the
 * end or the first error, and an error must leave every later read failing.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base.h"
#include "idx.h"

static int fuzz_fd = -1;
static char fuzz_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_fd = memfd_create("fuzz.idx", 0);
  if (fuzz_fd < 0) {
    perror("memfd_create");
    abort();
  }
  snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
  return 0;
}

static void write_input(const uint8_t *data, size_t size) {
  if (ftruncate(fuzz_fd, 0) != 0) abort();
  size_t done = 0;
  while (done < size) {
    ssize_t w = pwrite(fuzz_fd, data + done, size - done, (off_t)done);
    if (w <= 0) abort();
    done += (size_t)w;
  }
}

/* Reads the whole file the way the importer does, in batches of 1..4 records
 * with an occasional skip; the pattern comes from the file's own size so
 * it is reproducible. */
static void read_all(cnn_idx *f, size_t size) {
  char err[CNN_ERRMAX];
  size_t rec = cnn_idx_record_size(f);
  if (rec == 0 || rec > CNN_IDX_MAX_RECORD) abort(); /* header checks broken */
  if (cnn_idx_rows(f) * (uint64_t)cnn_idx_cols(f) != rec) abort();
  uint8_t *buf = malloc(4 * rec);
  if (!buf) return;
  unsigned step = (unsigned)(size % 5);
  while (cnn_idx_tell(f) < cnn_idx_count(f)) {
    uint64_t left = cnn_idx_count(f) - cnn_idx_tell(f);
    size_t n = 1 + step++ % 4;
    if (n > left) n = (size_t)left;
    int rc = step % 7 == 0 ? cnn_idx_skip(f, n, err) : cnn_idx_read(f, buf, n, err);
    if (rc != CNN_OK) {
      if (rc != CNN_ERROR && rc != CNN_NOMEM) abort();
      if (!memchr(err, 0, sizeof err) || err[0] == 0) abort(); /* a message is promised */
      /* After an error, every read fails. */
      if (cnn_idx_read(f, buf, 1, err) == CNN_OK) abort();
      break;
    }
  }
  /* Past the end is an error, never a read. */
  if (cnn_idx_tell(f) == cnn_idx_count(f) && cnn_idx_read(f, buf, 1, err) == CNN_OK) abort();
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CNN_ERRMAX];
  write_input(data, size);
  for (int rank = 1; rank <= 3; rank += 2) {
    cnn_idx *f = NULL;
    err[0] = 0;
    int rc = cnn_idx_open(&f, fuzz_path, rank, err);
    if (rc != CNN_OK) {
      if (f != NULL || err[0] == 0) abort();
      continue;
    }
    read_all(f, size);
    cnn_idx_close(f);
  }
  return 0;
}
