/*
 * test_image.c - images in: decoding every format we accept (PNG 8/16-bit,
 * gray, gray+alpha, RGB, RGBA, JPEG, BMP, GIF), refusing corrupt, truncated and
 * oversized files, and the MNIST preprocessing: digits of the MNIST test set
 * rendered as photos here (enlarged, shifted, inverted, noisy, unevenly lit,
 * ink in an alpha channel) and the JPEG photos of data/digits must come back
 * close to the preprocessed original: mean absolute difference per pixel at
 * most 8 gray levels (of 255) on average over the digits of a case, 16 for the
 * worst digit (12 for the photos); blank images, specks, thin pens.
 *
 * Needs CNN_DATA (the data/ directory: t10k-images-idx3-ubyte.gz, read with
 * zlib directly, and digits/). Prints the measured distances. Checks are
 * those of check.h: each failure prints its line, exit status 0 means every
 * check passed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base.h"
#include "check.h"
#include "image.h"

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static double nrand(void) { /* standard normal, Box-Muller */
  double u = urand(), v = urand();
  return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static uint8_t clamp8(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v)); }

/* Big-endian uint32 into p. */
static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Appends a PNG chunk (length, type, data, CRC) at buf + *len. */
static void png_chunk(uint8_t *buf, size_t *len, const char *type, const uint8_t *data,
                      uint32_t n) {
  uint8_t *p = buf + *len;
  be32(p, n);
  memcpy(p + 4, type, 4);
  if (n) memcpy(p + 8, data, n);
  uLong crc = crc32(0L, p + 4, n + 4);
  be32(p + 8 + n, (uint32_t)crc);
  *len += 12 + n;
}

/* A PNG written by hand (so 16-bit samples can be tested): colour type ct,
 * bit depth 16, w x h, rows of raw big-endian samples (filter 0 added here).
 * Returns a malloc'd buffer; IHDR may claim any size when rows is NULL. */
static uint8_t *png16(size_t *outlen, uint32_t w, uint32_t h, int ct, int depth,
                      const uint8_t *rows, size_t rowbytes) {
  size_t raw_len = rows ? (rowbytes + 1) * h : 0;
  uint8_t *raw = malloc(raw_len + 1);
  for (uint32_t y = 0; rows && y < h; y++) {
    raw[y * (rowbytes + 1)] = 0;
    memcpy(raw + y * (rowbytes + 1) + 1, rows + y * rowbytes, rowbytes);
  }
  uLongf zlen = compressBound(raw_len) + 16;
  uint8_t *z = malloc(zlen);
  compress(z, &zlen, raw, raw_len);
  uint8_t *buf = malloc(zlen + 128);
  size_t len = 0;
  memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
  len = 8;
  uint8_t ihdr[13];
  be32(ihdr, w);
  be32(ihdr + 4, h);
  ihdr[8] = (uint8_t)depth, ihdr[9] = (uint8_t)ct, ihdr[10] = ihdr[11] = ihdr[12] = 0;
  png_chunk(buf, &len, "IHDR", ihdr, 13);
  if (rows) png_chunk(buf, &len, "IDAT", z, (uint32_t)zlen);
  png_chunk(buf, &len, "IEND", NULL, 0);
  free(raw);
  free(z);
  *outlen = len;
  return buf;
}

/* Decodes data and compares with want (w x h gray), within tol per pixel. */
static void expect_decode(const char *what, const uint8_t *data, size_t len, int w, int h,
                          const uint8_t *want, int tol) {
  cnn_gray g = {0};
  char err[CNN_ERRMAX] = "";
  int rc = cnn_image_decode(&g, data, len, err);
  if (!CHECK(rc == CNN_OK)) {
    fprintf(stderr, "%s: decode failed: %s\n", what, err);
    return;
  }
  CHECK(g.w == w && g.h == h);
  if (g.w == w && g.h == h)
    for (int i = 0; i < w * h; i++)
      if (abs((int)g.px[i] - (int)want[i]) > tol) {
        fprintf(stderr, "%s: pixel %d is %d, want %d\n", what, i, g.px[i], want[i]);
        CHECK(!"pixel off by more than tol");
        break;
      }
  cnn_gray_clear(&g);
}

/* Expects decoding to fail with a message starting with prefix. */
static void expect_refused(const char *what, const uint8_t *data, size_t len, const char *prefix) {
  cnn_gray g = {0};
  char err[CNN_ERRMAX] = "";
  int rc = cnn_image_decode(&g, data, len, err);
  if (!CHECK(rc == CNN_ERROR && strncmp(err, prefix, strlen(prefix)) == 0))
    fprintf(stderr, "%s: rc %d, message \"%s\", want prefix \"%s\"\n", what, rc, err, prefix);
  CHECK(g.px == NULL && g.w == 0 && g.h == 0);
  cnn_gray_clear(&g);
}

/* stb's luma, which the decoder uses for colour. */
static uint8_t luma(int r, int g, int b) { return (uint8_t)((r * 77 + g * 150 + b * 29) >> 8); }

/* ---- decoding ------------------------------------------------------------------ */

