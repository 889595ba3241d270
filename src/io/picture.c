/*
 * picture.c - pictures out: a PNG of one grayscale image, a PNG grid of labelled
 * 28x28 images (the notebook's 10x10 figure), and an SVG line chart of a
 * training history (the notebook's accuracy plot).
 *
 * Conventions: PNGs are 8-bit grayscale, encoded by stb_image_write through
 * cnn_png_encode (stb.c). Sizes are computed in 64-bit and capped
 * (CNN_PICTURE_MAX_PIXELS, CNN_GRID_MAX_IMAGES) before anything is allocated.
 * Numbers in the SVG are formatted with integer arithmetic, never printf's %f,
 * so a host program's LC_NUMERIC (a decimal comma) cannot break the XML.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base.h"
#include "image.h"

/* ---- one image ------------------------------------------------------------- */

int cnn_png_gray(uint8_t **out, size_t *outlen, const uint8_t *px, int w, int h, int scale,
                 char *err) {
  uint8_t *big = NULL; /* owned: the enlarged pixels */
  int rc;
  *out = NULL;
  *outlen = 0;
  if (!px || w <= 0 || h <= 0)
    return cnn_error(err, CNN_ERROR, "image must have a positive size, got %dx%d", w, h);
  if (scale < 1 || scale > CNN_PNG_MAX_SCALE)
    return cnn_error(err, CNN_ERROR, "scale must be 1..%d, got %d", CNN_PNG_MAX_SCALE, scale);
  uint64_t bw = (uint64_t)w * (uint64_t)scale, bh = (uint64_t)h * (uint64_t)scale;
  /* Each side first, so that the product cannot overflow. */
  if (bw > CNN_PICTURE_MAX_PIXELS || bh > CNN_PICTURE_MAX_PIXELS ||
      bw * bh > CNN_PICTURE_MAX_PIXELS)
    return cnn_error(err, CNN_ERROR,
                     "picture of %llux%llu pixels is too large; the limit is %u pixels",
                     (unsigned long long)bw, (unsigned long long)bh, CNN_PICTURE_MAX_PIXELS);
  big = cnn_malloc((size_t)(bw * bh));
  if (!big) return cnn_nomem(err);
  /* Nearest neighbour: each pixel becomes a scale x scale square, crisp edges. */
  for (uint64_t y = 0; y < bh; y++) {
    const uint8_t *src = px + (size_t)(y / (uint64_t)scale) * (size_t)w;
    uint8_t *dst = big + (size_t)(y * bw);
    for (uint64_t x = 0; x < bw; x++) dst[x] = src[x / (uint64_t)scale];
  }
  rc = cnn_png_encode(out, outlen, big, (int)bw, (int)bh, 1, err);
  cnn_free(big);
  return rc;
}

/* ---- the grid ----------------------------------------------------------------- */

/* A 5x7 bitmap font for the label characters: each row is 5 bits, MSB left. */
static const uint8_t font5x7[11][7] = {
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, /* 0 */
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, /* 2 */
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, /* 4 */
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, /* 6 */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, /* 8 */
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, /* 9 */
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}, /* - */
};

/* Cell geometry, in output pixels. */
enum {
  GRID_ZOOM = 3,                         /* each MNIST pixel is 3x3 */
  GRID_IMG = CNN_MNIST_SIDE * GRID_ZOOM, /* 84 */
  GRID_PAD = 8,                          /* white space around a cell's content */
  GRID_FONT = 2,                         /* each font pixel is 2x2 */
  GRID_GLYPH_W = 5 * GRID_FONT,          /* 10 */
  GRID_GLYPH_H = 7 * GRID_FONT,          /* 14 */
  GRID_GAP = 5,                          /* between image and label */
  GRID_CELL_W = GRID_IMG + 2 * GRID_PAD, /* 100 */
  GRID_CELL_H = GRID_PAD + GRID_IMG + GRID_GAP + GRID_GLYPH_H + GRID_PAD, /* 119 */
  GRID_FRAME = 0x40, /* the axes' frame, dark gray */
};

