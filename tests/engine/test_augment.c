/*
 * test_augment.c - data augmentation (src/augmentation.c): every transform's
 * contract on synthetic images (identity when off, whole-pixel shifts, 90
 * degree rotations, zoom about the centre, dilation and erosion, elastic
 * fields, noise statistics), the option parser's messages, determinism per
 * stream, and batches and trained weights that are the same bit for bit for
 * 1, 2 or 3 threads.
 */
#include <stdlib.h>

#include "augmentation.h"
#include "check.h"
#include "cnn.h"
#include "json.h"
#include "mnist_subset.h"

#define PI 3.14159265358979323846

static cnn_augment *make(const cnn_augment_config *cfg, int h, int w, int c, int threads) {
  char err[CNN_ERRMAX];
  cnn_augment *a = NULL;
  if (cnn_augment_new(&a, cfg, h, w, c, threads, err)) fprintf(stderr, "%s\n", err);
  return a;
}

static int parse(cnn_augment_config *cfg, const char *json, const char *prefix, char *err) {
  cnn_json *j = NULL;
  int rc = cnn_json_parse(&j, json, strlen(json), err);
  if (rc == CNN_OK) rc = cnn_augment_parse(cfg, j, prefix, err);
  cnn_json_free(j);
  return rc;
}

static const cnn_augment_draw none = {0, 0, 0, 1, 0, 0};

/* out as bytes, the way cnn_augment returns it. */
static void to_bytes(uint8_t *b, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)lrintf(x[i] * 255.0f);
}

/* One image through given choices, as bytes. */
static void apply_bytes(const cnn_augment_config *cfg, uint8_t *out, const uint8_t *src, int h,
                        int w, int c, const cnn_augment_draw *d, uint64_t stream) {
  size_t n = (size_t)h * w * c;
  float *f = malloc(n * sizeof *f);
  cnn_augment *a = make(cfg, h, w, c, 1);
  if (CHECK(a && f)) {
    cnn_augment_apply(a, f, src, d, stream, 0);
    to_bytes(out, f, n);
  }
  cnn_augment_free(a);
  free(f);
}

static void test_identity(void) {
  enum { H = 28, W = 28, N = H * W };
  uint8_t src[N];
  float ref[N], out[N];
  for (int i = 0; i < N; i++) src[i] = (uint8_t)(i * 37 + 11);
  for (int i = 0; i < N; i++) ref[i] = src[i] / 255.0f;
  const char *off[] = {"{}",
                       "{\"rotation\":0,\"shift\":0,\"zoom\":0,\"shear\":0,\"thickness\":0,"
                       "\"noise\":0,\"elastic\":{\"alpha\":0,\"sigma\":4}}"};
  for (int k = 0; k < 2; k++) {
    char err[CNN_ERRMAX];
    cnn_augment_config cfg;
    CHECK(parse(&cfg, off[k], "augment", err) == CNN_OK);
    CHECK(!cnn_augment_active(&cfg));
    cnn_augment *a = make(&cfg, H, W, 1, 1);
    if (!CHECK(a != NULL)) continue;
    for (uint64_t s = 0; s < 5; s++) {
      cnn_augment_image(a, out, src, s, 0);
      CHECK(memcmp(out, ref, sizeof ref) == 0);
    }
    cnn_augment_free(a);
  }
  /* Choices that change nothing, with transforms enabled: still exact. */
  cnn_augment_config cfg = {.rotation = 30, .shift = 0.2, .zoom = 0.2, .shear = 0.3};
  cnn_augment *a = make(&cfg, H, W, 1, 1);
  if (CHECK(a != NULL)) {
    cnn_augment_apply(a, out, src, &none, 1, 0);
    CHECK(memcmp(out, ref, sizeof ref) == 0);
  }
  cnn_augment_free(a);
}

