/*
 * augmentation.c - data augmentation of training images (see augmentation.h
 * for the transforms and their order).
 *
 * Reproducibility: an image's random choices come from a generator seeded by
 * its stream alone (cnn_augment_stream(seed, epoch, row)), its elastic field
 * and noise from a second generator seeded from the same stream, and every
 * sum runs in a fixed order; so an image comes out the same whichever batch,
 * thread or thread count augments it. The choices are drawn in one fixed
 * order whatever is enabled, so that turning noise on, say, leaves the angle
 * an image gets unchanged.
 *
 * Memory: cnn_augment_new sizes everything (the Gaussian kernel, and per
 * thread two images and three fields of h x w floats); augmenting never
 * allocates.
 */
#include "augmentation.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "rng.h"

struct cnn_augment {
  cnn_augment_config cfg;
  int h, w, c;
  int threads;    /* scratch sets */
  int radius;     /* of the Gaussian kernel (elastic) */
  float *gauss;   /* owned, 2*radius+1 taps summing to 1 */
  size_t scratch; /* floats per thread */
  float *arena;   /* owned, threads x scratch floats */
};

/* ---- options ----------------------------------------------------------- */

/* Option names in messages: "augment.rotation", or "rotation" alone. */
static const char *full_name(char *buf, size_t size, const char *prefix, const char *key) {
  snprintf(buf, size, "%.80s%s%.40s", prefix ? prefix : "", prefix ? "." : "", key);
  return buf;
}

/* A number in [lo, hi] ((lo, hi] when lo_open); range spells it for the
 * message (by hand: %g would follow the locale's decimal point). */
static int number_opt(const cnn_json *x, const char *name, double lo, double hi, int lo_open,
                      const char *range, double *out, char *err) {
  char got[64];
  if (x->type != CNN_JSON_NUMBER || !(lo_open ? x->number > lo : x->number >= lo) ||
      !(x->number <= hi))
    return cnn_error(err, CNN_ERROR, "option %s must be a number in %s; got %s", name, range,
                     cnn_json_describe(x, got, sizeof got));
  *out = x->number;
  return CNN_OK;
}

static int elastic_opt(cnn_augment_config *cfg, const cnn_json *v, const char *name, char *err) {
  char got[64], sub[CNN_ERRMAX];
  if (v->type != CNN_JSON_OBJECT)
    return cnn_error(err, CNN_ERROR,
                     "option %s must be an object like {\"alpha\": 34, \"sigma\": 4}; got %s", name,
                     cnn_json_describe(v, got, sizeof got));
  /* Simard et al.'s values for MNIST, for a key left out. */
  cfg->elastic_alpha = 34, cfg->elastic_sigma = 4;
  for (size_t i = 0; i < v->count; i++) {
    const char *k = v->keys[i];
    const cnn_json *x = &v->items[i];
    int rc;
    full_name(sub, sizeof sub, name, k);
    if (!strcmp(k, "alpha"))
      rc = number_opt(x, sub, 0, 1000, 0, "[0, 1000]", &cfg->elastic_alpha, err);
    else if (!strcmp(k, "sigma"))
      rc = number_opt(x, sub, 0, 100, 1, "(0, 100]", &cfg->elastic_sigma, err);
    else
      rc = cnn_error(err, CNN_ERROR, "unknown option %s.%.40s (alpha, sigma)", name, k);
    if (rc) return rc;
  }
  return CNN_OK;
}

