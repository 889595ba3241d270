/*
 * decode.c - images in: decoding any image argument to grayscale, and turning a
 * grayscale photo or scan of a digit into the 28x28 MNIST convention.
 *
 * Conventions: gray 0 = black, 255 = white; output white ink (255) on black (0)
 * with gray levels kept, as MNIST. Every size from outside (the file's header)
 * is checked in 64-bit arithmetic against CNN_IMAGE_MAX_PIXELS and
 * CNN_IMAGE_MAX_SIDE before anything is decoded. Decoding itself is in stb.c.
 *
 * The preprocessing follows the recipe of MNIST (LeCun et al.: digits
 * size-normalised into a 20x20 box keeping the aspect ratio, anti-aliased, then
 * placed in 28x28 with the centre of mass at the centre) after a front end that
 * makes phone photos look like MNIST's clean scans:
 *  1. Working copy: area-averaged down to at most WORK_MAX px on the longer side
 *     (a digit covering a fraction of a 12 MP photo still keeps hundreds of px).
 *  2. Background: the image is cut into a grid of about 32 px cells (at most
 *     8 along the longer side, one cell for thumbnails); per cell a percentile of
 *     the histogram; a 3x3 median over the grid (a cell filled by a thick stroke
 *     does not count); bilinear between cell centres. This follows lighting
 *     gradients and shadows that are smooth at the scale of the digit.
 *  3. Polarity: against the per-cell median background, ink is the heavier tail
 *     of the residual (beyond 3 noise sigmas, sigma from the median absolute
 *     deviation): dark ink on light paper or light on dark.
 *  4. Ink: the background is re-estimated with the percentile on the paper side
 *     (75th for dark ink, 25th for light ink: right while ink covers less than
 *     3/4 of a cell), and ink = |image - background| on the ink side, >= 0.
 *  5. Threshold: Otsu on the ink histogram. No ink when the two classes are not
 *     separated by max(MIN_CONTRAST, 5 sigma) levels (blank paper, pure noise).
 *  6. Specks: connected components (8-neighbour) of the thresholded ink; the
 *     largest is the digit; smaller ones stay only if they weigh >= 3% of it and
 *     lie near what is kept (paper texture, JPEG noise and dirt go).
 *     Hysteresis then grows the kept components into every connected pixel above
 *     a low threshold (3 sigma, at least 10% of the ink level), so anti-aliased
 *     stroke edges stay gray instead of being cut.
 *  7. Gray levels: ink / ink level, clamped to 0..1, inside what hysteresis
 *     grew and 0 elsewhere; the ink level is the median ink of the thresholded
 *     stroke pixels (MNIST's strokes are saturated in the middle).
 *  8. Thin strokes (a pen on a large page) would fade to a trace at 20 px: when
 *     the brightest output pixel (the width of the widest stroke, as the output
 *     is an area average) is under THIN_TOP, the ink is dilated and step 9 redone.
 *  9. Bounding box, centre of mass, then one resampling straight into 28x28:
 *     longer side 20 px, centre of mass at (14,14) with sub-pixel accuracy, the
 *     box kept inside the frame. The filter is a box as wide as one output pixel
 *     in the source (area averaging when shrinking, linear interpolation when
 *     enlarging), with zero outside the image.
 * 10. Scaled so the brightest pixel is 255.
 */
#include "image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define WORK_MAX 1024      /* longer side of the working copy */
#define CELL_PX 32         /* background cell size, roughly */
#define GRID_MAX 8         /* background cells along the longer side */
#define MIN_CONTRAST 20.0f /* gray levels between ink and paper, at least */
#define BOX 20.0           /* MNIST's box for the longer side */
#define THIN_TOP 0.5       /* output strokes thinner than this (px) are thickened */
#define TARGET_STROKE 2.0  /* ... to about this width */
#define LOW_FRAC 0.1       /* hysteresis floor, as a fraction of the ink level */

void cnn_gray_clear(cnn_gray *g) {
  if (!g) return;
  cnn_free(g->px);
  g->px = NULL;
  g->w = g->h = 0;
}