static void test_shift(void) {
  enum { H = 28, W = 28, N = H * W };
  uint8_t src[N] = {0}, out[N], want[N] = {0};
  src[12 * W + 10] = 200, src[0] = 77;
  want[10 * W + 13] = 200; /* 3 right, 2 up; the corner pixel leaves the image */
  cnn_augment_config cfg = {.shift = 0.2};
  cnn_augment_draw d = none;
  d.tx = 3, d.ty = -2;
  apply_bytes(&cfg, out, src, H, W, 1, &d, 1);
  CHECK(memcmp(out, want, N) == 0);
  /* and the floats are exact, not only the bytes */
  {
    float f[N];
    cnn_augment *a = make(&cfg, H, W, 1, 1);
    if (CHECK(a != NULL)) {
      cnn_augment_apply(a, f, src, &d, 1, 0);
      CHECK(f[10 * W + 13] == 200 / 255.0f);
      int zeros = 0;
      for (int i = 0; i < N; i++) zeros += f[i] == 0;
      CHECK_EQ_INT(zeros, N - 1);
    }
    cnn_augment_free(a);
  }
  /* Every channel moves together, in any shape. */
  enum { h = 5, w = 7, c = 3 };
  uint8_t s3[h * w * c] = {0}, o3[h * w * c], w3[h * w * c] = {0};
  for (int k = 0; k < c; k++) s3[(2 * w + 3) * c + k] = (uint8_t)(50 + 100 * k);
  for (int k = 0; k < c; k++) w3[(3 * w + 1) * c + k] = (uint8_t)(50 + 100 * k);
  d.tx = -2, d.ty = 1;
  apply_bytes(&cfg, o3, s3, h, w, c, &d, 1);
  CHECK(memcmp(o3, w3, sizeof o3) == 0);
}

static void test_rotation(void) {
  /* A pixel right of the centre of a 7x7 image goes up for +90 degrees
   * (counter-clockwise as seen), down for -90, left for 180. */
  enum { S = 7 };
  uint8_t src[S * S] = {0}, out[S * S], want[S * S];
  src[3 * S + 5] = 255;
  cnn_augment_config cfg = {.rotation = 180};
  cnn_augment_draw d = none;
  const double angles[] = {90, -90, 180};
  const int to[] = {1 * S + 3, 5 * S + 3, 3 * S + 1};
  for (int k = 0; k < 3; k++) {
    d.angle = angles[k] * PI / 180;
    memset(want, 0, sizeof want);
    want[to[k]] = 255;
    apply_bytes(&cfg, out, src, S, S, 1, &d, 1);
    CHECK(memcmp(out, want, sizeof want) == 0);
  }
  /* A pattern with the symmetry of the square, on an even side (the centre
   * between pixels): unchanged by quarter turns. */
  enum { H = 28, N = H * H };
  uint8_t ring[N] = {0}, rot[N];
  for (int y = 8; y < 20; y++)
    for (int x = 8; x < 20; x++)
      if (y < 10 || y > 17 || x < 10 || x > 17) ring[y * H + x] = 180;
  ring[13 * H + 13] = ring[13 * H + 14] = ring[14 * H + 13] = ring[14 * H + 14] = 255;
  for (int q = -2; q <= 2; q++) {
    d.angle = q * PI / 2;
    apply_bytes(&cfg, rot, ring, H, H, 1, &d, 1);
    CHECK(memcmp(rot, ring, N) == 0);
  }
  /* A quarter turn of an L is the L turned. */
  uint8_t el[N] = {0}, turned[N] = {0};
  for (int y = 5; y < 20; y++) el[y * H + 6] = 255;
  for (int x = 6; x < 15; x++) el[19 * H + x] = 255;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < H; x++)
      if (el[y * H + x]) turned[(H - 1 - x) * H + y] = 255; /* (x, y) -> (y, 27 - x) */
  d.angle = PI / 2;
  apply_bytes(&cfg, rot, el, H, H, 1, &d, 1);
  CHECK(memcmp(rot, turned, N) == 0);
}