int cnn_augment_parse(cnn_augment_config *cfg, const cnn_json *v, const char *prefix, char *err) {
  char got[64], name[CNN_ERRMAX];
  int rc = CNN_OK;
  memset(cfg, 0, sizeof *cfg);
  if (v->type != CNN_JSON_OBJECT) {
    rc = cnn_error(err, CNN_ERROR,
                   "%s%s must be %sobject like {\"rotation\": 10, \"zoom\": 0.1}; got %s",
                   prefix ? "option " : "options", prefix ? prefix : "", prefix ? "an " : "a JSON ",
                   cnn_json_describe(v, got, sizeof got));
    goto done;
  }
  for (size_t i = 0; i < v->count && rc == CNN_OK; i++) {
    const char *k = v->keys[i];
    const cnn_json *x = &v->items[i];
    full_name(name, sizeof name, prefix, k);
    if (!strcmp(k, "rotation"))
      rc = number_opt(x, name, 0, 180, 0, "[0, 180]", &cfg->rotation, err);
    else if (!strcmp(k, "shift"))
      rc = number_opt(x, name, 0, 1, 0, "[0, 1]", &cfg->shift, err);
    else if (!strcmp(k, "zoom"))
      rc = number_opt(x, name, 0, 0.9, 0, "[0, 0.9]", &cfg->zoom, err);
    else if (!strcmp(k, "shear"))
      rc = number_opt(x, name, 0, 1, 0, "[0, 1]", &cfg->shear, err);
    else if (!strcmp(k, "noise"))
      rc = number_opt(x, name, 0, 1, 0, "[0, 1]", &cfg->noise, err);
    else if (!strcmp(k, "elastic"))
      rc = elastic_opt(cfg, x, name, err);
    else if (!strcmp(k, "thickness")) {
      if (x->type != CNN_JSON_NUMBER || x->number != floor(x->number) || x->number < 0 ||
          x->number > CNN_AUGMENT_MAX_THICKNESS)
        rc = cnn_error(err, CNN_ERROR, "option %s must be an integer 0..%d; got %s", name,
                       CNN_AUGMENT_MAX_THICKNESS, cnn_json_describe(x, got, sizeof got));
      else
        cfg->thickness = (int)x->number;
    } else
      rc = cnn_error(err, CNN_ERROR,
                     "unknown option %s (rotation, shift, zoom, shear, elastic, thickness, noise)",
                     name);
  }
done:
  if (rc) memset(cfg, 0, sizeof *cfg);
  return rc;
}

static int geometric(const cnn_augment_config *cfg) {
  return cfg->rotation > 0 || cfg->shift > 0 || cfg->zoom > 0 || cfg->shear > 0;
}

int cnn_augment_active(const cnn_augment_config *cfg) {
  return geometric(cfg) || cfg->elastic_alpha > 0 || cfg->thickness > 0 || cfg->noise > 0;
}

/* ---- setup --------------------------------------------------------------- */

void cnn_augment_free(cnn_augment *a) {
  if (!a) return;
  cnn_free(a->gauss);
  cnn_free(a->arena);
  cnn_free(a);
}

int cnn_augment_new(cnn_augment **out, const cnn_augment_config *cfg, int h, int w, int c,
                    int threads, char *err) {
  cnn_augment *a = NULL;
  size_t plane, image, scratch, total;
  int rc = CNN_OK;
  *out = NULL;
  if (h < 1 || w < 1 || c < 1 || threads < 1)
    return cnn_error(err, CNN_ERROR, "augment: bad image shape %dx%dx%d or %d threads", h, w, c,
                     threads);
  /* two images (the source in floats, morphology's half-way pass) and three
   * planes (the two displacement fields, the blur's half-way pass) */
  if (cnn_mul_size(&plane, (size_t)h, (size_t)w) || cnn_mul_size(&image, plane, (size_t)c) ||
      cnn_mul_size(&scratch, image, 2) || cnn_add_size(&scratch, scratch, 3 * plane) ||
      cnn_mul_size(&total, scratch, (size_t)threads) || cnn_mul_size(&total, total, sizeof(float)))
    return cnn_error(err, CNN_ERROR, "augment: images of %dx%dx%d are too large", h, w, c);
  if (!(a = cnn_calloc(1, sizeof *a))) return cnn_nomem(err);
  a->cfg = *cfg, a->h = h, a->w = w, a->c = c, a->threads = threads, a->scratch = scratch;
  if (cfg->elastic_alpha > 0) {
    /* Three standard deviations hold 99.7% of the weight; taps beyond the
     * image's side would only ever meet the zero padding. */
    double r = ceil(3 * cfg->elastic_sigma);
    int side = h > w ? h : w;
    a->radius = r < side - 1 ? (int)r : side - 1;
    if (!(a->gauss = cnn_malloc((2 * (size_t)a->radius + 1) * sizeof *a->gauss))) {
      rc = cnn_nomem(err);
      goto done;
    }
    double sum = 0, s2 = 2 * cfg->elastic_sigma * cfg->elastic_sigma;
    for (int k = -a->radius; k <= a->radius; k++) sum += exp(-(double)k * k / s2);
    for (int k = -a->radius; k <= a->radius; k++)
      a->gauss[k + a->radius] = (float)(exp(-(double)k * k / s2) / sum);
  }
  if (!(a->arena = cnn_malloc(total))) {
    rc = cnn_nomem(err);
    goto done;
  }
  *out = a, a = NULL;
done:
  cnn_augment_free(a);
  return rc;
}