static int check_size(int w, int h, char *err) {
  uint64_t n = (uint64_t)(unsigned)w * (uint64_t)(unsigned)h;
  if (w <= 0 || h <= 0) return cnn_error(err, CNN_ERROR, "image is %dx%d pixels", w, h);
  if (n > CNN_IMAGE_MAX_PIXELS)
    return cnn_error(err, CNN_ERROR, "image is %dx%d pixels; the limit is %u", w, h,
                     CNN_IMAGE_MAX_PIXELS);
  if ((unsigned)w > CNN_IMAGE_MAX_SIDE || (unsigned)h > CNN_IMAGE_MAX_SIDE)
    return cnn_error(err, CNN_ERROR, "image is %dx%d pixels; the limit is %u per side", w, h,
                     CNN_IMAGE_MAX_SIDE);
  return CNN_OK;
}

int cnn_image_decode(cnn_gray *out, const uint8_t *data, size_t len, char *err) {
  uint8_t *ga = NULL; /* owned: decoded gray+alpha */
  int w = 0, h = 0, rc;
  out->w = out->h = 0;
  out->px = NULL;
  if ((rc = cnn_image_info(data, len, &w, &h, err)) != CNN_OK) return rc;
  /* The header alone is trusted this far: refuse bombs before decoding. */
  if ((rc = check_size(w, h, err)) != CNN_OK) return rc;
  if ((rc = cnn_image_load(&ga, &w, &h, data, len, err)) != CNN_OK) goto done;
  if ((rc = check_size(w, h, err)) != CNN_OK) goto done;
  size_t n = (size_t)w * (size_t)h;
  out->px = cnn_malloc(n);
  if (!out->px) {
    rc = cnn_nomem(err);
    goto done;
  }
  /* Composite on white paper: transparent means no ink. */
  for (size_t i = 0; i < n; i++) {
    unsigned y = ga[2 * i], a = ga[2 * i + 1];
    out->px[i] = (uint8_t)((y * a + 255u * (255u - a) + 127u) / 255u);
  }
  out->w = w;
  out->h = h;
  rc = CNN_OK;
done:
  cnn_free(ga);
  return rc;
}

int cnn_image_to_mnist(uint8_t out[CNN_MNIST_BYTES], const uint8_t *data, size_t len, char *err) {
  int w, h;
  if (len == CNN_MNIST_BYTES) {
    int rc = cnn_image_info(data, len, &w, &h, err);
    if (rc == CNN_NOMEM) return rc;
    if (rc != CNN_OK) {
      memcpy(out, data, CNN_MNIST_BYTES);
      return CNN_OK;
    }
  }
  cnn_gray g = {0};
  int rc = cnn_image_decode(&g, data, len, err);
  if (rc == CNN_OK) rc = cnn_gray_to_mnist(out, &g, err);
  cnn_gray_clear(&g);
  return rc;
}

/* ---- resampling ------------------------------------------------------------ */

/* One output sample = sum of weights[k] * src[first + k], k < count. */
typedef struct tap {
  int first, count;
  size_t at; /* index of its first weight */
} tap;

/* Filter from a source axis of n pixels to an output axis of m pixels, where
 * output coordinate u = x * scale + offset (x the source coordinate). Each
 * output pixel averages the piecewise-constant source over a box of width
 * max(1, 1/scale) source pixels centred on it: exact area averaging when
 * shrinking, linear interpolation when enlarging. Outside the source is 0. */
