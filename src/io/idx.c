/*
 * idx.c - streaming reader of IDX files (MNIST's format) through zlib.
 *
 * gzread() passes raw files through unchanged and inflates gzip ones, so one
 * code path reads both; the header decides whether the content is IDX. Records
 * are never loaded as a whole: callers pull them in the order of the file.
 *
 * Conventions: base.h (status + err buffer, cnn_malloc). Every message starts
 * with the file's base name, so that it reads the same wherever the data lives:
 * "t10k-images-idx3-ubyte.gz: truncated: ended in record 123 of 10000".
 * Record numbers in messages are 0-based, like the idx column of cnn_mnist.
 */
#include "idx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base.h"

#define IDX_TYPE_UBYTE 0x08
/* zlib's default 8 KiB buffer makes inflate call read() too often. */
#define IDX_GZ_BUFFER (128u * 1024u)
/* gzread takes an unsigned length and returns an int. */
#define IDX_READ_CHUNK (1u << 30)

struct cnn_idx {
  gzFile gz;          /* owned; closes the file descriptor too */
  char *name;         /* owned: the path's base name, for messages */
  uint32_t count;     /* records (dimension 0) */
  uint32_t rows;      /* rank 3: dimension 1; rank 1: 1 */
  uint32_t cols;      /* rank 3: dimension 2; rank 1: 1 */
  size_t record_size; /* rows * cols bytes */
  uint64_t next;      /* index of the next record to read */
  int failed;         /* a read failed: the stream position is unknown */
};

static const char *idx_basename(const char *path) {
  const char *slash = strrchr(path, '/');
  /* "dir/" has no base name; the path as given is the best name then. */
  return slash && slash[1] ? slash + 1 : path;
}

static uint32_t idx_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads up to n bytes, looping over gzread's int-sized calls. Returns the
 * number of bytes delivered; *zerr receives zlib's error state afterwards
 * (Z_OK at a clean end, Z_BUF_ERROR when the gzip data was cut off). */
static size_t idx_gzread_full(gzFile gz, uint8_t *buf, size_t n, int *zerr, int *read_errno) {
  size_t got = 0;
  *read_errno = 0;
  while (got < n) {
    size_t want = n - got;
    if (want > IDX_READ_CHUNK) want = IDX_READ_CHUNK;
    errno = 0;
    int r = gzread(gz, buf + got, (unsigned)want);
    if (r <= 0) {
      *read_errno = errno;
      break;
    }
    got += (size_t)r;
  }
  *zerr = Z_OK;
  if (got < n) gzerror(gz, zerr);
  return got;
}

/* Explains a short read. `where` says which part ended ("the header (5 of 16
 * bytes)" or "record 123 of 10000"). */
static int idx_short_read(const char *name, gzFile gz, int zerr, int read_errno, const char *where,
                          char *err) {
  switch (zerr) {
  case Z_OK:
    return cnn_error(err, CNN_ERROR, "%s: truncated: ended in %s", name, where);
  case Z_BUF_ERROR:
    return cnn_error(err, CNN_ERROR, "%s: truncated gzip data: ended in %s", name, where);
  case Z_ERRNO:
    return cnn_error(err, CNN_ERROR, "%s: read error in %s: %s", name, where,
                     read_errno ? strerror(read_errno) : "unknown error");
  case Z_MEM_ERROR:
    return cnn_nomem(err);
  default: {
    int e;
    const char *msg = gzerror(gz, &e);
    /* zlib prefixes its message with the path it was given, "<fd:3>: ". */
    const char *sep = msg && strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ">: ") : NULL;
    if (sep) msg = sep + 3;
    return cnn_error(err, CNN_ERROR, "%s: corrupt gzip data in %s: %s", name, where,
                     msg && msg[0] ? msg : "invalid data");
  }
  }
}