/* ---- random choices ------------------------------------------------------ */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t cnn_augment_stream(uint64_t seed, uint64_t epoch, uint64_t row) {
  uint64_t x = mix64(seed + 0x9e3779b97f4a7c15ull);
  x = mix64(x ^ (epoch * 0xd1b54a32d192ed03ull + 0x8cb92ba72f3d8dd7ull));
  return mix64(x ^ (row * 0xaef17502108ef2d9ull + 0x3c6ef372fe94f82bull));
}

/* The fields and the noise: a second generator of the same stream. */
#define FIELD_STREAM 0x6a09e667f3bcc909ull

/* Uniform in [-1, 1). */
static double symmetric(cnn_rng *r) { return 2.0 * cnn_rng_float(r) - 1.0; }

void cnn_augment_draw_params(const cnn_augment *a, uint64_t stream, cnn_augment_draw *d) {
  const cnn_augment_config *cfg = &a->cfg;
  cnn_rng r;
  cnn_rng_seed(&r, stream);
  double u[7];
  for (int i = 0; i < 7; i++) u[i] = symmetric(&r);
  d->angle = u[0] * cfg->rotation * (3.14159265358979323846 / 180.0);
  d->tx = u[1] * cfg->shift * a->w;
  d->ty = u[2] * cfg->shift * a->h;
  d->scale = 1.0 + u[3] * cfg->zoom;
  d->shear = u[4] * cfg->shear;
  /* none, dilate or erode with probability 1/3 each, by 1..thickness pixels */
  int op = (int)((u[5] + 1.0) * 1.5), pixels = 1 + (int)((u[6] + 1.0) * 0.5 * cfg->thickness);
  if (pixels > cfg->thickness) pixels = cfg->thickness;
  d->thickness = cfg->thickness == 0 ? 0 : op == 1 ? pixels : op == 2 ? -pixels : 0;
}

/* ---- kernels ------------------------------------------------------------- */

/* Grayscale dilation (max) or erosion (min) over a square of side n+1, so
 * that strokes get n pixels wider or narrower (n = 1: the pixel and its
 * right / lower neighbours), pixels outside the image ignored, as a row pass
 * into tmp and a column pass back: img, tmp [h][w][c]. */
static void morph(float *restrict img, float *restrict tmp, int h, int w, int c, int n,
                  int dilate) {
  int lo = -(n / 2), hi = lo + n;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int x0 = x + lo < 0 ? 0 : x + lo, x1 = x + hi >= w ? w - 1 : x + hi;
      for (int k = 0; k < c; k++) {
        const float *row = img + (size_t)y * w * c + k;
        float m = row[(size_t)x0 * c];
        for (int xx = x0 + 1; xx <= x1; xx++) {
          float v = row[(size_t)xx * c];
          m = dilate ? (v > m ? v : m) : (v < m ? v : m);
        }
        tmp[((size_t)y * w + x) * c + k] = m;
      }
    }
  size_t stride = (size_t)w * c;
  for (int y = 0; y < h; y++) {
    int y0 = y + lo < 0 ? 0 : y + lo, y1 = y + hi >= h ? h - 1 : y + hi;
    float *dst = img + (size_t)y * stride;
    memcpy(dst, tmp + (size_t)y0 * stride, stride * sizeof *dst);
    for (int yy = y0 + 1; yy <= y1; yy++) {
      const float *src = tmp + (size_t)yy * stride;
      if (dilate)
        for (size_t j = 0; j < stride; j++) dst[j] = src[j] > dst[j] ? src[j] : dst[j];
      else
        for (size_t j = 0; j < stride; j++) dst[j] = src[j] < dst[j] ? src[j] : dst[j];
    }
  }
}