static void test_png(void) {
  char err[CNN_ERRMAX];
  uint8_t *png = NULL;
  size_t len = 0;

  /* 8-bit gray. */
  const uint8_t gray[6] = {0, 1, 127, 128, 254, 255};
  CHECK(cnn_png_encode(&png, &len, gray, 3, 2, 1, err) == CNN_OK);
  expect_decode("png gray", png, len, 3, 2, gray, 0);
  int w = 0, h = 0;
  CHECK(cnn_image_info(png, len, &w, &h, err) == CNN_OK && w == 3 && h == 2);
  cnn_free(png);

  /* Gray + alpha: transparent is white paper. */
  const uint8_t ga[8] = {0, 255, 0, 0, 0, 128, 200, 255};
  const uint8_t ga_want[4] = {0, 255, 127, 200};
  CHECK(cnn_png_encode(&png, &len, ga, 4, 1, 2, err) == CNN_OK);
  expect_decode("png gray+alpha", png, len, 4, 1, ga_want, 0);
  cnn_free(png);

  /* RGB and RGBA. */
  const uint8_t rgb[9] = {255, 0, 0, 0, 255, 0, 10, 20, 30};
  const uint8_t rgb_want[3] = {luma(255, 0, 0), luma(0, 255, 0), luma(10, 20, 30)};
  CHECK(cnn_png_encode(&png, &len, rgb, 3, 1, 3, err) == CNN_OK);
  expect_decode("png rgb", png, len, 3, 1, rgb_want, 0);
  cnn_free(png);
  const uint8_t rgba[16] = {0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128, 255, 0, 0, 255};
  const uint8_t rgba_want[4] = {0, 255, 127, 76};
  CHECK(cnn_png_encode(&png, &len, rgba, 2, 2, 4, err) == CNN_OK);
  expect_decode("png rgba", png, len, 2, 2, rgba_want, 0);
  cnn_free(png);

  /* 16-bit gray and 16-bit RGBA, written by hand: samples keep their high byte. */
  const uint8_t g16[8] = {0x00, 0x00, 0xFF, 0xFF, 0x80, 0x80, 0x12, 0x34};
  const uint8_t g16_want[4] = {0x00, 0xFF, 0x80, 0x12};
  uint8_t *p16 = png16(&len, 2, 2, 0, 16, g16, 4);
  expect_decode("png 16-bit gray", p16, len, 2, 2, g16_want, 0);
  free(p16);
  const uint8_t rgba16[16] = {0x40, 0x00, 0x40, 0x00, 0x40, 0x00, 0xFF, 0xFF,
                              0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  const uint8_t rgba16_want[2] = {0x40, 255};
  p16 = png16(&len, 2, 1, 6, 16, rgba16, 16);
  expect_decode("png 16-bit rgba", p16, len, 2, 1, rgba16_want, 0);

  /* Truncated and corrupt: refused with stb's reason. */
  expect_refused("png truncated", p16, len - 20, "corrupt or truncated PNG: ");
  uint8_t *bad = malloc(len);
  memcpy(bad, p16, len);
  bad[8 + 25 + 8 + 2] ^= 0xFF; /* inside the deflate stream of IDAT */
  expect_refused("png corrupt", bad, len, "corrupt or truncated PNG: ");
  free(bad);
  free(p16);

  /* Exact message for a missing IDAT. */
  uint8_t *noidat = png16(&len, 4, 4, 0, 8, NULL, 0);
  cnn_gray g = {0};
  CHECK(cnn_image_decode(&g, noidat, len, err) == CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated PNG: no IDAT");
  free(noidat);
}

static void test_oversized(void) {
  char err[CNN_ERRMAX];
  size_t len;
  cnn_gray g = {0};
  /* A header alone claiming 10^10 pixels: refused before any allocation. */
  uint8_t *huge = png16(&len, 100000, 100000, 0, 8, NULL, 0);
  cnn_alloc_fail_at(0);
  CHECK(cnn_image_decode(&g, huge, len, err) == CNN_ERROR);
  /* Only the JPEG and GIF probes' fixed state structs, nothing of the
   * claimed size. */
  CHECK(cnn_alloc_fail_at(0) <= 2);
  CHECK_STR(err, "image is 100000x100000 pixels; the limit is 40000000");
  free(huge);
  uint8_t *wide = png16(&len, 40000, 10, 0, 8, NULL, 0);
  CHECK(cnn_image_decode(&g, wide, len, err) == CNN_ERROR);
  CHECK_STR(err, "image is 40000x10 pixels; the limit is 32768 per side");
  free(wide);
  /* Just under the pixel limit passes the size check and fails on the data. */
  uint8_t *big = png16(&len, 8000, 5000, 0, 8, NULL, 0);
  CHECK(cnn_image_decode(&g, big, len, err) == CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated PNG: no IDAT");
  free(big);
  CHECK(g.px == NULL);
}

/* Reads a file of the repository's data/ directory (CNN_DATA) into a malloc'd
 * buffer; NULL (and a failure) if it cannot. */
static uint8_t *read_data(const char *name, size_t *len) {
  const char *dir = getenv("CNN_DATA");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir ? dir : "data", name);
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  long n = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
    fclose(f);
    *len = (size_t)n;
    return buf;
  }
  if (f) fclose(f);
  free(buf);
  fprintf(stderr, "cannot read %s\n", path);
  CHECK(!"cannot read a file of CNN_DATA");
  return NULL;
}

static void test_jpeg(void) {
  char err[CNN_ERRMAX];
  size_t len = 0;
  /* A baseline colour JPEG of the repository (tools/make_digits.c). */
  uint8_t *jpg = read_data("digits/8.jpg", &len);
  if (!jpg) return;
  int w = 0, h = 0;
  CHECK(cnn_image_info(jpg, len, &w, &h, err) == CNN_OK && w == 480 && h == 600);
  cnn_gray g = {0};
  CHECK(cnn_image_decode(&g, jpg, len, err) == CNN_OK);
  CHECK(g.w == 480 && g.h == 600);
  if (g.px) {
    /* Paper in the corners, dark ink somewhere. */
    int darkest = 255;
    for (int i = 0; i < g.w * g.h; i++)
      if (g.px[i] < darkest) darkest = g.px[i];
    CHECK(g.px[0] > 150 && g.px[g.w * g.h - 1] > 150 && darkest < 80);
  }
  cnn_gray_clear(&g);
  /* Cut inside the entropy-coded data, or inside the header. */
  expect_refused("jpeg cut", jpg, 2000, "corrupt or truncated JPEG: ");
  expect_refused("jpeg cut in header", jpg, 20, "not a recognised image format");
  free(jpg);

  uint8_t px[16 * 16 * 3];
  memset(px, 100, sizeof px);
  uint8_t *enc = NULL;
  CHECK(cnn_jpg_encode(&enc, &len, px, 16, 16, 3, 0, err) == CNN_ERROR);
  CHECK_STR(err, "JPEG quality must be 1..100, got 0");
  uint8_t want[16 * 16];
  memset(want, 100, sizeof want);
  CHECK(cnn_jpg_encode(&enc, &len, px, 16, 16, 3, 95, err) == CNN_OK);
  CHECK(len > 4 && enc[0] == 0xFF && enc[1] == 0xD8);
  expect_decode("jpeg round trip", enc, len, 16, 16, want, 2);
  cnn_free(enc);
}

static void test_bmp(void) {
  /* 2x2, 24-bit, bottom-up rows padded to 4 bytes, BGR. */
  uint8_t bmp[54 + 16] = {'B', 'M'};
  uint32_t size = sizeof bmp;
  memcpy(bmp + 2, (uint8_t[]){(uint8_t)size, 0, 0, 0}, 4);
  bmp[10] = 54;              /* pixel data offset */
  bmp[14] = 40;              /* BITMAPINFOHEADER */
  bmp[18] = 2, bmp[22] = 2;  /* width, height */
  bmp[26] = 1, bmp[28] = 24; /* planes, bits */
  const uint8_t rows[16] = {/* bottom row */ 10, 10,  10,  0, 0, 255, 0, 0,
                            /* top row */ 255,   255, 255, 0, 0, 0,   0, 0};
  memcpy(bmp + 54, rows, 16);
  const uint8_t want[4] = {255, 0, 10, luma(255, 0, 0)};
  expect_decode("bmp", bmp, sizeof bmp, 2, 2, want, 0);
  expect_refused("bmp truncated", bmp, 30, "corrupt or truncated BMP: ");
}

static void test_gif(void) {
  /* 2x1 GIF87a, 4-colour palette, pixels {2, 1}; LZW codes clear(4) 2 1 end(5)
   * in 3 bits each, least significant bit first: 0x0A54. */
  const uint8_t gif[] = {'G', 'I', 'F', '8', '7', 'a', 2,   0,   1,   0,    0x81, 0,    0,   0,
                         0,   0,   100, 100, 100, 200, 200, 200, 255, 255,  255,  0x2C, 0,   0,
                         0,   0,   2,   0,   1,   0,   0,   2,   2,   0x54, 0x0A, 0,    0x3B};
  const uint8_t want[2] = {200, 100};
  expect_decode("gif", gif, sizeof gif, 2, 1, want, 0);
  /* Cut inside the palette or the LZW data. (stb reads missing bytes as zeros:
   * a GIF cut inside its image descriptor decodes as an empty frame, which
   * the preprocessing then finds blank.) */
  expect_refused("gif truncated in palette", gif, 20, "corrupt or truncated GIF: ");
  expect_refused("gif truncated in data", gif, sizeof gif - 4, "corrupt or truncated GIF: ");
}

static void test_raw_and_unknown(void) {
  char err[CNN_ERRMAX];
  uint8_t raw[CNN_MNIST_BYTES], out[CNN_MNIST_BYTES];
  for (int i = 0; i < CNN_MNIST_BYTES; i++) raw[i] = (uint8_t)(i * 7);
  raw[0] = 0;
  CHECK(cnn_image_to_mnist(out, raw, sizeof raw, err) == CNN_OK);
  CHECK(memcmp(out, raw, sizeof raw) == 0);
  CHECK(cnn_image_to_mnist(out, raw, 100, err) == CNN_ERROR);
  CHECK_STR(err, "not a recognised image format");
  CHECK(cnn_image_to_mnist(out, raw, 0, err) == CNN_ERROR);
  CHECK_STR(err, "not a recognised image format");
  cnn_gray g = {0};
  CHECK(cnn_image_decode(&g, (const uint8_t *)"\x89PNG", 4, err) == CNN_ERROR);
  CHECK_STR(err, "not a recognised image format");
  cnn_gray_clear(&g);
  cnn_gray_clear(NULL);
}

/* ---- preprocessing ------------------------------------------------------------- */

#define NDIGITS 20 /* the first test images, rendered in every way below */
#define NTEST 10000
static uint8_t mnist[NTEST][CNN_MNIST_BYTES]; /* the MNIST test set */

static int load_mnist(void) {
  const char *dir = getenv("CNN_DATA");
  char path[4096];
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir ? dir : "data");
  gzFile f = gzopen(path, "rb");
  if (!f) return -1;
  uint8_t header[16];
  int ok = gzread(f, header, 16) == 16 && header[2] == 8 && header[3] == 3 &&
           gzread(f, mnist, sizeof mnist) == (int)sizeof mnist;
  gzclose(f);
  return ok ? 0 : -1;
}

