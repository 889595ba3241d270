/*
 * test_idx.c - the IDX reader (src/io/idx.c): round trips of raw and gzip
 * files it writes itself, every corrupt input with its exact message, the
 * allocation failures of cnn_idx_open, and the real MNIST files of $CNN_DATA
 * (header, label histograms, pixel sums).
 *
 * Files live in a fresh mkdtemp() directory, removed at the end. Checks are
 * those of check.h: each failure prints its line, exit status 0 means every
 * check passed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base.h"
#include "check.h"
#include "idx.h"

static char tmpdir[] = "/tmp/test_idx.XXXXXX";

static const char *tmp_path(const char *name) {
  static char buf[4][512]; /* tmpdir (21 bytes) + a file name (up to 255) */
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

static void write_raw(const char *name, const void *data, size_t n) {
  FILE *fp = fopen(tmp_path(name), "wb");
  if (!fp || fwrite(data, 1, n, fp) != n || fclose(fp) != 0) {
    fprintf(stderr, "cannot write %s\n", name);
    exit(2);
  }
}

static void write_gz(const char *name, const void *data, size_t n) {
  gzFile gz = gzopen(tmp_path(name), "wb");
  if (!gz || (n && gzwrite(gz, data, (unsigned)n) != (int)n) || gzclose(gz) != Z_OK) {
    fprintf(stderr, "cannot write %s\n", name);
    exit(2);
  }
}

/* Reads a whole file into a malloc'd buffer (test scaffolding, not engine code). */
static uint8_t *slurp(const char *name, size_t *n) {
  FILE *fp = fopen(tmp_path(name), "rb");
  if (!fp) exit(2);
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)len + 1);
  if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len) exit(2);
  fclose(fp);
  *n = (size_t)len;
  return buf;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An IDX header of rank 3 (images) or 1 (labels) followed by payload. */
static size_t make_idx(uint8_t *out, int rank, uint32_t count, uint32_t rows, uint32_t cols,
                       const uint8_t *payload, size_t payload_size) {
  out[0] = 0, out[1] = 0, out[2] = 0x08, out[3] = (uint8_t)rank;
  put_be32(out + 4, count);
  size_t n = 8;
  if (rank == 3) {
    put_be32(out + 8, rows);
    put_be32(out + 12, cols);
    n = 16;
  }
  if (payload_size) memcpy(out + n, payload, payload_size);
  return n + payload_size;
}

/* Opens and expects failure with exactly `want` as the message. */
static void expect_open_error(const char *name, int rank, const char *want) {
  char err[CNN_ERRMAX] = "";
  cnn_idx *f = (cnn_idx *)&f; /* must be reset to NULL on failure */
  int rc = cnn_idx_open(&f, tmp_path(name), rank, err);
  CHECK(rc == CNN_ERROR);
  CHECK(f == NULL);
  CHECK_STR(err, want);
}