static int taps_build(tap **tp, float **wp, int n, int m, double scale, double offset) {
  double width = scale < 1.0 ? 1.0 / scale : 1.0;
  int span = (int)ceil(width) + 2;
  size_t nw;
  *tp = NULL;
  *wp = NULL;
  if (cnn_mul_size(&nw, (size_t)m, (size_t)span) != 0) return CNN_NOMEM;
  tap *t = cnn_malloc((size_t)m * sizeof *t);
  float *w = cnn_malloc(nw * sizeof *w);
  if (!t || !w) {
    cnn_free(t);
    cnn_free(w);
    return CNN_NOMEM;
  }
  size_t at = 0;
  for (int j = 0; j < m; j++) {
    double c = (j + 0.5 - offset) / scale;
    double lo = c - width / 2, hi = c + width / 2;
    int i0 = (int)floor(lo), i1 = (int)ceil(hi); /* source pixels [i0, i1) */
    if (i0 < 0) i0 = 0;
    if (i1 > n) i1 = n;
    if (i0 > n) i0 = n; /* wholly outside: no taps, and no pointer past the row */
    t[j].first = i0;
    t[j].count = 0;
    t[j].at = at;
    for (int i = i0; i < i1 && t[j].count < span; i++) {
      double a = i > lo ? i : lo, b = i + 1 < hi ? i + 1 : hi;
      if (b > a) {
        if (t[j].count == 0) t[j].first = i;
        w[at + (size_t)t[j].count++] = (float)((b - a) / width);
      } else if (t[j].count == 0) {
        t[j].first = i + 1;
      }
    }
    at += (size_t)t[j].count;
  }
  *tp = t;
  *wp = w;
  return CNN_OK;
}

/* Horizontal pass: tmp (sh x dw) from src (sh x sw). */
static void resample_rows(float *restrict tmp, int dw, const float *restrict src, int sw, int sh,
                          const tap *tx, const float *wx) {
  for (int y = 0; y < sh; y++) {
    const float *row = src + (size_t)y * sw;
    for (int j = 0; j < dw; j++) {
      const float *w = wx + tx[j].at;
      const float *s = row + tx[j].first;
      float acc = 0;
      for (int k = 0; k < tx[j].count; k++) acc += w[k] * s[k];
      tmp[(size_t)y * dw + j] = acc;
    }
  }
}

/* Vertical pass: dst (dh x dw) from tmp (rows x dw). */
static void resample_cols(float *restrict dst, int dw, int dh, const float *restrict tmp,
                          const tap *ty, const float *wy) {
  for (int i = 0; i < dh; i++) {
    float *drow = dst + (size_t)i * dw;
    for (int j = 0; j < dw; j++) drow[j] = 0;
    const float *w = wy + ty[i].at;
    for (int k = 0; k < ty[i].count; k++) {
      const float *srow = tmp + (size_t)(ty[i].first + k) * dw;
      for (int j = 0; j < dw; j++) drow[j] += w[k] * srow[j];
    }
  }
}

/* Resamples src into dst with output coordinate u = x * scale + offset per axis. */
static int resample_to(float *dst, int dw, int dh, const float *src, int sw, int sh, double scale,
                       double ox, double oy) {
  tap *tx = NULL, *ty = NULL;
  float *wx = NULL, *wy = NULL, *tmp = NULL;
  int rc = taps_build(&tx, &wx, sw, dw, scale, ox);
  if (rc == CNN_OK) rc = taps_build(&ty, &wy, sh, dh, scale, oy);
  if (rc == CNN_OK) {
    tmp = cnn_malloc((size_t)sh * (size_t)dw * sizeof *tmp);
    if (!tmp) rc = CNN_NOMEM;
  }
  if (rc == CNN_OK) {
    resample_rows(tmp, dw, src, sw, sh, tx, wx);
    resample_cols(dst, dw, dh, tmp, ty, wy);
  }
  cnn_free(tx);
  cnn_free(ty);
  cnn_free(wx);
  cnn_free(wy);
  cnn_free(tmp);
  return rc;
}

/* img (h x w floats) = g area-averaged, with scales per axis such that the
 * boxes tile the source exactly. Row by row, so that no float copy of a large
 * photo is ever made: the scratch is g->h x w floats. */