static void centroid(const float *x, int h, int w, double *cx, double *cy, double *mass) {
  double m = 0, sx = 0, sy = 0;
  for (int y = 0; y < h; y++)
    for (int i = 0; i < w; i++) m += x[y * w + i], sx += x[y * w + i] * i, sy += x[y * w + i] * y;
  *mass = m, *cx = sx / m, *cy = sy / m;
}

static void test_zoom(void) {
  /* Odd side: the centre pixel is its own image under any zoom. */
  enum { S = 27, N = S * S };
  uint8_t src[N] = {0};
  float out[N];
  for (int y = 11; y <= 15; y++)
    for (int x = 11; x <= 15; x++)
      src[y * S + x] = (uint8_t)(255 - 20 * (abs(x - 13) + abs(y - 13)));
  cnn_augment_config cfg = {.zoom = 0.9};
  cnn_augment *a = make(&cfg, S, S, 1, 1);
  if (!CHECK(a != NULL)) return;
  const double scales[] = {0.5, 0.9, 1.3, 1.9};
  for (int k = 0; k < 4; k++) {
    cnn_augment_draw d = none;
    d.scale = scales[k];
    cnn_augment_apply(a, out, src, &d, 1, 0);
    CHECK(out[13 * S + 13] == 1.0f);
    double cx, cy, m;
    centroid(out, S, S, &cx, &cy, &m);
    CHECK_NEAR(cx, 13, 1e-5);
    CHECK_NEAR(cy, 13, 1e-5);
    /* Enlarged, the mass grows as the area (shrinking samples the source
     * sparsely, with no low-pass, so its mass is only roughly s^2). */
    double cx0, cy0, m0;
    float in[N];
    for (int i = 0; i < N; i++) in[i] = src[i] / 255.0f;
    centroid(in, S, S, &cx0, &cy0, &m0);
    if (scales[k] >= 0.9) CHECK_NEAR(m / m0, scales[k] * scales[k], 0.08 * scales[k] * scales[k]);
  }
  /* Zoomed in, a point at distance r from the centre lands at distance s*r. */
  uint8_t dot[N] = {0}, got[N];
  dot[13 * S + 16] = 255; /* 3 right of the centre */
  cnn_augment_draw d = none;
  d.scale = 2;
  apply_bytes(&cfg, got, dot, S, S, 1, &d, 1);
  /* bilinear spreading of a zoomed single pixel: the peak moved to 6 right */
  CHECK(got[13 * S + 19] == 255 && got[13 * S + 16] == 0);
  cnn_augment_free(a);
}

static void test_shear(void) {
  /* x += k*y about the centre: a vertical bar through the centre slants, the
   * centre row stays. */
  enum { S = 9, N = S * S };
  uint8_t src[N] = {0}, out[N], want[N] = {0};
  for (int y = 0; y < S; y++) src[y * S + 4] = 255;
  for (int y = 2; y <= 6; y++) want[y * S + 4 + (y - 4)] = 255; /* k = 1 */
  cnn_augment_config cfg = {.shear = 1};
  cnn_augment_draw d = none;
  d.shear = 1;
  apply_bytes(&cfg, out, src, S, S, 1, &d, 1);
  int ok = 1;
  for (int y = 2; y <= 6; y++)
    for (int x = 0; x < S; x++) ok &= out[y * S + x] == want[y * S + x];
  CHECK(ok);
}