static void test_round_trip(int gzip) {
  /* 3 images of 2x4 plus their 3 labels. */
  uint8_t pixels[3 * 8], labels[3] = {7, 0, 255}, file[64];
  for (int i = 0; i < 24; i++) pixels[i] = (uint8_t)(i * 11 + 3);
  size_t n = make_idx(file, 3, 3, 2, 4, pixels, sizeof pixels);
  const char *img = gzip ? "img.gz" : "img.idx", *lab = gzip ? "lab.gz" : "lab.idx";
  (gzip ? write_gz : write_raw)(img, file, n);
  n = make_idx(file, 1, 3, 0, 0, labels, sizeof labels);
  (gzip ? write_gz : write_raw)(lab, file, n);

  char err[CNN_ERRMAX] = "";
  cnn_idx *f = NULL;
  CHECK(cnn_idx_open(&f, tmp_path(img), 3, err) == CNN_OK);
  if (!f) return;
  CHECK(cnn_idx_count(f) == 3);
  CHECK(cnn_idx_rows(f) == 2);
  CHECK(cnn_idx_cols(f) == 4);
  CHECK(cnn_idx_record_size(f) == 8);
  CHECK_STR(cnn_idx_name(f), img);
  uint8_t got[24] = {0};
  CHECK(cnn_idx_read(f, got, 1, err) == CNN_OK); /* one record, then the other two at once */
  CHECK(cnn_idx_tell(f) == 1);
  CHECK(cnn_idx_read(f, got + 8, 2, err) == CNN_OK);
  CHECK(cnn_idx_tell(f) == 3);
  CHECK(memcmp(got, pixels, sizeof pixels) == 0);
  CHECK(cnn_idx_read(f, got, 0, err) == CNN_OK);
  CHECK(cnn_idx_read(f, got, 1, err) == CNN_ERROR);
  CHECK_STR(err, gzip ? "img.gz: cannot read records 3..3: the file has 3"
                      : "img.idx: cannot read records 3..3: the file has 3");
  cnn_idx_close(f);

  /* Skipping lands on the same bytes as reading. */
  CHECK(cnn_idx_open(&f, tmp_path(img), 3, err) == CNN_OK);
  if (!f) return;
  CHECK(cnn_idx_skip(f, 0, err) == CNN_OK && cnn_idx_tell(f) == 0);
  CHECK(cnn_idx_skip(f, 2, err) == CNN_OK && cnn_idx_tell(f) == 2);
  CHECK(cnn_idx_read(f, got, 1, err) == CNN_OK);
  CHECK(memcmp(got, pixels + 16, 8) == 0);
  CHECK(cnn_idx_skip(f, 1, err) == CNN_ERROR);
  CHECK_STR(err, gzip ? "img.gz: cannot read records 3..3: the file has 3"
                      : "img.idx: cannot read records 3..3: the file has 3");
  cnn_idx_close(f);

  CHECK(cnn_idx_open(&f, tmp_path(lab), 1, err) == CNN_OK);
  if (!f) return;
  CHECK(cnn_idx_count(f) == 3);
  CHECK(cnn_idx_rows(f) == 1 && cnn_idx_cols(f) == 1 && cnn_idx_record_size(f) == 1);
  uint8_t l[3] = {0};
  CHECK(cnn_idx_read(f, l, 3, err) == CNN_OK);
  CHECK(memcmp(l, labels, 3) == 0);
  cnn_idx_close(f);

  /* The rank is checked both ways. */
  expect_open_error(img, 1,
                    gzip ? "img.gz: expected an IDX file of rank 1 (labels), got rank 3"
                         : "img.idx: expected an IDX file of rank 1 (labels), got rank 3");
  expect_open_error(lab, 3,
                    gzip ? "lab.gz: expected an IDX file of rank 3 (images), got rank 1"
                         : "lab.idx: expected an IDX file of rank 3 (images), got rank 1");
}