static int shrink_gray(float *img, int w, int h, const cnn_gray *g) {
  tap *tx = NULL, *ty = NULL;
  float *wx = NULL, *wy = NULL, *tmp = NULL, *row = NULL;
  int rc = taps_build(&tx, &wx, g->w, w, (double)w / g->w, 0);
  if (rc == CNN_OK) rc = taps_build(&ty, &wy, g->h, h, (double)h / g->h, 0);
  if (rc == CNN_OK) {
    tmp = cnn_malloc((size_t)g->h * (size_t)w * sizeof *tmp);
    row = cnn_malloc((size_t)g->w * sizeof *row);
    if (!tmp || !row) rc = CNN_NOMEM;
  }
  if (rc == CNN_OK) {
    for (int y = 0; y < g->h; y++) {
      const uint8_t *src = g->px + (size_t)y * (size_t)g->w;
      for (int x = 0; x < g->w; x++) row[x] = src[x];
      resample_rows(tmp + (size_t)y * w, w, row, g->w, 1, tx, wx);
    }
    resample_cols(img, w, h, tmp, ty, wy);
  }
  cnn_free(tx);
  cnn_free(ty);
  cnn_free(wx);
  cnn_free(wy);
  cnn_free(tmp);
  cnn_free(row);
  return rc;
}

/* ---- background --------------------------------------------------------------- */

static int bin256(float v) {
  int b = (int)(v + 0.5f);
  return b < 0 ? 0 : b > 255 ? 255 : b;
}

/* Value at fraction q (0..1) of a 256-bin histogram of `total` samples. */
static float hist_quantile(const uint32_t *hist, uint64_t total, double q) {
  uint64_t want = (uint64_t)ceil(q * (double)total), cum = 0;
  if (want == 0) want = 1;
  for (int b = 0; b < 256; b++) {
    cum += hist[b];
    if (cum >= want) return (float)b;
  }
  return 255.0f;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The background grid: nx x ny cells; q[3] the 25th, 50th, 75th percentiles. */
typedef struct grid {
  int nx, ny;
  float q[3][GRID_MAX * GRID_MAX];
} grid;

static void grid_build(grid *g, const float *img, int w, int h) {
  int longer = w > h ? w : h;
  int n = (int)lround((double)longer / CELL_PX);
  if (n < 1) n = 1;
  if (n > GRID_MAX) n = GRID_MAX;
  double cell = (double)longer / n;
  g->nx = w == longer ? n : (int)lround(w / cell);
  g->ny = h == longer ? n : (int)lround(h / cell);
  if (g->nx < 1) g->nx = 1;
  if (g->ny < 1) g->ny = 1;
  for (int cy = 0; cy < g->ny; cy++) {
    int y0 = (int)((int64_t)cy * h / g->ny), y1 = (int)((int64_t)(cy + 1) * h / g->ny);
    for (int cx = 0; cx < g->nx; cx++) {
      int x0 = (int)((int64_t)cx * w / g->nx), x1 = (int)((int64_t)(cx + 1) * w / g->nx);
      uint32_t hist[256] = {0};
      for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) hist[bin256(img[(size_t)y * w + x])]++;
      uint64_t total = (uint64_t)(y1 - y0) * (uint64_t)(x1 - x0);
      for (int k = 0; k < 3; k++)
        g->q[k][cy * g->nx + cx] = hist_quantile(hist, total, 0.25 * (k + 1));
    }
  }
}

/* Background image from grid values v: 3x3 median over the grid (a cell that a
 * stroke fills is outvoted by its neighbours), then bilinear between cell
 * centres, constant beyond the outer centres. */
static void background_fill(float *bg, int w, int h, const grid *g, const float *v) {
  float med[GRID_MAX * GRID_MAX];
  for (int cy = 0; cy < g->ny; cy++)
    for (int cx = 0; cx < g->nx; cx++) {
      float win[9];
      int k = 0;
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
          int yy = cy + dy, xx = cx + dx;
          if (yy >= 0 && yy < g->ny && xx >= 0 && xx < g->nx) win[k++] = v[yy * g->nx + xx];
        }
      qsort(win, (size_t)k, sizeof win[0], cmp_float);
      med[cy * g->nx + cx] = k % 2 ? win[k / 2] : 0.5f * (win[k / 2 - 1] + win[k / 2]);
    }
  double cw = (double)w / g->nx, ch = (double)h / g->ny;
  for (int y = 0; y < h; y++) {
    double fy = (y + 0.5) / ch - 0.5;
    int y0 = (int)floor(fy);
    float ty = (float)(fy - y0);
    if (y0 < 0) y0 = 0, ty = 0;
    if (y0 >= g->ny - 1) y0 = g->ny - 1, ty = 0;
    int y1 = y0 + 1 < g->ny ? y0 + 1 : y0;
    for (int x = 0; x < w; x++) {
      double fx = (x + 0.5) / cw - 0.5;
      int x0 = (int)floor(fx);
      float tx = (float)(fx - x0);
      if (x0 < 0) x0 = 0, tx = 0;
      if (x0 >= g->nx - 1) x0 = g->nx - 1, tx = 0;
      int x1 = x0 + 1 < g->nx ? x0 + 1 : x0;
      float a = med[y0 * g->nx + x0], b = med[y0 * g->nx + x1];
      float c = med[y1 * g->nx + x0], d = med[y1 * g->nx + x1];
      float top = a + (b - a) * tx, bot = c + (d - c) * tx;
      bg[(size_t)y * w + x] = top + (bot - top) * ty;
    }
  }
}