/* Draws the decimal text of label centred at (cx, top) on a w-wide canvas. */
static void draw_label(uint8_t *canvas, int w, int cx, int top, int label) {
  char text[16];
  int len = snprintf(text, sizeof text, "%d", label);
  int adv = GRID_GLYPH_W + GRID_FONT; /* one font pixel between glyphs */
  int x = cx - (len * adv - GRID_FONT) / 2;
  for (int i = 0; i < len; i++, x += adv) {
    int g = text[i] == '-' ? 10 : text[i] - '0';
    for (int r = 0; r < 7; r++)
      for (int c = 0; c < 5; c++) {
        if (!(font5x7[g][r] & (0x10 >> c))) continue;
        for (int dy = 0; dy < GRID_FONT; dy++)
          for (int dx = 0; dx < GRID_FONT; dx++) {
            int px = x + c * GRID_FONT + dx, py = top + r * GRID_FONT + dy;
            if (px >= 0 && px < w) canvas[(size_t)py * (size_t)w + (size_t)px] = 0;
          }
      }
  }
}

int cnn_png_grid(uint8_t **out, size_t *outlen, const uint8_t *images, const int *labels, size_t n,
                 int columns, char *err) {
  uint8_t *canvas = NULL; /* owned: the whole picture */
  *out = NULL;
  *outlen = 0;
  if (!images || n == 0) return cnn_error(err, CNN_ERROR, "no images to draw");
  if (n > CNN_GRID_MAX_IMAGES)
    return cnn_error(err, CNN_ERROR, "%zu images; the limit is %u", n, CNN_GRID_MAX_IMAGES);
  if (columns < 1 || (unsigned)columns > CNN_GRID_MAX_IMAGES)
    return cnn_error(err, CNN_ERROR, "columns must be 1..%u, got %d", CNN_GRID_MAX_IMAGES, columns);
  /* Fewer images than columns: no empty cells on the right. */
  uint64_t cols = (uint64_t)columns < n ? (uint64_t)columns : n;
  uint64_t rows = (n + cols - 1) / cols;
  uint64_t w = cols * GRID_CELL_W, h = rows * GRID_CELL_H;
  if (w * h > CNN_PICTURE_MAX_PIXELS)
    return cnn_error(err, CNN_ERROR,
                     "a grid of %zu images in %llu columns would be %llux%llu pixels; the limit "
                     "is %u pixels",
                     n, (unsigned long long)cols, (unsigned long long)w, (unsigned long long)h,
                     CNN_PICTURE_MAX_PIXELS);
  canvas = cnn_malloc((size_t)(w * h));
  if (!canvas) return cnn_nomem(err);
  memset(canvas, 255, (size_t)(w * h));
  for (size_t k = 0; k < n; k++) {
    const uint8_t *img = images + k * CNN_MNIST_BYTES;
    int x0 = (int)((k % cols) * GRID_CELL_W) + GRID_PAD;
    int y0 = (int)((k / cols) * GRID_CELL_H) + GRID_PAD;
    /* matplotlib's "binary" colormap: 0 is white paper, 255 black ink. */
    for (int y = 0; y < GRID_IMG; y++) {
      uint8_t *row = canvas + (size_t)(y0 + y) * (size_t)w + (size_t)x0;
      const uint8_t *src = img + (y / GRID_ZOOM) * CNN_MNIST_SIDE;
      for (int x = 0; x < GRID_IMG; x++) row[x] = (uint8_t)(255 - src[x / GRID_ZOOM]);
    }
    /* A one-pixel frame just outside the image, like the axes' spines. */
    for (int i = -1; i <= GRID_IMG; i++) {
      canvas[(size_t)(y0 - 1) * (size_t)w + (size_t)(x0 + i)] = GRID_FRAME;
      canvas[(size_t)(y0 + GRID_IMG) * (size_t)w + (size_t)(x0 + i)] = GRID_FRAME;
      canvas[(size_t)(y0 + i) * (size_t)w + (size_t)(x0 - 1)] = GRID_FRAME;
      canvas[(size_t)(y0 + i) * (size_t)w + (size_t)(x0 + GRID_IMG)] = GRID_FRAME;
    }
    if (labels && labels[k] != -1)
      draw_label(canvas, (int)w, x0 + GRID_IMG / 2, y0 + GRID_IMG + GRID_GAP, labels[k]);
  }
  int rc = cnn_png_encode(out, outlen, canvas, (int)w, (int)h, 1, err);
  cnn_free(canvas);
  return rc;
}

/* ---- the SVG chart ------------------------------------------------------------ */

