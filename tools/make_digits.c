/*
 * make_digits.c - renders the sample "photos" in data/digits/ from the MNIST
 * test set: each a digit written on paper and photographed with a phone
 * (enlarged with smooth edges, dark ink on off-white paper, uneven lighting,
 * paper texture and sensor noise, off-centre, slightly rotated, JPEG), plus a
 * PNG with an alpha channel and a chalk-on-blackboard (light on dark) photo.
 *
 *   make_digits <t10k-images-idx3-ubyte.gz> <t10k-labels-idx1-ubyte.gz> <outdir>
 *
 * Which test images: for each class, among the test images with a typical
 * amount of ink (within 10% of the class median), the one closest (highest
 * correlation) to the class mean: a clean, typical example. The two extra
 * pictures use the second closest. One fixed seed, so the
 * output is the same on every run. Prints the files and indices it wrote.
 *
 * A developer tool, not installed: it reads the gz files with zlib directly and
 * writes through the engine's encoders (cnn_jpg_encode, cnn_png_encode).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base.h"
#include "image.h"

#define SIDE 28
#define PIX 784
#define MAX_IMAGES 10000

/* ---- reading MNIST ------------------------------------------------------------ */

static int read_gz(const char *path, uint8_t *buf, size_t header, size_t need) {
  gzFile f = gzopen(path, "rb");
  if (!f) {
    fprintf(stderr, "make_digits: cannot open %s\n", path);
    return -1;
  }
  uint8_t h[16];
  int ok =
      gzread(f, h, (unsigned)header) == (int)header && gzread(f, buf, (unsigned)need) == (int)need;
  gzclose(f);
  if (!ok || h[2] != 8) {
    fprintf(stderr, "make_digits: %s is not the MNIST test file it should be\n", path);
    return -1;
  }
  return 0;
}

/* ---- randomness ------------------------------------------------------------------ */

static uint64_t rng = 0x5EED0F0D16175ull; /* fixed seed: reproducible files */