/* Gaussian smoothing of a field with zero padding, times scale: f [h][w] in
 * place, t [h][w] the row pass. Loops run over x innermost so that they
 * vectorise; each output is summed over the taps in order. */
static void smooth(float *restrict f, float *restrict t, int h, int w, const float *restrict g,
                   int r, float scale) {
  for (int y = 0; y < h; y++) {
    const float *in = f + (size_t)y * w;
    float *out = t + (size_t)y * w;
    for (int x = 0; x < w; x++) out[x] = 0;
    for (int k = -r; k <= r; k++) {
      int x0 = k < 0 ? -k : 0, x1 = k > 0 ? w - k : w;
      float gk = g[k + r];
      for (int x = x0; x < x1; x++) out[x] += gk * in[x + k];
    }
  }
  for (int y = 0; y < h; y++) {
    float *out = f + (size_t)y * w;
    for (int x = 0; x < w; x++) out[x] = 0;
    int k0 = -y > -r ? -y : -r, k1 = h - 1 - y < r ? h - 1 - y : r;
    for (int k = k0; k <= k1; k++) {
      const float *in = t + (size_t)(y + k) * w;
      float gk = g[k + r] * scale;
      for (int x = 0; x < w; x++) out[x] += gk * in[x];
    }
  }
}

/* out [h][w][c] sampled bilinearly from img [h][w][c] at the affine map of d
 * plus the displacement (fx, fy) [h][w] (NULL: none); zero outside img. */
static void warp(float *restrict out, const float *restrict img, int h, int w, int c,
                 const cnn_augment_draw *d, const float *fx, const float *fy) {
  /* Output to source: the inverse of zoom, shear and rotation (augmentation.h). */
  double cs = cos(d->angle), sn = sin(d->angle), s = d->scale, k = d->shear;
  float m00 = (float)((cs - k * sn) / s), m01 = (float)((-sn - k * cs) / s);
  float m10 = (float)(sn / s), m11 = (float)(cs / s);
  float cx = (w - 1) * 0.5f, cy = (h - 1) * 0.5f;
  float tx = (float)d->tx, ty = (float)d->ty;
  for (int y = 0; y < h; y++) {
    float v = (float)y - cy - ty;
    for (int x = 0; x < w; x++) {
      size_t p = (size_t)y * w + x;
      float u = (float)x - cx - tx;
      float xs = cx + (m00 * u + m01 * v), ys = cy + (m10 * u + m11 * v);
      if (fx) xs += fx[p], ys += fy[p];
      float *o = out + p * c;
      /* Beyond one pixel outside, every tap is outside (this also keeps
       * huge coordinates away from the int conversion). */
      if (!(xs > -1 && xs < w && ys > -1 && ys < h)) {
        for (int j = 0; j < c; j++) o[j] = 0;
        continue;
      }
      /* floor by truncation (floorf is a library call on baseline x86-64) */
      int x0 = (int)xs, y0 = (int)ys;
      x0 -= (float)x0 > xs, y0 -= (float)y0 > ys;
      float ax = xs - (float)x0, ay = ys - (float)y0;
      int in_x0 = x0 >= 0, in_x1 = x0 + 1 < w, in_y0 = y0 >= 0, in_y1 = y0 + 1 < h;
      const float *r0 = img + ((size_t)(in_y0 ? y0 : 0) * w) * c;
      const float *r1 = img + ((size_t)(in_y1 ? y0 + 1 : 0) * w) * c;
      for (int j = 0; j < c; j++) {
        float v00 = in_y0 && in_x0 ? r0[(size_t)x0 * c + j] : 0;
        float v01 = in_y0 && in_x1 ? r0[(size_t)(x0 + 1) * c + j] : 0;
        float v10 = in_y1 && in_x0 ? r1[(size_t)x0 * c + j] : 0;
        float v11 = in_y1 && in_x1 ? r1[(size_t)(x0 + 1) * c + j] : 0;
        o[j] = (v00 * (1 - ax) + v01 * ax) * (1 - ay) + (v10 * (1 - ax) + v11 * ax) * ay;
      }
    }
  }
}