static void test_thickness(void) {
  enum { S = 9, N = S * S };
  /* Strokes n pixels wider or narrower: a square of side n+1, the pixel and
   * its right / lower neighbours for n = 1. */
  uint8_t dot[N] = {0}, out[N], pair[N] = {0}, block[N] = {0}, big[N] = {0}, zero[N] = {0};
  dot[4 * S + 4] = 200;
  for (int y = 3; y <= 4; y++)
    for (int x = 3; x <= 4; x++) pair[y * S + x] = 200;
  for (int y = 3; y <= 5; y++)
    for (int x = 3; x <= 5; x++) block[y * S + x] = 200;
  for (int y = 2; y <= 6; y++)
    for (int x = 2; x <= 6; x++) big[y * S + x] = 200;
  cnn_augment_config cfg = {.thickness = 4};
  cnn_augment_draw d = none;
  d.thickness = 1;
  apply_bytes(&cfg, out, dot, S, S, 1, &d, 1);
  CHECK(memcmp(out, pair, N) == 0);
  d.thickness = 2;
  apply_bytes(&cfg, out, dot, S, S, 1, &d, 1);
  CHECK(memcmp(out, block, N) == 0);
  d.thickness = 4;
  apply_bytes(&cfg, out, dot, S, S, 1, &d, 1);
  CHECK(memcmp(out, big, N) == 0);
  d.thickness = -1;
  apply_bytes(&cfg, out, dot, S, S, 1, &d, 1);
  CHECK(memcmp(out, zero, N) == 0);
  /* a 3-pixel square thinned by one pixel: its upper left 2x2 */
  apply_bytes(&cfg, out, block, S, S, 1, &d, 1);
  CHECK(memcmp(out, pair, N) == 0);
  d.thickness = -2;
  apply_bytes(&cfg, out, block, S, S, 1, &d, 1);
  CHECK(memcmp(out, dot, N) == 0);
  d.thickness = -4;
  apply_bytes(&cfg, out, big, S, S, 1, &d, 1);
  CHECK(memcmp(out, dot, N) == 0);

  /* Drawn per image: none, dilation or erosion, each about a third of the
   * time; with thickness 1 nothing else. */
  cfg.thickness = 1;
  cnn_augment *a = make(&cfg, S, S, 1, 1);
  if (!CHECK(a != NULL)) return;
  int seen[3] = {0}, other = 0;
  for (uint64_t s = 0; s < 300; s++) {
    float f[N];
    cnn_augment_image(a, f, dot, cnn_augment_stream(9, 1, s), 0);
    to_bytes(out, f, N);
    if (!memcmp(out, dot, N))
      seen[0]++;
    else if (!memcmp(out, pair, N))
      seen[1]++;
    else if (!memcmp(out, zero, N))
      seen[2]++;
    else
      other++;
  }
  CHECK_EQ_INT(other, 0);
  for (int k = 0; k < 3; k++) CHECK(seen[k] > 70 && seen[k] < 130);
  cnn_augment_free(a);
}

static void test_elastic(void) {
  enum { S = 28, N = S * S };
  uint8_t src[N], out1[N], out2[N];
  for (int i = 0; i < N; i++) src[i] = (uint8_t)((i % S) * 9 ^ (i / S) * 5);
  /* alpha 0: no displacement, so the same as without elastic. */
  cnn_augment_config rot = {.rotation = 20}, rot0 = rot;
  rot0.elastic_sigma = 4;
  cnn_augment *a = make(&rot, S, S, 1, 1), *b = make(&rot0, S, S, 1, 1);
  if (CHECK(a && b)) {
    float f1[N], f2[N];
    for (uint64_t s = 0; s < 4; s++) {
      cnn_augment_image(a, f1, src, s, 0);
      cnn_augment_image(b, f2, src, s, 0);
      CHECK(memcmp(f1, f2, sizeof f1) == 0);
    }
  }
  cnn_augment_free(a), cnn_augment_free(b);

  /* A displacement field moves pixels but leaves a flat image flat away
   * from the borders (|alpha * smoothed field| is a few pixels here). */
  cnn_augment_config el = {.elastic_alpha = 34, .elastic_sigma = 4};
  uint8_t flat[N];
  memset(flat, 255, N);
  a = make(&el, S, S, 1, 1);
  if (CHECK(a != NULL)) {
    float f[N];
    int changed = 0, flat_ok = 1;
    for (uint64_t s = 0; s < 4; s++) {
      cnn_augment_image(a, f, src, s, 0);
      to_bytes(out1, f, N);
      changed += memcmp(out1, src, N) != 0;
      cnn_augment_image(a, f, flat, s, 0);
      for (int y = 10; y < 18; y++)
        for (int x = 10; x < 18; x++) flat_ok &= fabsf(f[y * S + x] - 1.0f) < 1e-6f;
    }
    CHECK_EQ_INT(changed, 4);
    CHECK(flat_ok);
    /* same stream, same field; another stream, another */
    cnn_augment_draw d = none;
    cnn_augment_apply(a, f, src, &d, 5, 0);
    to_bytes(out1, f, N);
    cnn_augment_apply(a, f, src, &d, 5, 0);
    to_bytes(out2, f, N);
    CHECK(memcmp(out1, out2, N) == 0);
    cnn_augment_apply(a, f, src, &d, 6, 0);
    to_bytes(out2, f, N);
    CHECK(memcmp(out1, out2, N) != 0);
  }
  cnn_augment_free(a);
}