/* Median of n values given by a 2048-bin histogram over [-256, 256). */
static double hist2k_median(const uint32_t *hist, size_t n) {
  uint64_t want = (n + 1) / 2, cum = 0;
  for (int b = 0; b < 2048; b++) {
    cum += hist[b];
    if (cum >= want) return (b + 0.5) / 4.0 - 256.0;
  }
  return 256.0;
}

static int bin2k(double v) {
  int b = (int)floor((v + 256.0) * 4.0);
  return b < 0 ? 0 : b > 2047 ? 2047 : b;
}

/* Robust noise sigma of r[0..n) (1.4826 x median absolute deviation). */
static double noise_sigma(const float *r, size_t n, uint32_t *hist) {
  memset(hist, 0, 2048 * sizeof *hist);
  for (size_t i = 0; i < n; i++) hist[bin2k(r[i])]++;
  double med = hist2k_median(hist, n);
  memset(hist, 0, 2048 * sizeof *hist);
  for (size_t i = 0; i < n; i++) hist[bin2k(fabs(r[i] - med))]++;
  double mad = hist2k_median(hist, n);
  /* Bins are 1/4 level wide: a clean synthetic image has a MAD of 0. */
  return mad <= 0.125 ? 0.0 : 1.4826 * mad;
}

/* Otsu's threshold on a 256-bin histogram: ink is bin > *k. Returns 0 if the
 * histogram has a single occupied bin. Class means in *m0, *m1. */
static int otsu(const uint64_t *hist, int *k, double *m0, double *m1) {
  double total = 0, sum = 0;
  for (int b = 0; b < 256; b++) total += (double)hist[b], sum += (double)b * (double)hist[b];
  double w0 = 0, s0 = 0, best = -1;
  int found = 0;
  for (int b = 0; b < 255; b++) {
    w0 += (double)hist[b];
    s0 += (double)b * (double)hist[b];
    double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    double mu0 = s0 / w0, mu1 = (sum - s0) / w1;
    double between = w0 * w1 * (mu1 - mu0) * (mu1 - mu0);
    if (between > best) {
      best = between;
      *k = b;
      *m0 = mu0;
      *m1 = mu1;
      found = 1;
    }
  }
  return found;
}

/* ---- components --------------------------------------------------------------- */

typedef struct comp {
  int x0, y0, x1, y1; /* bounding box, [x0, x1) x [y0, y1) */
  size_t area;
  int seed; /* one of its pixels */
  int kept; /* part of the digit */
} comp;

static int comp_cmp_area(const void *a, const void *b) {
  const comp *x = a, *y = b;
  if (x->area != y->area) return x->area < y->area ? 1 : -1;
  return (x->seed > y->seed) - (x->seed < y->seed);
}

/* Flood fill from seed over pixels with mask[i] == from, setting them to `to`
 * (8-neighbour). stack holds w*h ints. Fills *c with the area and box. */