typedef struct sbuf {
  char *s; /* owned, NUL-terminated */
  size_t len, cap;
  int nomem;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_add(sbuf *b, const char *fmt, ...) {
  if (b->nomem) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->nomem = 1;
      return;
    }
    if (b->s && b->len + (size_t)k < b->cap) {
      b->len += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap <= b->len + (size_t)k) cap *= 2;
    char *ns = cnn_realloc(b->s, cap);
    if (!ns) {
      b->nomem = 1;
      return;
    }
    b->s = ns;
    b->cap = cap;
  }
}

/* Text content or attribute value with XML's five special characters escaped;
 * control characters other than tab and newline (not allowed in XML 1.0)
 * become '?'. */
static void sb_escape(sbuf *b, const char *t) {
  for (; *t; t++) {
    unsigned char c = (unsigned char)*t;
    switch (c) {
    case '&':
      sb_add(b, "&amp;");
      break;
    case '<':
      sb_add(b, "&lt;");
      break;
    case '>':
      sb_add(b, "&gt;");
      break;
    case '"':
      sb_add(b, "&quot;");
      break;
    case '\'':
      sb_add(b, "&apos;");
      break;
    default:
      sb_add(b, "%c", c < 0x20 && c != '\t' && c != '\n' ? '?' : (char)c);
    }
  }
}