static void test_noise(void) {
  enum { S = 128, N = S * S };
  static uint8_t grey[N], black[N];
  static float f[N];
  memset(grey, 128, N);
  cnn_augment_config cfg = {.noise = 0.05};
  cnn_augment *a = make(&cfg, S, S, 1, 1);
  if (!CHECK(a != NULL)) return;
  cnn_augment_image(a, f, grey, 3, 0);
  double sum = 0, sq = 0;
  for (int i = 0; i < N; i++) sum += f[i];
  double mean = sum / N;
  for (int i = 0; i < N; i++) sq += (f[i] - mean) * (f[i] - mean);
  CHECK_NEAR(mean, 128 / 255.0, 0.0015);             /* 4 standard errors */
  CHECK_NEAR(sqrt(sq / (N - 1)), 0.05, 0.05 * 0.03); /* 5 standard errors */
  /* On black, clamping keeps the positive half: mean std * sqrt(2/pi) / 2,
   * and nothing below 0 or above 1. */
  cnn_augment_image(a, f, black, 4, 0);
  sum = 0;
  int in_range = 1, zeros = 0;
  for (int i = 0; i < N; i++) sum += f[i], in_range &= f[i] >= 0 && f[i] <= 1, zeros += f[i] == 0;
  CHECK(in_range);
  CHECK_NEAR(sum / N, 0.05 * sqrt(2 / PI) / 2, 0.001);
  CHECK_NEAR((double)zeros / N, 0.5, 0.02);
  cnn_augment_free(a);
}