/* Mean absolute difference of two 28x28 images, in gray levels. */
static double mad784(const uint8_t *a, const uint8_t *b) {
  long s = 0;
  for (int i = 0; i < CNN_MNIST_BYTES; i++) s += abs((int)a[i] - (int)b[i]);
  return (double)s / CNN_MNIST_BYTES;
}

/* Bilinear sample of a 28x28 image at continuous (x, y), 0 outside. */
static double sample28(const uint8_t *d, double x, double y) {
  x -= 0.5, y -= 0.5;
  int x0 = (int)floor(x), y0 = (int)floor(y);
  double tx = x - x0, ty = y - y0, v = 0;
  for (int dy = 0; dy <= 1; dy++)
    for (int dx = 0; dx <= 1; dx++) {
      int xx = x0 + dx, yy = y0 + dy;
      if (xx < 0 || yy < 0 || xx >= 28 || yy >= 28) continue;
      v += (dx ? tx : 1 - tx) * (dy ? ty : 1 - ty) * d[yy * 28 + xx];
    }
  return v;
}

typedef struct render {
  int w, h;         /* canvas */
  double zoom;      /* canvas px per MNIST px */
  double left, top; /* where the 28x28 square goes */
  int dark_ink;     /* dark ink on light paper, else light on dark */
  double gradient;  /* lighting falls from 1 to 1 - gradient across the page */
  double noise;     /* gaussian sigma, gray levels */
  int alpha;        /* ink in the alpha channel on transparent */
} render;