static void test_bad_headers(void) {
  uint8_t file[64];
  size_t n;

  expect_open_error("missing.idx", 3, "missing.idx: cannot open: No such file or directory");
  mkdir(tmp_path("adir"), 0700);
  expect_open_error("adir", 3, "adir: cannot open: Is a directory");

  write_raw("empty.idx", "", 0);
  expect_open_error("empty.idx", 3, "empty.idx: empty file");
  write_gz("empty.gz", "", 0); /* a valid gzip stream of nothing */
  expect_open_error("empty.gz", 3, "empty.gz: empty file");

  write_raw("text.txt", "hello, world\n", 13);
  expect_open_error("text.txt", 3, "text.txt: not an IDX file (magic 0x68656c6c)");
  write_raw("short.txt", "h", 1);
  expect_open_error("short.txt", 1, "short.txt: not an IDX file (magic 0x68)");
  write_gz("text.gz", "hello, world\n", 13);
  expect_open_error("text.gz", 3, "text.gz: not an IDX file (magic 0x68656c6c)");

  n = make_idx(file, 3, 1, 2, 2, (const uint8_t *)"abcd", 4);
  file[1] = 1;
  write_raw("magic1.idx", file, n);
  expect_open_error("magic1.idx", 3, "magic1.idx: not an IDX file (magic 0x00010803)");
  file[1] = 0, file[2] = 0x0d; /* float32 */
  write_raw("float.idx", file, n);
  expect_open_error("float.idx", 3,
                    "float.idx: unsupported IDX element type 0x0d (only 0x08, unsigned bytes)");
  file[2] = 0x08, file[3] = 2;
  write_raw("rank2.idx", file, n);
  expect_open_error("rank2.idx", 3,
                    "rank2.idx: expected an IDX file of rank 3 (images), got rank 2");

  n = make_idx(file, 3, 1, 2, 2, NULL, 0);
  write_raw("head6.idx", file, 6);
  expect_open_error("head6.idx", 3, "head6.idx: truncated: ended in the header (6 of 16 bytes)");
  write_raw("head2.idx", file, 2);
  expect_open_error("head2.idx", 3, "head2.idx: truncated: ended in the header (2 of 16 bytes)");
  write_gz("head15.gz", file, 15);
  expect_open_error("head15.gz", 3, "head15.gz: truncated: ended in the header (15 of 16 bytes)");

  /* Absurd dimensions: zero, and over the caps, including values whose
   * products overflow 32 bits. */
  n = make_idx(file, 3, 0, 28, 28, NULL, 0);
  write_raw("count0.idx", file, n);
  expect_open_error("count0.idx", 3,
                    "count0.idx: absurd dimensions 0x28x28 (count must be 1..100000000, rows and "
                    "cols 1..4096)");
  n = make_idx(file, 3, 10, 0, 28, NULL, 0);
  write_raw("rows0.idx", file, n);
  expect_open_error("rows0.idx", 3,
                    "rows0.idx: absurd dimensions 10x0x28 (count must be 1..100000000, rows and "
                    "cols 1..4096)");
  n = make_idx(file, 3, 0xffffffffu, 0xffffffffu, 0x10000u, NULL, 0);
  write_raw("huge.idx", file, n);
  expect_open_error("huge.idx", 3,
                    "huge.idx: absurd dimensions 4294967295x4294967295x65536 (count must be "
                    "1..100000000, rows and cols 1..4096)");
  n = make_idx(file, 3, 5, 28, 4097, NULL, 0);
  write_gz("wide.gz", file, n);
  expect_open_error("wide.gz", 3,
                    "wide.gz: absurd dimensions 5x28x4097 (count must be 1..100000000, rows and "
                    "cols 1..4096)");
  n = make_idx(file, 1, 0, 0, 0, NULL, 0);
  write_raw("lab0.idx", file, n);
  expect_open_error("lab0.idx", 1, "lab0.idx: absurd record count 0 (must be 1..100000000)");
  n = make_idx(file, 1, 100000001u, 0, 0, NULL, 0);
  write_raw("labhuge.idx", file, n);
  expect_open_error("labhuge.idx", 1,
                    "labhuge.idx: absurd record count 100000001 (must be 1..100000000)");

  /* The largest accepted header opens without allocating the data. */
  n = make_idx(file, 3, CNN_IDX_MAX_COUNT, CNN_IDX_MAX_SIDE, CNN_IDX_MAX_SIDE, NULL, 0);
  write_raw("max.idx", file, n);
  char err[CNN_ERRMAX];
  cnn_idx *f = NULL;
  CHECK(cnn_idx_open(&f, tmp_path("max.idx"), 3, err) == CNN_OK);
  if (f) CHECK(cnn_idx_record_size(f) == (size_t)1 << 24);
  cnn_idx_close(f);
}