static void flood(uint8_t *mask, int w, int h, int seed, uint8_t from, uint8_t to, int *stack,
                  comp *c) {
  size_t top = 0;
  c->x0 = c->x1 = seed % w;
  c->y0 = c->y1 = seed / w;
  c->x1++, c->y1++;
  c->area = 0;
  c->seed = seed;
  mask[seed] = to;
  stack[top++] = seed;
  while (top) {
    int p = stack[--top], x = p % w, y = p / w;
    c->area++;
    if (x < c->x0) c->x0 = x;
    if (x + 1 > c->x1) c->x1 = x + 1;
    if (y < c->y0) c->y0 = y;
    if (y + 1 > c->y1) c->y1 = y + 1;
    for (int dy = -1; dy <= 1; dy++) {
      int yy = y + dy;
      if (yy < 0 || yy >= h) continue;
      for (int dx = -1; dx <= 1; dx++) {
        int xx = x + dx;
        if (xx < 0 || xx >= w) continue;
        int q = yy * w + xx;
        if (mask[q] == from) {
          mask[q] = to;
          stack[top++] = q;
        }
      }
    }
  }
}

/* Mask values during the component stages. */
enum { M_PAPER = 0, M_LOW = 1, M_HIGH = 2, M_SEEN = 3, M_KEEP = 4, M_GROWN = 5 };

/* Separable max filter of radius r (a square), in place; tmp holds w*h floats. */
static void dilate(float *v, int w, int h, int r, float *tmp) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      float m = 0;
      int a = x - r < 0 ? 0 : x - r, b = x + r >= w ? w - 1 : x + r;
      for (int k = a; k <= b; k++)
        if (v[(size_t)y * w + k] > m) m = v[(size_t)y * w + k];
      tmp[(size_t)y * w + x] = m;
    }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      float m = 0;
      int a = y - r < 0 ? 0 : y - r, b = y + r >= h ? h - 1 : y + r;
      for (int k = a; k <= b; k++)
        if (tmp[(size_t)k * w + x] > m) m = tmp[(size_t)k * w + x];
      v[(size_t)y * w + x] = m;
    }
}

/* ---- the pipeline ------------------------------------------------------------- */