/* Renders a digit as a photo, encodes it as a PNG (gray, or RGBA for ink in
 * the alpha channel) and preprocesses it; returns the status. */
static int render_and_preprocess(uint8_t out[CNN_MNIST_BYTES], const uint8_t *digit,
                                 const render *r, char *err) {
  size_t n = (size_t)r->w * r->h;
  uint8_t *px = malloc(n * 4), *enc = NULL;
  size_t enclen = 0;
  for (int y = 0; y < r->h; y++)
    for (int x = 0; x < r->w; x++) {
      double v = sample28(digit, (x + 0.5 - r->left) / r->zoom, (y + 0.5 - r->top) / r->zoom) / 255;
      size_t i = (size_t)y * r->w + x;
      if (r->alpha) {
        px[4 * i] = px[4 * i + 1] = 20, px[4 * i + 2] = 60;
        px[4 * i + 3] = clamp8(255 * v);
        continue;
      }
      double paper = r->dark_ink ? 225 : 35, inkc = r->dark_ink ? 35 : 215;
      double light = 1.0 - r->gradient * (0.6 * x / r->w + 0.4 * y / r->h);
      px[i] = clamp8((paper + (inkc - paper) * v) * light + r->noise * nrand());
    }
  char e2[CNN_ERRMAX];
  int rc = cnn_png_encode(&enc, &enclen, px, r->w, r->h, r->alpha ? 4 : 1, e2);
  free(px);
  if (rc != CNN_OK) return cnn_error(err, rc, "encode: %s", e2);
  rc = cnn_image_to_mnist(out, enc, enclen, err);
  cnn_free(enc);
  return rc;
}

/* MNIST's own invariants: longer side of the box about 20, centre of mass on
 * pixel (14, 14), brightest pixel 255. */