int cnn_idx_open(cnn_idx **out, const char *path, int expect_rank, char *err) {
  int rc = CNN_OK;
  int fd = -1;
  cnn_idx *f = NULL;
  *out = NULL;
  if (expect_rank != 1 && expect_rank != 3)
    return cnn_error(err, CNN_ERROR, "cnn_idx_open: rank must be 1 or 3, got %d", expect_rank);
  const char *name = idx_basename(path);

  f = cnn_calloc(1, sizeof *f);
  if (!f) return cnn_nomem(err);
  size_t name_len = strlen(name);
  f->name = cnn_malloc(name_len + 1);
  if (!f->name) {
    rc = cnn_nomem(err);
    goto done;
  }
  memcpy(f->name, name, name_len + 1);

  /* open() + fstat() rather than gzopen(): a directory opens fine and would
   * only fail later with a vaguer error. */
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = cnn_error(err, CNN_ERROR, "%s: cannot open: %s", name, strerror(errno));
    goto done;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rc = cnn_error(err, CNN_ERROR, "%s: cannot open: %s", name, strerror(errno));
    goto done;
  }
  if (S_ISDIR(st.st_mode)) {
    rc = cnn_error(err, CNN_ERROR, "%s: cannot open: %s", name, strerror(EISDIR));
    goto done;
  }
  f->gz = gzdopen(fd, "rb");
  if (!f->gz) {
    rc = cnn_nomem(err); /* gzdopen fails only when it cannot allocate */
    goto done;
  }
  fd = -1; /* now owned by f->gz */
  gzbuffer(f->gz, IDX_GZ_BUFFER);

  /* Header: {0, 0, type, rank} then rank big-endian uint32 dimensions. */
  uint8_t head[4 + 4 * 3];
  size_t head_size = 4 + 4 * (size_t)expect_rank;
  int zerr, read_errno;
  size_t got = idx_gzread_full(f->gz, head, 4, &zerr, &read_errno);
  if (got == 0 && zerr == Z_OK) {
    rc = cnn_error(err, CNN_ERROR, "%s: empty file", name);
    goto done;
  }
  /* Bytes that are present already decide "not IDX", even in a short file. */
  if ((got >= 1 && head[0] != 0) || (got >= 2 && head[1] != 0)) {
    char hex[2 * 4 + 1];
    for (size_t i = 0; i < got; i++) {
      static const char digits[] = "0123456789abcdef";
      hex[2 * i] = digits[head[i] >> 4];
      hex[2 * i + 1] = digits[head[i] & 15];
    }
    hex[2 * got] = 0;
    rc = cnn_error(err, CNN_ERROR, "%s: not an IDX file (magic 0x%s)", name, hex);
    goto done;
  }
  if (got == 4) got += idx_gzread_full(f->gz, head + 4, head_size - 4, &zerr, &read_errno);
  if (got >= 3 && head[2] != IDX_TYPE_UBYTE) {
    rc = cnn_error(err, CNN_ERROR,
                   "%s: unsupported IDX element type 0x%02x (only 0x08, unsigned bytes)", name,
                   head[2]);
    goto done;
  }
  if (got >= 4 && head[3] != expect_rank) {
    rc = cnn_error(err, CNN_ERROR, "%s: expected an IDX file of rank %d (%s), got rank %d", name,
                   expect_rank, expect_rank == 3 ? "images" : "labels", head[3]);
    goto done;
  }
  if (got < head_size) {
    char where[64];
    snprintf(where, sizeof where, "the header (%zu of %zu bytes)", got, head_size);
    rc = idx_short_read(name, f->gz, zerr, read_errno, where, err);
    goto done;
  }

  uint64_t count = idx_be32(head + 4);
  uint64_t rows = expect_rank == 3 ? idx_be32(head + 8) : 1;
  uint64_t cols = expect_rank == 3 ? idx_be32(head + 12) : 1;
  if (expect_rank == 1 && (count == 0 || count > CNN_IDX_MAX_COUNT)) {
    rc = cnn_error(err, CNN_ERROR, "%s: absurd record count %llu (must be 1..%u)", name,
                   (unsigned long long)count, CNN_IDX_MAX_COUNT);
    goto done;
  }
  if (count == 0 || count > CNN_IDX_MAX_COUNT || rows == 0 || rows > CNN_IDX_MAX_SIDE ||
      cols == 0 || cols > CNN_IDX_MAX_SIDE || rows * cols > CNN_IDX_MAX_RECORD) {
    rc =
        cnn_error(err, CNN_ERROR,
                  "%s: absurd dimensions %llux%llux%llu (count must be 1..%u, rows and cols 1..%u)",
                  name, (unsigned long long)count, (unsigned long long)rows,
                  (unsigned long long)cols, CNN_IDX_MAX_COUNT, CNN_IDX_MAX_SIDE);
    goto done;
  }
  f->count = (uint32_t)count;
  f->rows = (uint32_t)rows;
  f->cols = (uint32_t)cols;
  f->record_size = (size_t)(rows * cols);
  f->next = 0;