int cnn_gray_to_mnist(uint8_t out[CNN_MNIST_BYTES], const cnn_gray *g, char *err) {
  float *img = NULL;    /* owned: working copy, w x h */
  float *bg = NULL;     /* owned: background, then scratch */
  float *ink = NULL;    /* owned: ink strength, then gray levels 0..1 */
  uint8_t *mask = NULL; /* owned: M_* per pixel */
  int *stack = NULL;    /* owned: flood fill stack */
  comp *comps = NULL;   /* owned: components of the thresholded ink */
  uint32_t *h2k = NULL; /* owned: 2048-bin histogram */
  size_t ncomps = 0, capcomps = 0;
  int rc;
  memset(out, 0, CNN_MNIST_BYTES);
  if (!g || !g->px) return cnn_error(err, CNN_ERROR, "no image");
  if ((rc = check_size(g->w, g->h, err)) != CNN_OK) return rc;

  /* 1. Working copy. */
  int longer = g->w > g->h ? g->w : g->h;
  int w = g->w, h = g->h;
  if (longer > WORK_MAX) {
    double s = (double)WORK_MAX / longer;
    w = (int)lround(g->w * s);
    h = (int)lround(g->h * s);
    if (w < 1) w = 1;
    if (h < 1) h = 1;
  }
  size_t n = (size_t)w * (size_t)h;
  img = cnn_malloc(n * sizeof *img);
  bg = cnn_malloc(n * sizeof *bg);
  ink = cnn_malloc(n * sizeof *ink);
  mask = cnn_malloc(n);
  stack = cnn_malloc(n * sizeof *stack);
  h2k = cnn_malloc(2048 * sizeof *h2k);
  if (!img || !bg || !ink || !mask || !stack || !h2k) goto nomem;
  if (w == g->w && h == g->h) {
    for (size_t i = 0; i < n; i++) img[i] = g->px[i];
  } else if (shrink_gray(img, w, h, g) != CNN_OK) {
    goto nomem;
  }

  /* 2-3. Background from cell medians; polarity from the residual's tails. */
  grid gr;
  grid_build(&gr, img, w, h);
  background_fill(bg, w, h, &gr, gr.q[1]);
  for (size_t i = 0; i < n; i++) ink[i] = img[i] - bg[i];
  double sigma = noise_sigma(ink, n, h2k);
  double k3 = 3.0 * sigma > 8.0 ? 3.0 * sigma : 8.0;
  double dark = 0, light = 0;
  for (size_t i = 0; i < n; i++) {
    if (ink[i] < -k3) dark += -ink[i] - k3;
    if (ink[i] > k3) light += ink[i] - k3;
  }
  if (dark == 0 && light == 0) goto blank;
  int dark_ink = dark > light;

  /* 4. Paper-side background and the ink map. */
  background_fill(bg, w, h, &gr, gr.q[dark_ink ? 2 : 0]);
  for (size_t i = 0; i < n; i++) {
    float d = dark_ink ? bg[i] - img[i] : img[i] - bg[i];
    ink[i] = d > 0 ? d : 0;
  }

  /* 5. Otsu. */
  uint64_t hist[256] = {0};
  for (size_t i = 0; i < n; i++) hist[bin256(ink[i])]++;
  int kt = 0;
  double m0 = 0, m1 = 0;
  if (!otsu(hist, &kt, &m0, &m1)) goto blank;
  double min_sep = 5.0 * sigma > MIN_CONTRAST ? 5.0 * sigma : MIN_CONTRAST;
  if (m1 - m0 < min_sep) goto blank;

  /* 6. Components of the thresholded ink. */
  for (size_t i = 0; i < n; i++) mask[i] = bin256(ink[i]) > kt ? M_HIGH : M_PAPER;
  for (size_t i = 0; i < n; i++) {
    if (mask[i] != M_HIGH) continue;
    if (ncomps == capcomps) {
      size_t cap = capcomps ? 2 * capcomps : 64;
      comp *nc = cnn_realloc(comps, cap * sizeof *nc);
      if (!nc) goto nomem;
      comps = nc;
      capcomps = cap;
    }
    comps[ncomps].kept = 0;
    flood(mask, w, h, (int)i, M_HIGH, M_SEEN, stack, &comps[ncomps++]);
  }
  if (ncomps == 0) goto blank;
  qsort(comps, ncomps, sizeof *comps, comp_cmp_area);
  size_t min_area = (size_t)(n * 0.0002);
  if (min_area < 2) min_area = 2;
  if (comps[0].area < min_area) goto blank;
  size_t keep_area = (size_t)ceil(comps[0].area * 0.03);
  if (keep_area < min_area) keep_area = min_area;
  int ux0 = comps[0].x0, uy0 = comps[0].y0, ux1 = comps[0].x1, uy1 = comps[0].y1;
  flood(mask, w, h, comps[0].seed, M_SEEN, M_KEEP, stack, &comps[0]);
  comps[0].kept = 1;
  for (size_t c = 1; c < ncomps && comps[c].area >= keep_area; c++) {
    int gap = 0, side = ux1 - ux0 > uy1 - uy0 ? ux1 - ux0 : uy1 - uy0;
    if (comps[c].x0 - ux1 > gap) gap = comps[c].x0 - ux1;
    if (ux0 - comps[c].x1 > gap) gap = ux0 - comps[c].x1;
    if (comps[c].y0 - uy1 > gap) gap = comps[c].y0 - uy1;
    if (uy0 - comps[c].y1 > gap) gap = uy0 - comps[c].y1;
    if (gap > 0.3 * side) continue;
    if (comps[c].x0 < ux0) ux0 = comps[c].x0;
    if (comps[c].y0 < uy0) uy0 = comps[c].y0;
    if (comps[c].x1 > ux1) ux1 = comps[c].x1;
    if (comps[c].y1 > uy1) uy1 = comps[c].y1;
    flood(mask, w, h, comps[c].seed, M_SEEN, M_KEEP, stack, &comps[c]);
    comps[c].kept = 1;
  }

  /* Ink level of what is kept. */
  uint32_t h32[256] = {0};
  uint64_t area = 0;
  for (size_t i = 0; i < n; i++)
    if (mask[i] == M_KEEP) h32[bin256(ink[i])]++, area++;
  double level = hist_quantile(h32, area, 0.5);
  double low = 3.0 * sigma > LOW_FRAC * level ? 3.0 * sigma : LOW_FRAC * level;
  if (low > kt) low = kt;

  /* Hysteresis: grow the kept components through pixels above `low`. */
  for (size_t i = 0; i < n; i++) mask[i] = mask[i] == M_KEEP || ink[i] > low ? M_LOW : M_PAPER;
  for (size_t c = 0; c < ncomps; c++) {
    comp grown;
    if (comps[c].kept && mask[comps[c].seed] == M_LOW)
      flood(mask, w, h, comps[c].seed, M_LOW, M_GROWN, stack, &grown);
  }

  /* 7. Gray levels. */
  double span = level > 1.0 ? level : 1.0;
  for (size_t i = 0; i < n; i++) {
    double v = mask[i] == M_GROWN ? ink[i] / span : 0.0;
    ink[i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
  }

  /* 8-9. Box, centre of mass, resampling; a second round after thickening
   * strokes that came out thinner than THIN_TOP output pixels. Measured on the
   * output, a stroke's width is its brightest value there (an area average),
   * which noise on the stroke edges does not bias. */
  float small[CNN_MNIST_BYTES];
  float top = 0;
  for (int pass = 0; pass < 2; pass++) {
    int bx0 = w, by0 = h, bx1 = 0, by1 = 0;
    double cx = 0, cy = 0, mass = 0;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float v = ink[(size_t)y * w + x];
        if (v <= 0) continue;
        if (x < bx0) bx0 = x;
        if (x + 1 > bx1) bx1 = x + 1;
        if (y < by0) by0 = y;
        if (y + 1 > by1) by1 = y + 1;
        mass += v, cx += v * (x + 0.5), cy += v * (y + 0.5);
      }
    if (mass <= 0) goto blank;
    cx /= mass, cy /= mass;
    double scale = BOX / (bx1 - bx0 > by1 - by0 ? bx1 - bx0 : by1 - by0);
    /* MNIST put the centre of mass on pixel (14, 14), whose centre is at
     * continuous coordinate 14.5 (pixel i spans [i, i+1)). */
    double centre = CNN_MNIST_SIDE / 2 + 0.5;
    double ox = centre - cx * scale, oy = centre - cy * scale;
    /* Keep the whole box in the frame (a long thin digit with its mass at one end). */
    if (ox < -bx0 * scale) ox = -bx0 * scale;
    if (ox > CNN_MNIST_SIDE - bx1 * scale) ox = CNN_MNIST_SIDE - bx1 * scale;
    if (oy < -by0 * scale) oy = -by0 * scale;
    if (oy > CNN_MNIST_SIDE - by1 * scale) oy = CNN_MNIST_SIDE - by1 * scale;
    if (resample_to(small, CNN_MNIST_SIDE, CNN_MNIST_SIDE, ink, w, h, scale, ox, oy) != CNN_OK)
      goto nomem;
    top = 0;
    for (int i = 0; i < CNN_MNIST_BYTES; i++)
      if (small[i] > top) top = small[i];
    if (top <= 0) goto blank;
    if (pass == 1 || top >= THIN_TOP || scale >= 1.0) break;
    /* Dilate by the radius that brings the stroke to TARGET_STROKE output px. */
    int r = (int)ceil((TARGET_STROKE - top) / scale / 2.0);
    dilate(ink, w, h, r, bg);
  }

  /* 10. Brightest = 255. */
  for (int i = 0; i < CNN_MNIST_BYTES; i++) {
    float v = small[i] / top * 255.0f + 0.5f;
    out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
  }
  rc = CNN_OK;
  goto done;

blank:
  rc = cnn_error(err, CNN_ERROR, "no ink found in image");
  goto done;
nomem:
  rc = cnn_nomem(err);
done:
  cnn_free(img);
  cnn_free(bg);
  cnn_free(ink);
  cnn_free(mask);
  cnn_free(stack);
  cnn_free(comps);
  cnn_free(h2k);
  return rc;
}