static void check_mnist_shape(const char *what, const uint8_t *img) {
  int x0 = 28, y0 = 28, x1 = 0, y1 = 0;
  double m = 0, cx = 0, cy = 0;
  for (int y = 0; y < 28; y++)
    for (int x = 0; x < 28; x++) {
      int v = img[y * 28 + x];
      if (!v) continue;
      if (x < x0) x0 = x;
      if (x >= x1) x1 = x + 1;
      if (y < y0) y0 = y;
      if (y >= y1) y1 = y + 1;
      m += v, cx += v * x, cy += v * y;
    }
  int side = x1 - x0 > y1 - y0 ? x1 - x0 : y1 - y0;
  int top = 0;
  for (int i = 0; i < CNN_MNIST_BYTES; i++)
    if (img[i] > top) top = img[i];
  if (!CHECK(m != 0 && side >= 19 && side <= 22 && fabs(cx / m - 14) <= 0.6 &&
             fabs(cy / m - 14) <= 0.6 && top == 255))
    fprintf(stderr, "%s: box side %d, centre of mass (%.2f, %.2f), max %d\n", what, side,
            m ? cx / m : 0, m ? cy / m : 0, top);
}

static void test_preprocess(void) {
  char err[CNN_ERRMAX];
  if (!CHECK(load_mnist() == 0)) {
    fprintf(stderr, "cannot read the MNIST test images (CNN_DATA)\n");
    return;
  }
  static const struct {
    const char *name;
    render r;
    double mean_bound, max_bound; /* gray levels */
  } cases[] = {
      {"enlarged x10, dark on light", {360, 320, 10, 40, 30, 1, 0, 0, 0}, 8, 16},
      {"x12, shifted, light on dark", {420, 380, 12, 90, 20, 0, 0, 0, 0}, 8, 16},
      {"x10, noise 8", {340, 340, 10, 50, 30, 1, 0, 8, 0}, 8, 16},
      {"x10, lighting gradient 45%", {380, 320, 10, 80, 20, 1, 0.45, 0, 0}, 8, 16},
      {"x11, gradient 35%, noise 6", {400, 360, 11, 60, 40, 1, 0.35, 6, 0}, 8, 16},
      {"light on dark, gradient 30%, noise 5", {340, 380, 10, 30, 70, 0, 0.3, 5, 0}, 8, 16},
      {"x3 thumbnail", {120, 100, 3, 20, 8, 1, 0, 2, 0}, 8, 16},
      {"RGBA, ink in alpha", {300, 300, 9, 10, 40, 1, 0, 0, 1}, 8, 16},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    double sum = 0, worst = 0;
    int worst_i = -1;
    for (int d = 0; d < NDIGITS; d++) {
      cnn_gray orig = {28, 28, mnist[d]};
      uint8_t ref[CNN_MNIST_BYTES], got[CNN_MNIST_BYTES];
      if (!CHECK(cnn_gray_to_mnist(ref, &orig, err) == CNN_OK)) {
        fprintf(stderr, "digit %d: %s\n", d, err);
        continue;
      }
      if (c == 0) check_mnist_shape("reference", ref);
      if (!CHECK(render_and_preprocess(got, mnist[d], &cases[c].r, err) == CNN_OK)) {
        fprintf(stderr, "%s, digit %d: %s\n", cases[c].name, d, err);
        continue;
      }
      check_mnist_shape(cases[c].name, got);
      double dist = mad784(ref, got);
      sum += dist;
      if (dist > worst) worst = dist, worst_i = d;
    }
    double mean = sum / NDIGITS;
    printf("%-45s mean |diff| %5.2f, worst %5.2f (test image %d)\n", cases[c].name, mean, worst,
           worst_i);
    CHECK(mean <= cases[c].mean_bound);
    CHECK(worst <= cases[c].max_bound);
  }

  /* The photos of data/digits (JPEG, RGBA PNG, chalk on a board), against the
   * MNIST test images they were rendered from (data/digits/README.md). */
  static const struct {
    const char *file;
    int idx;
  } photos[] = {{"0.jpg", 6201}, {"1.jpg", 8658}, {"2.jpg", 2891},       {"3.jpg", 6982},
                {"4.jpg", 238},  {"5.jpg", 1967}, {"6.jpg", 8831},       {"7.jpg", 5795},
                {"8.jpg", 9420}, {"9.jpg", 7336}, {"4_alpha.png", 8879}, {"5_chalk.jpg", 9298}};
  double psum = 0, pworst = 0;
  const char *pworst_file = "";
  for (size_t k = 0; k < sizeof photos / sizeof photos[0]; k++) {
    char name[64];
    size_t len = 0;
    snprintf(name, sizeof name, "digits/%s", photos[k].file);
    uint8_t *data = read_data(name, &len);
    if (!data) continue;
    uint8_t ref[CNN_MNIST_BYTES], got[CNN_MNIST_BYTES];
    cnn_gray orig = {28, 28, mnist[photos[k].idx]};
    CHECK(cnn_gray_to_mnist(ref, &orig, err) == CNN_OK);
    if (!CHECK(cnn_image_to_mnist(got, data, len, err) == CNN_OK)) {
      fprintf(stderr, "%s: %s\n", photos[k].file, err);
    } else {
      check_mnist_shape(photos[k].file, got);
      double dist = mad784(ref, got);
      psum += dist;
      if (dist > pworst) pworst = dist, pworst_file = photos[k].file;
    }
    free(data);
  }
  printf("%-45s mean |diff| %5.2f, worst %5.2f (%s)\n", "data/digits photos", psum / 12, pworst,
         pworst_file);
  CHECK(psum / 12 <= 8);
  CHECK(pworst <= 12);

  /* The preprocessed original is close to the original itself. */
  double sum = 0;
  for (int d = 0; d < NDIGITS; d++) {
    cnn_gray orig = {28, 28, mnist[d]};
    uint8_t ref[CNN_MNIST_BYTES];
    if (cnn_gray_to_mnist(ref, &orig, err) == CNN_OK) sum += mad784(ref, mnist[d]);
  }
  printf("%-45s mean |diff| %5.2f\n", "preprocessed original vs original", sum / NDIGITS);
  CHECK(sum / NDIGITS <= 10);
}