static double urand(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static double nrand(void) {
  double u = urand(), v = urand();
  return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* Lattice value noise in [0, 1): a hash per grid point, smooth in between. */
static double lattice(int x, int y, uint32_t seed) {
  uint32_t h = (uint32_t)x * 374761393u + (uint32_t)y * 668265263u + seed * 2246822519u;
  h = (h ^ (h >> 13)) * 1274126177u;
  return (double)((h ^ (h >> 16)) & 0xFFFFFF) / 16777216.0;
}

static double value_noise(double x, double y, double cell, uint32_t seed) {
  x /= cell, y /= cell;
  int ix = (int)floor(x), iy = (int)floor(y);
  double fx = x - ix, fy = y - iy;
  fx = fx * fx * (3 - 2 * fx), fy = fy * fy * (3 - 2 * fy);
  double a = lattice(ix, iy, seed), b = lattice(ix + 1, iy, seed);
  double c = lattice(ix, iy + 1, seed), d = lattice(ix + 1, iy + 1, seed);
  return (a + (b - a) * fx) + ((c + (d - c) * fx) - (a + (b - a) * fx)) * fy;
}

/* ---- drawing --------------------------------------------------------------------- */

/* Catmull-Rom weights, for a smooth enlargement without blocky steps. */
static void cubic_weights(double t, double w[4]) {
  double t2 = t * t, t3 = t2 * t;
  w[0] = -0.5 * t3 + t2 - 0.5 * t;
  w[1] = 1.5 * t3 - 2.5 * t2 + 1;
  w[2] = -1.5 * t3 + 2 * t2 + 0.5 * t;
  w[3] = 0.5 * t3 - 0.5 * t2;
}

/* The digit (0..1) at continuous MNIST coordinates (u, v); 0 outside. */
static double digit_at(const uint8_t *d, double u, double v) {
  u -= 0.5, v -= 0.5;
  int x0 = (int)floor(u), y0 = (int)floor(v);
  double wx[4], wy[4], s = 0;
  cubic_weights(u - x0, wx);
  cubic_weights(v - y0, wy);
  for (int j = 0; j < 4; j++)
    for (int i = 0; i < 4; i++) {
      int x = x0 - 1 + i, y = y0 - 1 + j;
      if (x >= 0 && y >= 0 && x < SIDE && y < SIDE) s += wx[i] * wy[j] * d[y * SIDE + x];
    }
  s /= 255.0;
  return s < 0 ? 0 : s > 1 ? 1 : s;
}

static double smoothstep(double a, double b, double x) {
  double t = (x - a) / (b - a);
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return t * t * (3 - 2 * t);
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static uint8_t clamp8(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v)); }

typedef enum { PAPER_JPEG, CHALK_JPEG, ALPHA_PNG } style;

typedef struct scene {
  int w, h;
  double zoom;   /* output px per MNIST px */
  double cx, cy; /* where the digit's centre (14, 14) lands */
  double angle;  /* rotation, radians */
  style kind;
  uint32_t seed; /* for the texture */
} scene;

/* Ink coverage 0..1 at output pixel (x, y): the enlarged digit with a pen's
 * crisp edge (MNIST's gray anti-aliasing becomes a smooth stroke boundary). */
static double ink_at(const uint8_t *d, const scene *s, int x, int y) {
  double dx = x + 0.5 - s->cx, dy = y + 0.5 - s->cy;
  double c = cos(s->angle), sn = sin(s->angle);
  double u = (c * dx + sn * dy) / s->zoom + SIDE / 2.0;
  double v = (-sn * dx + c * dy) / s->zoom + SIDE / 2.0;
  return smoothstep(0.30, 0.62, digit_at(d, u, v));
}

/* Renders a scene: RGB (or RGBA for ALPHA_PNG) into px. */
static void render(uint8_t *px, const uint8_t *d, const scene *s) {
  /* Light falls off from one corner, plus a soft shadow band (a hand or phone). */
  double lx = urand(), ly = urand() * 0.5;
  double fall = 0.18 + 0.12 * urand();
  double shadow_pos = 0.55 + 0.35 * urand(), shadow_depth = 0.10 + 0.08 * urand();
  for (int y = 0; y < s->h; y++)
    for (int x = 0; x < s->w; x++) {
      size_t i = (size_t)y * (size_t)s->w + (size_t)x;
      double ink = ink_at(d, s, x, y);
      double fx = (double)x / s->w, fy = (double)y / s->h;
      double dist = hypot(fx - lx, fy - ly) / 1.2;
      double light = 1.0 - fall * dist -
                     shadow_depth * smoothstep(shadow_pos, shadow_pos + 0.25, fx * 0.4 + fy * 0.6);
      double grain = value_noise(x, y, 3, s->seed) - 0.5;
      double fibre = value_noise(x, y, 24, s->seed + 1) - 0.5;
      if (s->kind == ALPHA_PNG) {
        /* Ink only, on transparent: the colour of a blue ballpoint. */
        double a = ink * (0.9 + 0.2 * grain);
        px[4 * i] = 28, px[4 * i + 1] = 42, px[4 * i + 2] = 110;
        px[4 * i + 3] = clamp8(255 * (a > 1 ? 1 : a));
        continue;
      }
      double paper[3], inkc[3];
      if (s->kind == PAPER_JPEG) {
        /* Off-white paper, blue-black ink that lets a little paper through. */
        double base[3] = {238, 234, 224};
        for (int k = 0; k < 3; k++) paper[k] = base[k] + 6 * fibre + 5 * grain;
        inkc[0] = 32, inkc[1] = 36, inkc[2] = 62;
        ink *= 0.92 + 0.08 * (grain + 0.5);
      } else {
        /* A green-black board with chalk: grainy, never fully opaque. */
        double base[3] = {44, 58, 50};
        for (int k = 0; k < 3; k++) paper[k] = base[k] + 10 * fibre + 4 * grain;
        inkc[0] = 228, inkc[1] = 230, inkc[2] = 220;
        ink *= 0.70 + 0.45 * (value_noise(x, y, 2, s->seed + 2) - 0.2);
        ink = ink < 0 ? 0 : ink > 1 ? 1 : ink;
      }
      for (int k = 0; k < 3; k++) {
        double v = (paper[k] * (1 - ink) + inkc[k] * ink) * light + 2.5 * nrand();
        px[3 * i + (size_t)k] = clamp8(v);
      }
    }
}

static int write_file(const char *dir, const char *name, const uint8_t *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "make_digits: cannot write %s\n", path);
    return -1;
  }
  return 0;
}