static void test_parse(void) {
  char err[CNN_ERRMAX];
  cnn_augment_config cfg;
  CHECK(parse(&cfg,
              "{\"rotation\":10,\"shift\":0.1,\"zoom\":0.1,\"shear\":0.2,\"elastic\":{\"alpha\":34,"
              "\"sigma\":4},\"thickness\":1,\"noise\":0.05}",
              "augment", err) == CNN_OK);
  CHECK(cfg.rotation == 10 && cfg.shift == 0.1 && cfg.zoom == 0.1 && cfg.shear == 0.2 &&
        cfg.elastic_alpha == 34 && cfg.elastic_sigma == 4 && cfg.thickness == 1 &&
        cfg.noise == 0.05);
  CHECK(cnn_augment_active(&cfg));
  CHECK(parse(&cfg, "{\"elastic\":{}}", NULL, err) == CNN_OK);
  CHECK(cfg.elastic_alpha == 34 && cfg.elastic_sigma == 4);
  CHECK(parse(&cfg, "{\"rotation\":400}", "augment", err) == CNN_ERROR);
  CHECK_STR(err, "option augment.rotation must be a number in [0, 180]; got 400");
  CHECK(parse(&cfg, "{\"rotation\":400}", NULL, err) == CNN_ERROR);
  CHECK_STR(err, "option rotation must be a number in [0, 180]; got 400");
  CHECK(cfg.rotation == 0);
  CHECK(parse(&cfg, "{\"elastic\":{\"sigma\":0}}", "augment", err) == CNN_ERROR);
  CHECK_STR(err, "option augment.elastic.sigma must be a number in (0, 100]; got 0");
  CHECK(parse(&cfg, "{\"thickness\":1.5}", "augment", err) == CNN_ERROR);
  CHECK_STR(err, "option augment.thickness must be an integer 0..8; got 1.5");
  CHECK(parse(&cfg, "{\"flip\":true}", "augment", err) == CNN_ERROR);
  CHECK_STR(
      err, "unknown option augment.flip (rotation, shift, zoom, shear, elastic, thickness, noise)");
  CHECK(parse(&cfg, "[1]", "augment", err) == CNN_ERROR);
  CHECK_STR(err,
            "option augment must be an object like {\"rotation\": 10, \"zoom\": 0.1}; got an "
            "array");
  /* and through cnn_train's options */
  cnn_train_config tc;
  CHECK(cnn_train_config_parse(&tc, "{\"augment\":{\"zoom\":0.2},\"epochs\":1}", NULL, NULL, err) ==
        CNN_OK);
  CHECK(tc.augment.zoom == 0.2 && tc.epochs == 1);
  CHECK(cnn_train_config_parse(&tc, "{\"augment\":{\"zoom\":1}}", NULL, NULL, err) == CNN_ERROR);
  CHECK_STR(err, "option augment.zoom must be a number in [0, 0.9]; got 1");
}

static const cnn_augment_config all = {.rotation = 10,
                                       .shift = 0.1,
                                       .zoom = 0.1,
                                       .shear = 0.2,
                                       .elastic_alpha = 34,
                                       .elastic_sigma = 4,
                                       .thickness = 1,
                                       .noise = 0.05};

static void test_determinism(void) {
  enum { S = 28, N = S * S };
  uint8_t src[N];
  float f1[N], f2[N];
  for (int i = 0; i < N; i++) src[i] = (uint8_t)(i * 7);
  cnn_augment *a = make(&all, S, S, 1, 2);
  if (!CHECK(a != NULL)) return;
  cnn_augment_image(a, f1, src, cnn_augment_stream(1, 2, 3), 0);
  cnn_augment_image(a, f2, src, cnn_augment_stream(1, 2, 3), 1);
  CHECK(memcmp(f1, f2, sizeof f1) == 0);
  const uint64_t other[3][3] = {{2, 2, 3}, {1, 3, 3}, {1, 2, 4}};
  for (int k = 0; k < 3; k++) {
    cnn_augment_image(a, f2, src, cnn_augment_stream(other[k][0], other[k][1], other[k][2]), 0);
    CHECK(memcmp(f1, f2, sizeof f1) != 0);
  }
  cnn_augment_free(a);
}

/* Batches: the same floats for any pool, and each image what it is alone. */
static void test_batch(void) {
  enum { H = 12, W = 10, C = 2, COUNT = 40, B = 17 };
  size_t n = (size_t)H * W * C;
  uint8_t *images = malloc(COUNT * n);
  float *ref = malloc(B * n * sizeof(float)), *got = malloc(B * n * sizeof(float));
  uint32_t rows[B];
  if (!CHECK(images && ref && got)) return;
  for (size_t i = 0; i < COUNT * n; i++) images[i] = (uint8_t)((i * 2654435761u) >> 24);
  for (int i = 0; i < B; i++) rows[i] = (uint32_t)((i * 7 + 3) % COUNT);
  cnn_augment *a = make(&all, H, W, C, 3);
  if (CHECK(a != NULL)) {
    cnn_augment_batch(a, ref, images, rows, B, 11, 4, NULL);
    for (int t = 1; t <= 3; t++) {
      cnn_threads *pool = check_pool(t, cnn_isa_cpu());
      memset(got, 0, B * n * sizeof(float));
      cnn_augment_batch(a, got, images, rows, B, 11, 4, pool);
      CHECK(memcmp(got, ref, B * n * sizeof(float)) == 0);
      cnn_threads_free(pool);
    }
    for (int i = 0; i < B; i++) {
      cnn_augment_image(a, got, images + rows[i] * n, cnn_augment_stream(11, 4, rows[i]), 0);
      CHECK(memcmp(got, ref + i * n, n * sizeof(float)) == 0);
    }
  }
  cnn_augment_free(a);
  free(images), free(ref), free(got);
}