static void test_blank(void) {
  char err[CNN_ERRMAX];
  uint8_t out[CNN_MNIST_BYTES];
  int w = 300, h = 200;
  uint8_t *px = malloc((size_t)w * h);
  cnn_gray g = {w, h, px};
  const char *kinds[] = {"white", "black", "noisy paper", "lighting gradient", "gray"};
  for (int k = 0; k < 5; k++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        double v = k == 0   ? 255
                   : k == 1 ? 0
                   : k == 2 ? 200 + 6 * nrand()
                   : k == 3 ? 240 - 120.0 * x / w
                            : 128;
        px[y * w + x] = clamp8(v);
      }
    memset(out, 7, sizeof out);
    int rc = cnn_gray_to_mnist(out, &g, err);
    if (!CHECK(rc == CNN_ERROR && strcmp(err, "no ink found in image") == 0))
      fprintf(stderr, "blank %s: rc %d, \"%s\"\n", kinds[k], rc, err);
  }
  /* One dark pixel is a speck, not a digit. */
  memset(px, 230, (size_t)w * h);
  px[100 * w + 150] = 0;
  CHECK(cnn_gray_to_mnist(out, &g, err) == CNN_ERROR);
  CHECK_STR(err, "no ink found in image");
  /* A bar of ink is found, centred and 20 px long. */
  for (int y = 60; y < 140; y++)
    for (int x = 40; x < 60; x++) px[y * w + x] = 20;
  CHECK(cnn_gray_to_mnist(out, &g, err) == CNN_OK);
  check_mnist_shape("bar", out);
  CHECK(out[14 * 28 + 14] == 255 && out[14 * 28 + 3] == 0 && out[3 * 28 + 14] == 0);
  free(px);
}

/* Every allocation failing in turn gives CNN_NOMEM (or success, when the
 * failure only made a format probe say "not this format"), never a crash, a
 * leak or a wrong "corrupt image". */
static void test_nomem(void) {
  char err[CNN_ERRMAX];
  uint8_t out[CNN_MNIST_BYTES], *png = NULL;
  size_t len;
  uint8_t px[64 * 64];
  for (int i = 0; i < 64 * 64; i++) {
    int x = i % 64, y = i / 64;
    px[i] = x > 20 && x < 30 && y > 10 && y < 50 ? 0 : 240;
  }
  CHECK(cnn_png_encode(&png, &len, px, 64, 64, 1, err) == CNN_OK);
  cnn_alloc_fail_at(0);
  CHECK(cnn_image_to_mnist(out, png, len, err) == CNN_OK);
  uint64_t count = cnn_alloc_fail_at(0);
  int nomem = 0;
  for (uint64_t k = 1; k <= count; k++) {
    cnn_alloc_fail_at(k);
    int rc = cnn_image_to_mnist(out, png, len, err);
    cnn_alloc_fail_at(0);
    if (rc == CNN_NOMEM) {
      nomem++;
      CHECK_STR(err, "out of memory");
    } else if (!CHECK(rc == CNN_OK)) {
      fprintf(stderr, "allocation %llu failing: rc %d \"%s\"\n", (unsigned long long)k, rc, err);
    }
  }
  CHECK(count > 10 && (uint64_t)nomem >= count - 2);
  cnn_free(png);
}

/* A digit written with a thin pen on a large photo (shrunk to the working
 * size first) still comes out with strokes about 2 px wide, not a faint trace. */
static void test_thin_pen(void) {
  char err[CNN_ERRMAX];
  uint8_t out[CNN_MNIST_BYTES];
  int w = 2000, h = 1800;
  uint8_t *px = malloc((size_t)w * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double r = hypot((x - 1050.0) / 450.0, (y - 900.0) / 650.0); /* an upright "0" */
      double d = fabs(r - 1.0) * 550.0;                            /* ~px from the line */
      px[y * w + x] = clamp8(d < 3 ? 40 : 235 + 3 * nrand());
    }
  cnn_gray g = {w, h, px};
  CHECK(cnn_gray_to_mnist(out, &g, err) == CNN_OK);
  check_mnist_shape("thin pen", out);
  int bright = 0;
  for (int i = 0; i < CNN_MNIST_BYTES; i++) bright += out[i] >= 128;
  printf("thin pen ring: %d pixels >= 128, centre %d\n", bright, out[14 * 28 + 14]);
  CHECK(bright >= 50);           /* a 20 x 13 ring, 2 px wide: ~100 */
  CHECK(out[14 * 28 + 14] == 0); /* the hole stays open */
  free(px);
}

