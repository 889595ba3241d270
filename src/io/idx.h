/*
 * idx.h - streaming reader of IDX files (the MNIST format), gzip-compressed or
 * raw, detected by content (zlib).
 *
 * IDX: a big-endian header {0, 0, type, rank} then rank uint32 dimensions, then
 * the elements row-major. Only type 0x08 (uint8) is accepted, of rank 1 (labels)
 * or rank 3 (images, count x rows x cols). Every header value is checked in 64-bit
 * arithmetic against caps before anything is allocated.
 */
#ifndef CNN_IO_IDX_H
#define CNN_IO_IDX_H

#include <stddef.h>
#include <stdint.h>

#define CNN_IDX_MAX_COUNT 100000000u  /* records in one file */
#define CNN_IDX_MAX_SIDE 4096u        /* rows or cols of one image */
#define CNN_IDX_MAX_RECORD (1u << 24) /* bytes of one record */

typedef struct cnn_idx cnn_idx;

/* Opens path and reads its header. expect_rank is 1 or 3. Messages start with
 * the file's base name: "train-images-idx3-ubyte.gz: not an IDX file (magic
 * 0x1f8b0808)"; record numbers in them are 0-based. A zero dimension or one
 * over the caps above is an error. cnn_idx_close(NULL) is a no-op. */
int cnn_idx_open(cnn_idx **out, const char *path, int expect_rank, char *err);
void cnn_idx_close(cnn_idx *f);

uint32_t cnn_idx_count(const cnn_idx *f);     /* records (dimension 0) */
uint32_t cnn_idx_rows(const cnn_idx *f);      /* rank 3: dimension 1; rank 1: 1 */
uint32_t cnn_idx_cols(const cnn_idx *f);      /* rank 3: dimension 2; rank 1: 1 */
size_t cnn_idx_record_size(const cnn_idx *f); /* rows * cols */
const char *cnn_idx_name(const cnn_idx *f);   /* base name of the path, as in messages */
uint64_t cnn_idx_tell(const cnn_idx *f);      /* 0-based index of the next record */

/* Reads the next `n` records into buf (n * record_size bytes). A short or
 * corrupt file is an error naming the file and the record where it ended
 * ("truncated: ended in record 123 of 10000", "truncated gzip data: ...",
 * "corrupt gzip data in record ..."); after it, every read fails. Asking for
 * more records than remain is an error too. */
int cnn_idx_read(cnn_idx *f, uint8_t *buf, size_t n, char *err);
/* Passes over the next `n` records (gzip data still has to be inflated), with
 * the errors of cnn_idx_read. */
int cnn_idx_skip(cnn_idx *f, uint64_t n, char *err);

#endif