done:
  if (fd >= 0) close(fd);
  if (rc != CNN_OK) {
    cnn_idx_close(f);
    return rc;
  }
  *out = f;
  return CNN_OK;
}

void cnn_idx_close(cnn_idx *f) {
  if (!f) return;
  if (f->gz) gzclose(f->gz);
  cnn_free(f->name);
  cnn_free(f);
}

uint32_t cnn_idx_count(const cnn_idx *f) { return f->count; }
uint32_t cnn_idx_rows(const cnn_idx *f) { return f->rows; }
uint32_t cnn_idx_cols(const cnn_idx *f) { return f->cols; }
size_t cnn_idx_record_size(const cnn_idx *f) { return f->record_size; }
const char *cnn_idx_name(const cnn_idx *f) { return f->name; }
uint64_t cnn_idx_tell(const cnn_idx *f) { return f->next; }

/* The checks shared by read and skip: no earlier failure, n records remain. */
static int idx_can_read(const cnn_idx *f, uint64_t n, char *err) {
  if (f->failed)
    return cnn_error(err, CNN_ERROR, "%s: cannot read after an earlier error", f->name);
  if (n > f->count - f->next)
    return cnn_error(err, CNN_ERROR, "%s: cannot read records %llu..%llu: the file has %u", f->name,
                     (unsigned long long)f->next, (unsigned long long)(f->next + n - 1), f->count);
  return CNN_OK;
}

/* Reads `bytes` bytes that start at record f->next; on a short read the error
 * names the record in which the data ended. */
static int idx_read_bytes(cnn_idx *f, uint8_t *buf, size_t bytes, char *err) {
  int zerr, read_errno;
  size_t got = idx_gzread_full(f->gz, buf, bytes, &zerr, &read_errno);
  if (got < bytes) {
    uint64_t at = f->next + got / f->record_size;
    char where[64];
    snprintf(where, sizeof where, "record %llu of %u", (unsigned long long)at, f->count);
    f->failed = 1;
    return idx_short_read(f->name, f->gz, zerr, read_errno, where, err);
  }
  return CNN_OK;
}

int cnn_idx_read(cnn_idx *f, uint8_t *buf, size_t n, char *err) {
  int rc = idx_can_read(f, n, err);
  if (rc != CNN_OK || n == 0) return rc;
  /* n * record_size <= count * 2^24 < 2^51: no overflow in 64 bits, but size_t
   * may be 32 bits wide. */
  size_t bytes;
  if (cnn_mul_size(&bytes, n, f->record_size) != 0)
    return cnn_error(err, CNN_ERROR, "%s: cannot read %zu records at once", f->name, n);
  rc = idx_read_bytes(f, buf, bytes, err);
  if (rc == CNN_OK) f->next += n;
  return rc;
}

int cnn_idx_skip(cnn_idx *f, uint64_t n, char *err) {
  int rc = idx_can_read(f, n, err);
  /* Inflate has to run over the skipped data anyway; a record at a time keeps
   * the record number of a failure exact and needs no allocation. */
  uint8_t scratch[16384];
  for (uint64_t i = 0; rc == CNN_OK && i < n; i++) {
    for (size_t off = 0; rc == CNN_OK && off < f->record_size; off += sizeof scratch) {
      size_t chunk = f->record_size - off < sizeof scratch ? f->record_size - off : sizeof scratch;
      rc = idx_read_bytes(f, scratch, chunk, err);
    }
    if (rc == CNN_OK) f->next++;
  }
  return rc;
}