/* Training with augmentation: the same weights for 1, 2 and 3 threads and
 * in one call or two; other weights than without it. */
static void test_train(void) {
  enum { NTRAIN = 600 };
  uint8_t *ti, *tl;
  if (!CHECK(mnist_subset("train", NTRAIN, &ti, &tl) == 0)) return;
  cnn_dataset train = {.images = ti, .labels = tl, .count = NTRAIN};
  const char *spec_json =
      "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,"
      "\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"flatten\"},"
      "{\"type\":\"dropout\",\"rate\":0.1},{\"type\":\"dense\",\"units\":10}]}";
  float *weights[5] = {0};
  size_t nparams = 0;
  for (int run = 0; run < 5; run++) {
    /* runs 0-2: 1, 2, 3 threads; 3: two calls of one epoch; 4: no augment */
    char err[CNN_ERRMAX];
    cnn_spec spec;
    cnn_net *net = NULL;
    cnn_optim opt = {0};
    cnn_threads *pool = run < 3 && run > 0 ? check_pool(run + 1, cnn_threads_isa(NULL)) : NULL;
    if (!CHECK(cnn_spec_parse(&spec, spec_json, err) == CNN_OK &&
               cnn_net_new(&net, &spec, err) == CNN_OK))
      break;
    cnn_net_init(net, 5);
    cnn_net_set_pool(net, pool);
    cnn_train_config cfg;
    cnn_train_config_defaults(&cfg);
    cfg.epochs = 2, cfg.batch_size = 16, cfg.seed = 21, cfg.has_seed = 1;
    if (run != 4) cfg.augment = all;
    cnn_train_result res;
    if (run == 3) {
      cfg.epochs = 1;
      CHECK(cnn_train(net, &opt, &train, NULL, &cfg, &res, err) == CNN_OK);
      cfg.first_epoch = 2;
    }
    CHECK(cnn_train(net, &opt, &train, NULL, &cfg, &res, err) == CNN_OK);
    nparams = cnn_net_nparams(net);
    weights[run] = malloc(nparams * sizeof(float));
    if (weights[run]) memcpy(weights[run], cnn_net_params(net), nparams * sizeof(float));
    cnn_optim_clear(&opt);
    cnn_net_set_pool(net, NULL);
    cnn_threads_free(pool);
    cnn_net_free(net);
  }
  if (CHECK(weights[0] && weights[1] && weights[2] && weights[3] && weights[4])) {
    CHECK(memcmp(weights[0], weights[1], nparams * sizeof(float)) == 0);
    CHECK(memcmp(weights[0], weights[2], nparams * sizeof(float)) == 0);
    CHECK(memcmp(weights[0], weights[3], nparams * sizeof(float)) == 0);
    CHECK(memcmp(weights[0], weights[4], nparams * sizeof(float)) != 0);
  }
  for (int i = 0; i < 5; i++) free(weights[i]);
  free(ti), free(tl);
}

int main(void) {
  test_identity();
  test_shift();
  test_rotation();
  test_zoom();
  test_shear();
  test_thickness();
  test_elastic();
  test_noise();
  test_parse();
  test_determinism();
  test_batch();
  test_train();
  return check_done();
}