/* A file that ends before its header's count: the error names the record. */
static void test_short_data(int gzip) {
  uint8_t pixels[5 * 4], file[64];
  memset(pixels, 9, sizeof pixels);
  /* header says 5 records of 2x2, data holds 3.5 */
  size_t n = make_idx(file, 3, 5, 2, 2, pixels, 14);
  const char *name = gzip ? "short.gz" : "short.idx";
  (gzip ? write_gz : write_raw)(name, file, n);
  char err[CNN_ERRMAX] = "";
  cnn_idx *f = NULL;
  CHECK(cnn_idx_open(&f, tmp_path(name), 3, err) == CNN_OK);
  if (!f) return;
  uint8_t got[20];
  CHECK(cnn_idx_read(f, got, 2, err) == CNN_OK);
  CHECK(cnn_idx_read(f, got, 3, err) == CNN_ERROR);
  CHECK_STR(err, gzip ? "short.gz: truncated: ended in record 3 of 5"
                      : "short.idx: truncated: ended in record 3 of 5");
  CHECK(cnn_idx_read(f, got, 1, err) == CNN_ERROR);
  CHECK_STR(err, gzip ? "short.gz: cannot read after an earlier error"
                      : "short.idx: cannot read after an earlier error");
  cnn_idx_close(f);

  /* Skipping over the end of the data fails the same way. */
  CHECK(cnn_idx_open(&f, tmp_path(name), 3, err) == CNN_OK);
  if (!f) return;
  CHECK(cnn_idx_skip(f, 5, err) == CNN_ERROR);
  CHECK_STR(err, gzip ? "short.gz: truncated: ended in record 3 of 5"
                      : "short.idx: truncated: ended in record 3 of 5");
  cnn_idx_close(f);
}

/* Cut-off and damaged gzip streams. */
static void test_bad_gzip(void) {
  enum { COUNT = 1000, SIDE = 8, REC = SIDE * SIDE };
  static uint8_t file[16 + COUNT * REC];
  static uint8_t payload[COUNT * REC];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof payload; i++) { /* noise, so deflate cannot shrink it much */
    x = x * 1103515245u + 12345u;
    payload[i] = (uint8_t)(x >> 24);
  }
  size_t n = make_idx(file, 3, COUNT, SIDE, SIDE, payload, sizeof payload);
  write_gz("whole.gz", file, n);
  size_t gz_size;
  uint8_t *gz = slurp("whole.gz", &gz_size);

  /* Cut in the middle: the header opens, reading stops with the record. */
  write_raw("half.gz", gz, gz_size / 2);
  char err[CNN_ERRMAX] = "";
  cnn_idx *f = NULL;
  CHECK(cnn_idx_open(&f, tmp_path("half.gz"), 3, err) == CNN_OK);
  if (f) {
    uint8_t rec[REC];
    int rc = CNN_OK;
    uint64_t good = 0;
    while ((rc = cnn_idx_read(f, rec, 1, err)) == CNN_OK) {
      CHECK(memcmp(rec, payload + good * REC, REC) == 0);
      good++;
    }
    CHECK(good > 0 && good < COUNT);
    char want[CNN_ERRMAX];
    snprintf(want, sizeof want, "half.gz: truncated gzip data: ended in record %llu of 1000",
             (unsigned long long)good);
    CHECK_STR(err, want);
    cnn_idx_close(f);
  }

  /* Cut inside the gzip header or before any data came out. */
  write_raw("cut12.gz", gz, 12);
  expect_open_error("cut12.gz", 3,
                    "cut12.gz: truncated gzip data: ended in the header (0 of 16 bytes)");
  write_raw("cut5.gz", gz, 5);
  expect_open_error("cut5.gz", 3,
                    "cut5.gz: truncated gzip data: ended in the header (0 of 16 bytes)");

  /* A damaged CRC: zlib checks it when it reaches the end of the stream and
   * drops what it inflated in that call, so for a file this small the error
   * comes at open, for a large one in a later record. */
  gz[gz_size - 8] ^= 0xff;
  write_raw("crc.gz", gz, gz_size);
  gz[gz_size - 8] ^= 0xff;
  int rc = cnn_idx_open(&f, tmp_path("crc.gz"), 3, err);
  if (rc == CNN_OK) {
    uint8_t *all = malloc(sizeof payload);
    rc = cnn_idx_read(f, all, COUNT, err);
    free(all);
    cnn_idx_close(f);
  }
  CHECK(rc == CNN_ERROR);
  CHECK_CONTAINS(err, "crc.gz: corrupt gzip data in ");
  CHECK_CONTAINS(err, ": incorrect data check");

  /* Damaged deflate data right after the gzip header: an invalid block type. */
  gz[10] |= 0x06;
  write_raw("bad.gz", gz, gz_size);
  expect_open_error("bad.gz", 3,
                    "bad.gz: corrupt gzip data in the header (0 of 16 bytes): invalid block type");
  free(gz);
}