/* v with `dec` decimals (0..6) into buf, without printf's locale-dependent %f. */
static const char *fmt_num(char *buf, size_t size, double v, int dec) {
  static const long long pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
  long long p = pow10[dec], q = llround(fabs(v) * (double)p);
  const char *sign = v < 0 && q != 0 ? "-" : "";
  if (dec == 0)
    snprintf(buf, size, "%s%lld", sign, q);
  else
    snprintf(buf, size, "%s%lld.%0*lld", sign, q / p, dec, q % p);
  return buf;
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving at most max_ticks
 * intervals over span; *dec gets the decimals its labels need. */
static double nice_step(double span, int max_ticks, int *dec) {
  double raw = span / max_ticks, mag = pow(10.0, floor(log10(raw)));
  double step = mag;
  if (raw > 5 * mag)
    step = 10 * mag;
  else if (raw > 2 * mag)
    step = 5 * mag;
  else if (raw > mag)
    step = 2 * mag;
  int d = (int)ceil(-log10(step) - 1e-9);
  *dec = d < 0 ? 0 : d > 6 ? 6 : d;
  return step;
}

/* Figure geometry: matplotlib's default figure (640x480 at 100 dpi) and
 * subplot margins (left .125, right .9, bottom .11, top .88). */
#define FIG_W 640.0
#define FIG_H 480.0
#define AX_L 80.0
#define AX_R 576.0
#define AX_T 57.6
#define AX_B 427.2
#define MAX_EPOCHS 100000u

static const char *const series_name[2] = {"accuracy", "val_accuracy"};
static const char *const series_color[2] = {"#1f77b4", "#ff7f0e"}; /* tab:blue, tab:orange */

int cnn_svg_history(char **out, const double *accuracy, const double *val_accuracy, size_t epochs,
                    const char *title, char *err) {
  sbuf b = {0};
  char n1[32], n2[32], n3[32];
  *out = NULL;
  if (epochs > MAX_EPOCHS)
    return cnn_error(err, CNN_ERROR, "%zu epochs; the limit is %u", epochs, MAX_EPOCHS);
  if (epochs > 0 && (!accuracy || !val_accuracy))
    return cnn_error(err, CNN_ERROR, "no accuracy values");
  const double *series[2] = {accuracy, val_accuracy};

  /* Data range: epochs 1..E on x; y from 0.5 to 1 unless a value is lower. */
  double ymin = 0.5, ymax = 1.0;
  for (int s = 0; s < 2; s++)
    for (size_t i = 0; i < epochs; i++) {
      double v = series[s][i];
      if (isfinite(v) && v < ymin) ymin = v;
    }
  int ydec, xdec;
  double ystep = nice_step(ymax - ymin, 6, &ydec);
  ymin = floor(ymin / ystep + 1e-9) * ystep;
  double xlo = 1, xhi = epochs > 1 ? (double)epochs : 1;
  double xstep = nice_step(xhi - xlo > 0 ? xhi - xlo : 1, 8, &xdec);
  if (xstep < 1) xstep = 1, xdec = 0;
  /* matplotlib's 5% margins on x. */
  double xmargin = epochs > 1 ? 0.05 * (xhi - xlo) : 0.5;
  double x0 = xlo - xmargin, x1 = xhi + xmargin;
#define PX(x) (AX_L + ((x)-x0) / (x1 - x0) * (AX_R - AX_L))
#define PY(y) (AX_B - ((y)-ymin) / (ymax - ymin) * (AX_B - AX_T))

  sb_add(&b,
         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"480\" "
         "viewBox=\"0 0 640 480\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n");
  sb_add(&b, "<rect width=\"640\" height=\"480\" fill=\"white\"/>\n");
  sb_add(&b,
         "<text class=\"title\" x=\"328\" y=\"48\" font-size=\"14\" "
         "text-anchor=\"middle\">");
  sb_escape(&b, title && title[0] ? title : "Model accuracy");
  sb_add(&b, "</text>\n");

  /* Axes: frame, ticks outside, tick labels, axis labels. */
  sb_add(&b, "<g class=\"axes\" stroke=\"black\" stroke-width=\"0.8\">\n");
  sb_add(&b, "<rect x=\"80\" y=\"57.6\" width=\"496\" height=\"369.6\" fill=\"none\"/>\n");
  /* Ticks by index, not by accumulating the step (no drift). */
  long xt0 = (long)ceil(x0 / xstep - 1e-9), xt1 = (long)floor(x1 / xstep + 1e-9);
  long yt1 = (long)floor((ymax - ymin) / ystep + 1e-9);
  for (long i = xt0; i <= xt1; i++) {
    double px = PX(i * xstep);
    sb_add(&b, "<line class=\"xtick\" x1=\"%s\" y1=\"427.2\" x2=\"%s\" y2=\"430.7\"/>\n",
           fmt_num(n1, sizeof n1, px, 2), fmt_num(n2, sizeof n2, px, 2));
  }
  for (long i = 0; i <= yt1; i++) {
    double py = PY(ymin + i * ystep);
    sb_add(&b, "<line class=\"ytick\" x1=\"76.5\" y1=\"%s\" x2=\"80\" y2=\"%s\"/>\n",
           fmt_num(n1, sizeof n1, py, 2), fmt_num(n2, sizeof n2, py, 2));
  }
  sb_add(&b, "</g>\n<g class=\"ticklabels\" font-size=\"10\">\n");
  for (long i = xt0; i <= xt1; i++)
    sb_add(&b, "<text x=\"%s\" y=\"444\" text-anchor=\"middle\">%s</text>\n",
           fmt_num(n1, sizeof n1, PX(i * xstep), 2), fmt_num(n2, sizeof n2, i * xstep, xdec));
  for (long i = 0; i <= yt1; i++)
    sb_add(&b, "<text x=\"73\" y=\"%s\" text-anchor=\"end\">%s</text>\n",
           fmt_num(n1, sizeof n1, PY(ymin + i * ystep) + 3.5, 2),
           fmt_num(n2, sizeof n2, ymin + i * ystep, ydec));
  sb_add(&b, "</g>\n");
  sb_add(&b,
         "<text class=\"xlabel\" x=\"328\" y=\"464\" font-size=\"12\" "
         "text-anchor=\"middle\">Epoch</text>\n");
  sb_add(&b,
         "<text class=\"ylabel\" x=\"0\" y=\"0\" font-size=\"12\" text-anchor=\"middle\" "
         "transform=\"translate(30 242.4) rotate(-90)\">Accuracy</text>\n");

  /* Series: a line through consecutive points (broken at missing ones) and a
   * circle per point, clipped to the axes like matplotlib. */
  sb_add(&b,
         "<clipPath id=\"plot\"><rect x=\"80\" y=\"57.6\" width=\"496\" "
         "height=\"369.6\"/></clipPath>\n");
  for (int s = 0; s < 2; s++) {
    sb_add(&b,
           "<g class=\"series\" id=\"%s\" stroke=\"%s\" fill=\"%s\" clip-path=\"url(#plot)\">\n",
           series_name[s], series_color[s], series_color[s]);
    size_t i = 0;
    while (i < epochs) {
      while (i < epochs && !isfinite(series[s][i])) i++;
      size_t start = i;
      while (i < epochs && isfinite(series[s][i])) i++;
      if (i - start >= 2) {
        sb_add(&b, "<polyline fill=\"none\" stroke-width=\"1.5\" points=\"");
        for (size_t k = start; k < i; k++)
          sb_add(&b, "%s%s,%s", k > start ? " " : "", fmt_num(n1, sizeof n1, PX(k + 1.0), 2),
                 fmt_num(n2, sizeof n2, PY(series[s][k]), 2));
        sb_add(&b, "\"/>\n");
      }
    }
    for (size_t k = 0; k < epochs; k++) {
      if (!isfinite(series[s][k])) continue;
      sb_add(&b,
             "<circle class=\"point\" cx=\"%s\" cy=\"%s\" r=\"3\"><title>epoch %zu: "
             "%s</title></circle>\n",
             fmt_num(n1, sizeof n1, PX(k + 1.0), 2), fmt_num(n2, sizeof n2, PY(series[s][k]), 2),
             k + 1, fmt_num(n3, sizeof n3, series[s][k], 4));
    }
    sb_add(&b, "</g>\n");
  }

  /* Legend, lower right (matplotlib's loc='lower right'). */
  sb_add(&b,
         "<g class=\"legend\" font-size=\"10\">\n"
         "<rect x=\"466\" y=\"379.2\" width=\"103\" height=\"41\" rx=\"2\" fill=\"white\" "
         "fill-opacity=\"0.8\" stroke=\"#cccccc\"/>\n");
  for (int s = 0; s < 2; s++) {
    double y = 392.7 + 16 * s;
    sb_add(&b,
           "<line x1=\"472\" y1=\"%s\" x2=\"492\" y2=\"%s\" stroke=\"%s\" "
           "stroke-width=\"1.5\"/>\n",
           fmt_num(n1, sizeof n1, y, 1), fmt_num(n2, sizeof n2, y, 1), series_color[s]);
    sb_add(&b, "<circle class=\"legend-marker\" cx=\"482\" cy=\"%s\" r=\"3\" fill=\"%s\"/>\n",
           fmt_num(n1, sizeof n1, y, 1), series_color[s]);
    sb_add(&b, "<text x=\"500\" y=\"%s\">%s</text>\n", fmt_num(n1, sizeof n1, y + 3.5, 1),
           series_name[s]);
  }
  sb_add(&b, "</g>\n</svg>\n");
#undef PX
#undef PY
  if (b.nomem) {
    cnn_free(b.s);
    return cnn_nomem(err);
  }
  *out = b.s;
  return CNN_OK;
}

/* ---- the comparison chart ------------------------------------------------------ */

/* matplotlib's tab10, then black and tab:blue's light twin; the last two are
 * also dashed so that no two lines look alike. */
static const char *const compare_color[CNN_SVG_MAX_SERIES] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"};
#define COMPARE_DASHED 10
#define LEGEND_NAME_BYTES 40 /* longer names are cut (at a character boundary) */
#define MARKER_MAX_EPOCHS 100
#define LEG_X 592.0

static int drawable(double v, int log_y) { return isfinite(v) && (!log_y || v > 0); }

/* v with about 4 significant digits, scientific below 0.001 (losses). */
static const char *fmt_sig(char *buf, size_t size, double v) {
  double a = fabs(v);
  if (a != 0 && a < 1e-3) {
    int e = (int)floor(log10(a));
    char m[24];
    fmt_num(m, sizeof m, v / pow(10.0, e), 3);
    snprintf(buf, size, "%se%d", m, e);
    return buf;
  }
  int d = a < 1 ? 4 : 3 - (int)floor(log10(a));
  return fmt_num(buf, size, v, d < 0 ? 0 : d > 6 ? 6 : d);
}

/* Label of m * 10^k on a log axis: 0.01, 0.5, 20, 1e-7. */
static const char *fmt_pow10(char *buf, size_t size, int m, int k) {
  if (k >= -6 && k <= 6) return fmt_num(buf, size, m * pow(10.0, k), k < 0 ? -k : 0);
  snprintf(buf, size, "%de%d", m, k);
  return buf;
}

/* name cut to LEGEND_NAME_BYTES (with "..."); returns its width in characters. */
static size_t legend_name(char *buf, size_t size, const char *name) {
  size_t len = strlen(name), chars = 0;
  if (len > LEGEND_NAME_BYTES) {
    len = LEGEND_NAME_BYTES - 3;
    while (len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80) len--;
  }
  snprintf(buf, size, "%.*s%s", (int)len, name, len < strlen(name) ? "..." : "");
  for (const char *p = buf; *p; p++) chars += ((unsigned char)*p & 0xC0) != 0x80;
  return chars;
}

int cnn_svg_compare(char **out, const cnn_svg_series *series, size_t nseries, const char *title,
                    const char *ylabel, int log_y, char *err) {
  sbuf b = {0};
  char n1[32], n2[32], n3[32], n4[32], clip[LEGEND_NAME_BYTES + 8];
  *out = NULL;
  if (!series || nseries < 1 || nseries > CNN_SVG_MAX_SERIES)
    return cnn_error(err, CNN_ERROR, "%zu series; expected 1 to %d", nseries, CNN_SVG_MAX_SERIES);
  size_t epochs = 0, widest = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (size_t s = 0; s < nseries; s++) {
    if (series[s].n > MAX_EPOCHS)
      return cnn_error(err, CNN_ERROR, "%zu epochs; the limit is %u", series[s].n, MAX_EPOCHS);
    if (series[s].n > 0 && !series[s].y) return cnn_error(err, CNN_ERROR, "series without values");
    if (series[s].n > epochs) epochs = series[s].n;
    for (size_t i = 0; i < series[s].n; i++) {
      double v = series[s].y[i];
      if (!drawable(v, log_y)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    size_t w = legend_name(clip, sizeof clip, series[s].name ? series[s].name : "");
    if (w > widest) widest = w;
  }
  if (!(lo <= hi)) return cnn_error(err, CNN_ERROR, "no values to draw");

  /* y in axis units (the value, or its log10) from y0 to y1. */
  double y0, y1, ystep = 1;
  int ydec = 0, xdec;
  if (log_y) {
    /* From the mark m x 10^k (m = 1..9) at or below the lowest value to the
     * one at or above the highest, so a narrow range fills the axes. */
    double kl = floor(log10(lo) + 1e-9), kh = floor(log10(hi) + 1e-9);
    double ml = floor(lo / pow(10.0, kl) + 1e-9), mh = ceil(hi / pow(10.0, kh) - 1e-9);
    if (ml < 1) ml = 1;
    if (mh <= ml && kh == kl) mh = ml + 1;
    y0 = kl + log10(ml);
    y1 = kh + log10(mh);
  } else {
    if (hi - lo <= 1e-12 * fmax(1.0, fabs(hi))) {
      double pad = hi != 0 ? fabs(hi) * 0.1 : 0.5;
      lo -= pad, hi += pad;
    }
    ystep = nice_step(hi - lo, 6, &ydec);
    y0 = floor(lo / ystep + 1e-9) * ystep;
    y1 = ceil(hi / ystep - 1e-9) * ystep;
  }
  double xlo = 1, xhi = epochs > 1 ? (double)epochs : 1;
  double xstep = nice_step(xhi - xlo > 0 ? xhi - xlo : 1, 8, &xdec);
  if (xstep < 1) xstep = 1, xdec = 0;
  double xmargin = epochs > 1 ? 0.05 * (xhi - xlo) : 0.5;
  double x0 = xlo - xmargin, x1 = xhi + xmargin;
  double legend_w = 40 + 6.5 * (double)widest, width = ceil(LEG_X + legend_w + 8);
#define PX(x) (AX_L + ((x)-x0) / (x1 - x0) * (AX_R - AX_L))
#define PY(t) (AX_B - ((t)-y0) / (y1 - y0) * (AX_B - AX_T))
#define PV(v) PY(log_y ? log10(v) : (v))

  sb_add(&b,
         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%s\" height=\"480\" "
         "viewBox=\"0 0 %s 480\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n",
         fmt_num(n1, sizeof n1, width, 0), fmt_num(n2, sizeof n2, width, 0));
  sb_add(&b, "<rect width=\"%s\" height=\"480\" fill=\"white\"/>\n",
         fmt_num(n1, sizeof n1, width, 0));
  sb_add(&b, "<text class=\"title\" x=\"328\" y=\"48\" font-size=\"14\" text-anchor=\"middle\">");
  sb_escape(&b, title && title[0] ? title : "Comparison");
  sb_add(&b, "</text>\n");

  sb_add(&b, "<g class=\"axes\" stroke=\"black\" stroke-width=\"0.8\">\n");
  sb_add(&b, "<rect x=\"80\" y=\"57.6\" width=\"496\" height=\"369.6\" fill=\"none\"/>\n");
  long xt0 = (long)ceil(x0 / xstep - 1e-9), xt1 = (long)floor(x1 / xstep + 1e-9);
  for (long i = xt0; i <= xt1; i++) {
    double px = PX(i * xstep);
    sb_add(&b, "<line class=\"xtick\" x1=\"%s\" y1=\"427.2\" x2=\"%s\" y2=\"430.7\"/>\n",
           fmt_num(n1, sizeof n1, px, 2), fmt_num(n2, sizeof n2, px, 2));
  }
  /* Log axis: ticks at m x 10^k (m = 1..9) over up to six decades, longer
   * at the decades, which are labelled (every few decades over a wide
   * range); over up to two decades 2 and 5 are labelled too, and within one
   * every mark is. */
  double span = y1 - y0;
  long every = span > 10 ? (long)ceil(span / 10) : 1;
  long yt1 = log_y ? 0 : (long)floor((y1 - y0) / ystep + 1e-9);
  sbuf labels = {0}; /* the y tick labels, drawn after the ticks */
  if (log_y) {
    for (long k = (long)floor(y0 + 1e-9); k <= (long)ceil(y1 - 1e-9); k++)
      for (int m = 1; m <= 9; m++) {
        double t = (double)k + log10((double)m);
        if (t < y0 - 1e-9 || t > y1 + 1e-9) continue;
        int decade = m == 1 && ((k % every) + every) % every == 0;
        int label = decade || (span <= 1 || (span <= 2 && (m == 2 || m == 5)));
        if (!label && (span > 6 || m == 1)) continue;
        double py = PY(t);
        sb_add(&b, "<line class=\"%s\" x1=\"%s\" y1=\"%s\" x2=\"80\" y2=\"%s\"/>\n",
               label ? "ytick" : "ytick-minor", label ? "76.5" : "78",
               fmt_num(n1, sizeof n1, py, 2), fmt_num(n2, sizeof n2, py, 2));
        if (label)
          sb_add(&labels, "<text x=\"73\" y=\"%s\" text-anchor=\"end\">%s</text>\n",
                 fmt_num(n1, sizeof n1, py + 3.5, 2), fmt_pow10(n2, sizeof n2, m, (int)k));
      }
  } else {
    for (long i = 0; i <= yt1; i++) {
      double py = PY(y0 + i * ystep);
      sb_add(&b, "<line class=\"ytick\" x1=\"76.5\" y1=\"%s\" x2=\"80\" y2=\"%s\"/>\n",
             fmt_num(n1, sizeof n1, py, 2), fmt_num(n2, sizeof n2, py, 2));
      sb_add(&labels, "<text x=\"73\" y=\"%s\" text-anchor=\"end\">%s</text>\n",
             fmt_num(n1, sizeof n1, py + 3.5, 2), fmt_num(n2, sizeof n2, y0 + i * ystep, ydec));
    }
  }
  sb_add(&b, "</g>\n<g class=\"ticklabels\" font-size=\"10\">\n");
  for (long i = xt0; i <= xt1; i++)
    sb_add(&b, "<text x=\"%s\" y=\"444\" text-anchor=\"middle\">%s</text>\n",
           fmt_num(n1, sizeof n1, PX(i * xstep), 2), fmt_num(n2, sizeof n2, i * xstep, xdec));
  if (labels.nomem) b.nomem = 1;
  if (labels.s) sb_add(&b, "%s", labels.s);
  cnn_free(labels.s);
  sb_add(&b, "</g>\n");
  sb_add(&b,
         "<text class=\"xlabel\" x=\"328\" y=\"464\" font-size=\"12\" "
         "text-anchor=\"middle\">Epoch</text>\n");
  sb_add(&b,
         "<text class=\"ylabel\" x=\"0\" y=\"0\" font-size=\"12\" text-anchor=\"middle\" "
         "transform=\"translate(24 242.4) rotate(-90)\">");
  sb_escape(&b, ylabel && ylabel[0] ? ylabel : "Value");
  sb_add(&b, "</text>\n");

  /* Series: one path each (a new subpath after a gap), markers where there
   * are few epochs or where a value stands alone. */
  sb_add(&b,
         "<clipPath id=\"plot\"><rect x=\"80\" y=\"57.6\" width=\"496\" "
         "height=\"369.6\"/></clipPath>\n");
  for (size_t s = 0; s < nseries; s++) {
    const double *y = series[s].y;
    size_t n = series[s].n;
    const char *name = series[s].name ? series[s].name : "";
    sb_add(&b, "<g class=\"series\" data-name=\"");
    sb_escape(&b, name);
    sb_add(&b, "\" stroke=\"%s\" fill=\"%s\" clip-path=\"url(#plot)\">\n", compare_color[s],
           compare_color[s]);
    sb_add(&b, "<path class=\"line\" fill=\"none\" stroke-width=\"1.5\"%s d=\"",
           s >= COMPARE_DASHED ? " stroke-dasharray=\"6 3\"" : "");
    int pen = 0, first = 1;
    for (size_t k = 0; k < n; k++) {
      if (!drawable(y[k], log_y)) {
        pen = 0;
        continue;
      }
      sb_add(&b, "%s%s%s,%s", first ? "" : " ", pen ? "L" : "M",
             fmt_num(n1, sizeof n1, PX(k + 1.0), 2), fmt_num(n2, sizeof n2, PV(y[k]), 2));
      pen = 1, first = 0;
    }
    sb_add(&b, "\"/>\n");
    for (size_t k = 0; k < n; k++) {
      if (!drawable(y[k], log_y)) continue;
      int alone =
          (k == 0 || !drawable(y[k - 1], log_y)) && (k + 1 == n || !drawable(y[k + 1], log_y));
      if (epochs > MARKER_MAX_EPOCHS && !alone) continue;
      sb_add(&b, "<circle class=\"point\" cx=\"%s\" cy=\"%s\" r=\"2.5\"><title>",
             fmt_num(n1, sizeof n1, PX(k + 1.0), 2), fmt_num(n2, sizeof n2, PV(y[k]), 2));
      sb_escape(&b, name);
      sb_add(&b, ", epoch %zu: %s</title></circle>\n", k + 1, fmt_sig(n3, sizeof n3, y[k]));
    }
    sb_add(&b, "</g>\n");
  }

  /* Legend right of the axes, top-aligned, in series order. */
  sb_add(&b,
         "<g class=\"legend\" font-size=\"10\">\n"
         "<rect x=\"%s\" y=\"57.6\" width=\"%s\" height=\"%s\" rx=\"2\" fill=\"white\" "
         "stroke=\"#cccccc\"/>\n",
         fmt_num(n1, sizeof n1, LEG_X, 1), fmt_num(n2, sizeof n2, legend_w, 1),
         fmt_num(n3, sizeof n3, 16.0 * (double)nseries + 8, 1));
  for (size_t s = 0; s < nseries; s++) {
    double ly = AX_T + 14 + 16.0 * (double)s;
    legend_name(clip, sizeof clip, series[s].name ? series[s].name : "");
    sb_add(&b, "<g class=\"legend-entry\">\n");
    sb_add(&b,
           "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"1.5\"%s/>\n",
           fmt_num(n1, sizeof n1, LEG_X + 6, 1), fmt_num(n2, sizeof n2, ly, 1),
           fmt_num(n3, sizeof n3, LEG_X + 26, 1), fmt_num(n4, sizeof n4, ly, 1), compare_color[s],
           s >= COMPARE_DASHED ? " stroke-dasharray=\"6 3\"" : "");
    sb_add(&b, "<text x=\"%s\" y=\"%s\">", fmt_num(n1, sizeof n1, LEG_X + 32, 1),
           fmt_num(n2, sizeof n2, ly + 3.5, 1));
    sb_escape(&b, clip);
    sb_add(&b, "</text>\n</g>\n");
  }
  sb_add(&b, "</g>\n</svg>\n");
#undef PX
#undef PY
#undef PV
  if (b.nomem) {
    cnn_free(b.s);
    return cnn_nomem(err);
  }
  *out = b.s;
  return CNN_OK;
}