void cnn_augment_apply(const cnn_augment *a, float *out, const uint8_t *src,
                       const cnn_augment_draw *d, uint64_t stream, int thread) {
  assert(thread >= 0 && thread < a->threads);
  int h = a->h, w = a->w, c = a->c;
  size_t plane = (size_t)h * w, n = plane * c;
  float *img = a->arena + (size_t)thread * a->scratch, *tmp = img + n;
  float *fx = tmp + n, *fy = fx + plane, *t = fy + plane;
  int elastic = a->cfg.elastic_alpha > 0;
  int affine = d->angle != 0 || d->tx != 0 || d->ty != 0 || d->scale != 1 || d->shear != 0;
  cnn_rng r;
  cnn_rng_seed(&r, stream ^ FIELD_STREAM);

  /* The same scaling as an image that is not augmented (fit.c). */
  float *first = affine || elastic ? img : out;
  for (size_t j = 0; j < n; j++) first[j] = src[j] / 255.0f;
  if (d->thickness)
    morph(first, tmp, h, w, c, d->thickness > 0 ? d->thickness : -d->thickness, d->thickness > 0);
  if (elastic) {
    /* uniform in [-1, 1), two 24-bit values per draw */
    for (size_t j = 0; j < plane; j++) {
      uint64_t u = cnn_rng_next(&r);
      fx[j] = (float)(u >> 40) * 0x1.0p-23f - 1.0f;
      fy[j] = (float)(u & 0xffffff) * 0x1.0p-23f - 1.0f;
    }
    float alpha = (float)a->cfg.elastic_alpha;
    smooth(fx, t, h, w, a->gauss, a->radius, alpha);
    smooth(fy, t, h, w, a->gauss, a->radius, alpha);
  }
  if (affine || elastic) warp(out, img, h, w, c, d, elastic ? fx : NULL, elastic ? fy : NULL);
  if (a->cfg.noise > 0) {
    /* Marsaglia's polar method: pairs of normals, no trigonometry. */
    float std = (float)a->cfg.noise;
    for (size_t j = 0; j < n; j += 2) {
      float u, v, q;
      do {
        uint64_t b = cnn_rng_next(&r);
        u = (float)(b >> 40) * 0x1.0p-23f - 1.0f;
        v = (float)(b & 0xffffff) * 0x1.0p-23f - 1.0f;
        q = u * u + v * v;
      } while (q >= 1 || q == 0);
      float m = std * sqrtf(-2 * logf(q) / q);
      float e[2] = {u * m, v * m};
      for (size_t i = 0; i < 2 && j + i < n; i++) {
        float x = out[j + i] + e[i];
        out[j + i] = x < 0 ? 0 : x > 1 ? 1 : x;
      }
    }
  }
}

void cnn_augment_image(const cnn_augment *a, float *out, const uint8_t *src, uint64_t stream,
                       int thread) {
  cnn_augment_draw d;
  cnn_augment_draw_params(a, stream, &d);
  cnn_augment_apply(a, out, src, &d, stream, thread);
}

typedef struct {
  const cnn_augment *a;
  float *out;
  const uint8_t *images;
  const uint32_t *rows;
  uint64_t seed, epoch;
  int gathered; /* image i is images[i], not images[rows[i]] */
} batch_task;

static void augment_task(void *p, int i, int thread) {
  const batch_task *t = p;
  size_t n = (size_t)t->a->h * t->a->w * t->a->c;
  size_t at = t->gathered ? (size_t)i : (size_t)t->rows[i];
  cnn_augment_image(t->a, t->out + (size_t)i * n, t->images + at * n,
                    cnn_augment_stream(t->seed, t->epoch, t->rows[i]), thread);
}

void cnn_augment_batch(const cnn_augment *a, float *out, const uint8_t *images,
                       const uint32_t *rows, int n, uint64_t seed, uint64_t epoch,
                       cnn_threads *pool) {
  assert(cnn_threads_size(pool) <= a->threads);
  batch_task t = {a, out, images, rows, seed, epoch, 0};
  cnn_threads_run(pool, augment_task, &t, n);
}

void cnn_augment_gathered(const cnn_augment *a, float *out, const uint8_t *images,
                          const uint32_t *rows, int n, uint64_t seed, uint64_t epoch,
                          cnn_threads *pool) {
  assert(cnn_threads_size(pool) <= a->threads);
  batch_task t = {a, out, images, rows, seed, epoch, 1};
  cnn_threads_run(pool, augment_task, &t, n);
}