/* Every allocation of cnn_idx_open can fail cleanly. */
static void test_nomem(void) {
  uint8_t file[32];
  size_t n = make_idx(file, 3, 1, 2, 2, (const uint8_t *)"abcd", 4);
  write_raw("tiny.idx", file, n);
  int opened = 0;
  for (uint64_t k = 1; k < 10 && !opened; k++) {
    char err[CNN_ERRMAX] = "";
    cnn_idx *f = NULL;
    cnn_alloc_fail_at(k);
    int rc = cnn_idx_open(&f, tmp_path("tiny.idx"), 3, err);
    cnn_alloc_fail_at(0);
    if (rc == CNN_OK) {
      opened = 1;
      CHECK(k == 3); /* the two allocations of the handle came first */
      uint8_t rec[4];
      CHECK(cnn_idx_read(f, rec, 1, err) == CNN_OK && memcmp(rec, "abcd", 4) == 0);
    } else {
      CHECK(rc == CNN_NOMEM);
      CHECK_STR(err, "out of memory");
      CHECK(f == NULL);
    }
    cnn_idx_close(f);
  }
  CHECK(opened);
  cnn_idx_close(NULL);
}

/* The real MNIST files: headers and label histograms. */
static void test_mnist(void) {
  const char *data = getenv("CNN_DATA");
  if (!CHECK(data != NULL)) {
    fprintf(stderr, "CNN_DATA is not set (the directory of the MNIST .gz files)\n");
    return;
  }
  static const struct {
    const char *set;
    uint32_t count;
    uint32_t hist[10];
    uint8_t first_label;
    uint64_t pixel_sum;
  } sets[] = {
      {"train", 60000, {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}, 5, 1567298545},
      {"t10k", 10000, {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}, 7, 264923200},
  };
  for (size_t s = 0; s < 2; s++) {
    char path[1024], err[CNN_ERRMAX] = "";
    cnn_idx *img = NULL, *lab = NULL;
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", data, sets[s].set);
    CHECK(cnn_idx_open(&img, path, 3, err) == CNN_OK);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", data, sets[s].set);
    CHECK(cnn_idx_open(&lab, path, 1, err) == CNN_OK);
    if (!img || !lab) {
      fprintf(stderr, "%s\n", err);
      cnn_idx_close(img);
      cnn_idx_close(lab);
      continue;
    }
    CHECK(cnn_idx_count(img) == sets[s].count);
    CHECK(cnn_idx_rows(img) == 28 && cnn_idx_cols(img) == 28);
    CHECK(cnn_idx_count(lab) == sets[s].count);

    uint8_t *labels = malloc(sets[s].count);
    CHECK(cnn_idx_read(lab, labels, sets[s].count, err) == CNN_OK);
    uint32_t hist[10] = {0}, other = 0;
    for (uint32_t i = 0; i < sets[s].count; i++) {
      if (labels[i] < 10)
        hist[labels[i]]++;
      else
        other++;
    }
    CHECK(other == 0);
    CHECK(memcmp(hist, sets[s].hist, sizeof hist) == 0);
    CHECK(labels[0] == sets[s].first_label);
    free(labels);

    /* Stream every image in batches of 1000 and sum the pixels. */
    uint8_t *batch = malloc(1000 * 784);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < sets[s].count; i += 1000) {
      CHECK(cnn_idx_read(img, batch, 1000, err) == CNN_OK);
      for (size_t j = 0; j < 1000 * 784; j++) sum += batch[j];
    }
    CHECK(sum == sets[s].pixel_sum);
    CHECK(cnn_idx_tell(img) == sets[s].count);
    free(batch);
    cnn_idx_close(img);
    cnn_idx_close(lab);
  }
}

static void remove_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    const char *p = tmp_path(e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  closedir(d);
  rmdir(tmpdir);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 2;
  }
  test_round_trip(0);
  test_round_trip(1);
  test_bad_headers();
  test_short_data(0);
  test_short_data(1);
  test_bad_gzip();
  test_nomem();
  test_mnist();
  remove_tmpdir();
  return check_done();
}