/* Renders and writes one picture; returns 0 or -1. */
static int make(const char *dir, const char *name, const uint8_t *digit, style kind, int w, int h) {
  scene s = {w, h, 0, 0, 0, 0, kind, (uint32_t)(urand() * 4294967295.0)};
  s.zoom = (0.50 + 0.12 * urand()) * (h < w ? h : w) / 20.0; /* digit ~50-62% of the short side */
  double room_x = w / 2.0 - 11 * s.zoom, room_y = h / 2.0 - 11 * s.zoom;
  s.cx = w / 2.0 + (urand() * 2 - 1) * 0.8 * (room_x > 0 ? room_x : 0);
  s.cy = h / 2.0 + (urand() * 2 - 1) * 0.8 * (room_y > 0 ? room_y : 0);
  s.angle = (urand() * 2 - 1) * 0.07; /* within about 4 degrees */
  int ch = kind == ALPHA_PNG ? 4 : 3;
  uint8_t *px = malloc((size_t)w * (size_t)h * (size_t)ch), *enc = NULL;
  size_t len = 0;
  char err[CNN_ERRMAX];
  if (!px) return -1;
  render(px, digit, &s);
  int rc = kind == ALPHA_PNG ? cnn_png_encode(&enc, &len, px, w, h, ch, err)
                             : cnn_jpg_encode(&enc, &len, px, w, h, ch, 85, err);
  free(px);
  if (rc != CNN_OK) {
    fprintf(stderr, "make_digits: %s: %s\n", name, err);
    return -1;
  }
  rc = write_file(dir, name, enc, len);
  cnn_free(enc);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(
        stderr,
        "usage: make_digits <t10k-images-idx3-ubyte.gz> <t10k-labels-idx1-ubyte.gz> <outdir>\n");
    return 2;
  }
  static uint8_t images[MAX_IMAGES][PIX], labels[MAX_IMAGES];
  if (read_gz(argv[1], &images[0][0], 16, sizeof images) ||
      read_gz(argv[2], labels, 8, sizeof labels))
    return 1;

  /* Class means and the median amount of ink per class; then, among the images
   * whose amount of ink is within 10% of their class's median (a typical pen,
   * neither bold nor faint), the two most correlated with the class mean. */
  static double mean[10][PIX];
  static int ink[MAX_IMAGES], by_class[10][MAX_IMAGES];
  int count[10] = {0}, median[10], best[10][2];
  double score[10][2];
  for (int i = 0; i < MAX_IMAGES; i++) {
    int c = labels[i];
    ink[i] = 0;
    for (int p = 0; p < PIX; p++) mean[c][p] += images[i][p], ink[i] += images[i][p] >= 128;
    by_class[c][count[c]++] = ink[i];
  }
  for (int c = 0; c < 10; c++) {
    for (int p = 0; p < PIX; p++) mean[c][p] /= count[c];
    qsort(by_class[c], (size_t)count[c], sizeof(int), cmp_int);
    median[c] = by_class[c][count[c] / 2];
    best[c][0] = best[c][1] = -1;
    score[c][0] = score[c][1] = -2;
  }
  for (int i = 0; i < MAX_IMAGES; i++) {
    int c = labels[i];
    if (abs(ink[i] - median[c]) * 10 > median[c]) continue;
    double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
    for (int p = 0; p < PIX; p++) {
      double a = images[i][p], b = mean[c][p];
      sa += a, sb += b, sab += a * b, saa += a * a, sbb += b * b;
    }
    double cov = sab - sa * sb / PIX, va = saa - sa * sa / PIX, vb = sbb - sb * sb / PIX;
    double r = cov / sqrt(va * vb);
    if (r > score[c][0]) {
      score[c][1] = score[c][0], best[c][1] = best[c][0];
      score[c][0] = r, best[c][0] = i;
    } else if (r > score[c][1]) {
      score[c][1] = r, best[c][1] = i;
    }
  }

  int fail = 0;
  for (int c = 0; c < 10; c++) {
    char name[32];
    snprintf(name, sizeof name, "%d.jpg", c);
    int portrait = c % 2 == 0;
    fail |= make(argv[3], name, images[best[c][0]], PAPER_JPEG, portrait ? 480 : 600,
                 portrait ? 600 : 480);
    printf("%-12s digit %d  MNIST test index %4d  (correlation with the class mean %.3f)\n", name,
           c, best[c][0], score[c][0]);
  }
  fail |= make(argv[3], "4_alpha.png", images[best[4][1]], ALPHA_PNG, 360, 360);
  printf("%-12s digit 4  MNIST test index %4d  (correlation with the class mean %.3f)\n",
         "4_alpha.png", best[4][1], score[4][1]);
  fail |= make(argv[3], "5_chalk.jpg", images[best[5][1]], CHALK_JPEG, 560, 420);
  printf("%-12s digit 5  MNIST test index %4d  (correlation with the class mean %.3f)\n",
         "5_chalk.jpg", best[5][1], score[5][1]);
  return fail ? 1 : 0;
}