/* Inputs found by tests/fuzz/fuzz_image, each a flaw of stb_image 2.27 that
 * src/io/stb.c guards against. */
static void test_fuzz_regressions(void) {
  char err[CNN_ERRMAX];
  cnn_gray g = {0};
  uint8_t *px = NULL;
  int w, h;
  /* A JPEG Huffman table whose 16 counts add up to 16 x 255 symbols: stb
   * would write them past its 257-entry size list. */
  uint8_t dht[2 + 2 + 2 + 1 + 16 + 8] = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 2 + 1 + 16, 0x00};
  memset(dht + 7, 0xFF, 16);
  CHECK(cnn_image_decode(&g, dht, sizeof dht, err) == CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated JPEG: bad Huffman table");
  CHECK(cnn_image_load(&px, &w, &h, dht, sizeof dht, err) == CNN_ERROR && px == NULL);
  CHECK_STR(err, "corrupt or truncated JPEG: bad Huffman table");
  /* An 8-bit BMP, 2x1, with a one-entry palette (white) and a pixel of index
   * 200: stb would read that colour from uninitialised stack memory; it is
   * black now, every time. */
  uint8_t bmp[14 + 40 + 4 + 4] = {'B',         'M', sizeof bmp, 0, 0,  0, 0, 0, 0, 0,
                                  14 + 40 + 4, 0,   0,          0, 40, 0, 0, 0, 2, 0,
                                  0,           0,   1,          0, 0,  0, 1, 0, 8, 0};
  memcpy(bmp + 54, "\xff\xff\xff\x00", 4); /* palette: B, G, R, reserved */
  memcpy(bmp + 58, "\x00\xc8\x00\x00", 4); /* indices 0 and 200, row padded to 4 */
  for (int round = 0; round < 2; round++) {
    CHECK(cnn_image_decode(&g, bmp, sizeof bmp, err) == CNN_OK);
    CHECK(g.w == 2 && g.h == 1 && g.px && g.px[0] == 255 && g.px[1] == 0);
    cnn_gray_clear(&g);
  }
  /* A pixel offset inside the header: no palette at all (53: one byte short,
   * which stb's rounding turns into a palette of -1 entries). */
  bmp[10] = 40;
  CHECK(cnn_image_decode(&g, bmp, sizeof bmp, err) == CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated BMP: bad palette");
  bmp[10] = 53;
  CHECK(cnn_image_decode(&g, bmp, sizeof bmp, err) == CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated BMP: bad palette");
  /* A PNG whose first IDAT chunk is empty: stb would memcpy 0 bytes to a NULL
   * buffer (UBSan stops there); the picture is the same without the chunk. */
  uint8_t dot[3 * 2] = {0, 255, 40, 0, 0, 200}, *png = NULL;
  size_t plen = 0;
  CHECK(cnn_png_encode(&png, &plen, dot, 3, 2, 1, err) == CNN_OK);
  uint8_t *with = png ? malloc(plen + 12) : NULL;
  size_t idat = 8;
  while (png && idat + 8 <= plen && memcmp(png + idat + 4, "IDAT", 4) != 0)
    idat += 12 + ((size_t)png[idat] << 24 | (size_t)png[idat + 1] << 16 |
                  (size_t)png[idat + 2] << 8 | png[idat + 3]);
  if (with && idat + 8 <= plen) {
    memcpy(with, png, idat);
    memcpy(with + idat, "\0\0\0\0IDAT", 8);
    be32(with + idat + 8, (uint32_t)crc32(0L, (const Bytef *)"IDAT", 4));
    memcpy(with + idat + 12, png + idat, plen - idat);
    CHECK(cnn_image_decode(&g, with, plen + 12, err) == CNN_OK);
    CHECK(g.w == 3 && g.h == 2 && g.px && memcmp(g.px, dot, sizeof dot) == 0);
    cnn_gray_clear(&g);
  } else {
    CHECK(!"no IDAT chunk in the encoded PNG");
  }
  free(with);
  cnn_free(png);
  /* A PNM header number past int: stb would overflow a signed int. */
  static const char pnm[] = "P6\n29 14\n# max\n23333333333333333333\n\xff\xff\xff";
  CHECK(cnn_image_decode(&g, (const uint8_t *)pnm, sizeof pnm - 1, err) == CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated PNM: number too long in the header");
  /* 16-bit PNM: stb 2.27 would read past the end of its converted pixels.
   * Gray (65535 and 0) and RGB (pure red: stb's luma 77/256). */
  static const char pgm16[] = "P5\n2 1\n65535\n\xff\xff\x00\x00";
  CHECK(cnn_image_decode(&g, (const uint8_t *)pgm16, sizeof pgm16 - 1, err) == CNN_OK);
  CHECK(g.w == 2 && g.h == 1 && g.px && g.px[0] == 255 && g.px[1] == 0);
  cnn_gray_clear(&g);
  static const char ppm16[] = "P6\n1 1\n65535\n\xff\xff\x00\x00\x00\x00";
  CHECK(cnn_image_decode(&g, (const uint8_t *)ppm16, sizeof ppm16 - 1, err) == CNN_OK);
  CHECK(g.w == 1 && g.h == 1 && g.px && g.px[0] == 76);
  cnn_gray_clear(&g);
  static const char ppm8[] = "P6\n1 1\n255\n\xff\x00\x00";
  CHECK(cnn_image_decode(&g, (const uint8_t *)ppm8, sizeof ppm8 - 1, err) == CNN_OK);
  CHECK(g.w == 1 && g.h == 1 && g.px && g.px[0] == 76);
  cnn_gray_clear(&g);
  /* Shorter than its header declares: refused, not zero-filled (a byte
   * short; a 19-byte file declaring 39 Mpixels, found by the fuzzer). */
  CHECK(cnn_image_decode(&g, (const uint8_t *)ppm8, sizeof ppm8 - 2, err) == CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated PNM: 1x1 pixels declared, 2 of 3 bytes present");
  static const char pgm16_short[] = "P5\n2 1\n65535\n\xff\xff\x00";
  CHECK(cnn_image_decode(&g, (const uint8_t *)pgm16_short, sizeof pgm16_short - 1, err) ==
        CNN_ERROR);
  CHECK_STR(err, "corrupt or truncated PNM: 2x1 pixels declared, 3 of 4 bytes present");
  static const char huge[] = "P5 8859 4404 255\n\x01";
  CHECK(cnn_image_decode(&g, (const uint8_t *)huge, sizeof huge - 1, err) == CNN_ERROR);
  CHECK_STR(err,
            "corrupt or truncated PNM: 8859x4404 pixels declared, 1 of 39015036 bytes present");
  /* A palette PNG, 2x1, with a one-entry PLTE (white) and a pixel of index
   * 200: like the BMP above, that pixel is black, every time. */
  uint8_t pal[128], ihdr[13] = {0, 0, 0, 2, 0, 0, 0, 1, 8, 3, 0, 0, 0};
  uint8_t row[3] = {0, 0, 200}, z[64];
  uLongf zlen = sizeof z;
  size_t pal_len = 8;
  memcpy(pal, "\x89PNG\r\n\x1a\n", 8);
  compress(z, &zlen, row, sizeof row);
  png_chunk(pal, &pal_len, "IHDR", ihdr, 13);
  png_chunk(pal, &pal_len, "PLTE", (const uint8_t *)"\xff\xff\xff", 3);
  png_chunk(pal, &pal_len, "IDAT", z, (uint32_t)zlen);
  png_chunk(pal, &pal_len, "IEND", NULL, 0);
  for (int round = 0; round < 2; round++) {
    CHECK(cnn_image_decode(&g, pal, pal_len, err) == CNN_OK);
    CHECK(g.w == 2 && g.h == 1 && g.px && g.px[0] == 255 && g.px[1] == 0);
    cnn_gray_clear(&g);
  }
  /* A JPEG without its quantisation tables (DQT removed): stb decodes it with
   * tables from uninitialised memory; with zeroed memory every coefficient is
   * 0 and the picture is plain mid-gray. Normal builds only: the JPEG writer
   * trips UBSan (see test_jpeg), and ASan's quarantine keeps the junk below
   * from being reused anyway. */
#ifndef __SANITIZE_ADDRESS__
  uint8_t ramp[16 * 16], *jpg = NULL;
  size_t jlen = 0;
  for (int i = 0; i < 16 * 16; i++) ramp[i] = (uint8_t)(100 + i % 16);
  CHECK(cnn_jpg_encode(&jpg, &jlen, ramp, 16, 16, 1, 90, err) == CNN_OK);
  size_t at = 2;
  while (jpg && at + 4 <= jlen && !(jpg[at] == 0xFF && jpg[at + 1] == 0xDB))
    at += 2 + ((size_t)jpg[at + 2] << 8 | jpg[at + 3]);
  if (jpg && at + 4 <= jlen) {
    size_t seg = 2 + ((size_t)jpg[at + 2] << 8 | jpg[at + 3]);
    memmove(jpg + at, jpg + at + seg, jlen - at - seg);
    jlen -= seg;
    for (int round = 0; round < 2; round++) {
      /* Leave junk where the decoder's state is likely to be allocated (its
       * size in stb 2.27), so that reading it unwritten would show. */
      void *junk = malloc(18568);
      if (junk) memset(junk, 0x55, 18568);
      free(junk);
      CHECK(cnn_image_decode(&g, jpg, jlen, err) == CNN_OK);
      int plain = g.w == 16 && g.h == 16;
      for (int i = 0; plain && i < 16 * 16; i++) plain = g.px[i] == 128;
      CHECK(plain);
      cnn_gray_clear(&g);
    }
  } else {
    CHECK(!"no DQT segment in the encoded JPEG");
  }
  cnn_free(jpg);
#endif
}

int main(void) {
  test_png();
  test_oversized();
  test_jpeg();
  test_bmp();
  test_gif();
  test_raw_and_unknown();
  test_blank();
  test_preprocess();
  test_nomem();
  test_thin_pen();
  test_fuzz_regressions();
  return check_done();
}
