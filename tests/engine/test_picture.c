/*
 * test_picture.c - pictures out: PNGs decode back (through stb) to the right
 * size and pixels, grids have the right layout, labels and frames, the SVG
 * history chart is well-formed XML (checked here by a small tag matcher and,
 * when /usr/bin/python3 exists, by xml.etree) with one marker per epoch per
 * series, the comparison chart has a line and a legend entry per series, and
 * every size cap answers with its exact message. Checks are those
 * of check.h: each failure prints its line, exit status 0 means every check
 * passed.
 */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "check.h"
#include "image.h"

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static void test_png_gray(void) {
  char err[CNN_ERRMAX];
  uint8_t img[CNN_MNIST_BYTES];
  for (int i = 0; i < CNN_MNIST_BYTES; i++) img[i] = (uint8_t)(i * 13 + i / 28);
  for (int scale = 1; scale <= 4; scale += 3) {
    uint8_t *png = NULL;
    size_t len = 0;
    CHECK(cnn_png_gray(&png, &len, img, 28, 28, scale, err) == CNN_OK);
    CHECK(len > 8 && memcmp(png, png_signature, 8) == 0);
    cnn_gray g = {0};
    CHECK(cnn_image_decode(&g, png, len, err) == CNN_OK);
    CHECK(g.w == 28 * scale && g.h == 28 * scale);
    int bad = 0;
    for (int y = 0; y < g.h && g.w == 28 * scale; y++)
      for (int x = 0; x < g.w; x++) bad += g.px[y * g.w + x] != img[(y / scale) * 28 + x / scale];
    CHECK(bad == 0);
    cnn_gray_clear(&g);
    cnn_free(png);
  }
  /* Not square, scale 64. */
  uint8_t *png = NULL;
  size_t len = 0;
  const uint8_t tiny[3] = {0, 128, 255};
  CHECK(cnn_png_gray(&png, &len, tiny, 3, 1, 64, err) == CNN_OK);
  cnn_gray g = {0};
  CHECK(cnn_image_decode(&g, png, len, err) == CNN_OK);
  CHECK(g.w == 192 && g.h == 64 && g.px[0] == 0 && g.px[64] == 128 && g.px[191 + 63 * 192] == 255);
  cnn_gray_clear(&g);
  cnn_free(png);

  CHECK(cnn_png_gray(&png, &len, img, 28, 28, 0, err) == CNN_ERROR);
  CHECK_STR(err, "scale must be 1..64, got 0");
  CHECK(cnn_png_gray(&png, &len, img, 28, 28, 65, err) == CNN_ERROR);
  CHECK_STR(err, "scale must be 1..64, got 65");
  CHECK(cnn_png_gray(&png, &len, img, 8193, 8192, 1, err) == CNN_ERROR);
  CHECK_STR(err, "picture of 8193x8192 pixels is too large; the limit is 67108864 pixels");
  CHECK(cnn_png_gray(&png, &len, img, 2147483647, 2147483647, 64, err) == CNN_ERROR);
  CHECK_STR(err,
            "picture of 137438953408x137438953408 pixels is too large; the limit is "
            "67108864 pixels");
  CHECK(cnn_png_gray(&png, &len, img, 0, 28, 1, err) == CNN_ERROR);
  CHECK_STR(err, "image must have a positive size, got 0x28");
  CHECK(png == NULL && len == 0);
}

/* Cell geometry of picture.c's grid (kept in sync by the checks below). */
enum { CELL_W = 100, CELL_H = 119, PAD = 8, ZOOM = 3, IMG = 84, GAP = 5, GLYPH_H = 14 };

static void test_png_grid(void) {
  char err[CNN_ERRMAX];
  enum { N = 12, COLS = 5 };
  static uint8_t imgs[N][CNN_MNIST_BYTES];
  int labels[N];
  for (int k = 0; k < N; k++) {
    for (int i = 0; i < CNN_MNIST_BYTES; i++) imgs[k][i] = (uint8_t)((i + 17 * k) * 7);
    labels[k] = k == 5 ? -1 : k % 10;
  }
  uint8_t *png = NULL;
  size_t len = 0;
  CHECK(cnn_png_grid(&png, &len, &imgs[0][0], labels, N, COLS, err) == CNN_OK);
  CHECK(len > 8 && memcmp(png, png_signature, 8) == 0);
  cnn_gray g = {0};
  CHECK(cnn_image_decode(&g, png, len, err) == CNN_OK);
  CHECK(g.w == COLS * CELL_W && g.h == 3 * CELL_H);
  if (g.w == COLS * CELL_W && g.h == 3 * CELL_H) {
    for (int k = 0; k < N; k++) {
      int x0 = (k % COLS) * CELL_W + PAD, y0 = (k / COLS) * CELL_H + PAD, bad = 0;
      /* Dark ink on white: 255 - value, each pixel 3x3. */
      for (int y = 0; y < IMG; y++)
        for (int x = 0; x < IMG; x++)
          bad += g.px[(y0 + y) * g.w + x0 + x] != 255 - imgs[k][(y / ZOOM) * 28 + x / ZOOM];
      CHECK(bad == 0);
      /* The frame around it. */
      CHECK(g.px[(y0 - 1) * g.w + x0 + 10] == 0x40 && g.px[(y0 + IMG) * g.w + x0 + 10] == 0x40);
      CHECK(g.px[(y0 + 10) * g.w + x0 - 1] == 0x40 && g.px[(y0 + 10) * g.w + x0 + IMG] == 0x40);
      /* The label band: black pixels = 4 per set bit of the 5x7 glyph. */
      int black = 0, other = 0;
      for (int y = y0 + IMG + 1; y < (k / COLS + 1) * CELL_H; y++)
        for (int x = x0 - PAD; x < x0 - PAD + CELL_W; x++) {
          uint8_t v = g.px[y * g.w + x];
          black += v == 0;
          other += v != 0 && v != 255 && v != 0x40;
        }
      static const int glyph_bits[10] = {16, 10, 14, 14, 14, 17, 15, 11, 17, 15};
      int want = labels[k] < 0 ? 0 : 4 * glyph_bits[labels[k]];
      if (!CHECK_EQ_INT(black, want))
        fprintf(stderr, "grid cell %d (label %d): %d black label pixels, want %d\n", k, labels[k],
                black, want);
      CHECK(other == 0);
    }
  }
  cnn_gray_clear(&g);
  cnn_free(png);

  /* Fewer images than columns: only as wide as needed. Labels may be absent. */
  CHECK(cnn_png_grid(&png, &len, &imgs[0][0], NULL, 3, 10, err) == CNN_OK);
  CHECK(cnn_image_decode(&g, png, len, err) == CNN_OK);
  CHECK(g.w == 3 * CELL_W && g.h == CELL_H);
  cnn_gray_clear(&g);
  cnn_free(png);
  /* Multi-digit labels are written whole. */
  int big_label = 1234567;
  CHECK(cnn_png_grid(&png, &len, &imgs[0][0], &big_label, 1, 1, err) == CNN_OK);
  cnn_free(png);

  CHECK(cnn_png_grid(&png, &len, &imgs[0][0], labels, 0, 10, err) == CNN_ERROR);
  CHECK_STR(err, "no images to draw");
  CHECK(cnn_png_grid(&png, &len, &imgs[0][0], labels, 10001, 10, err) == CNN_ERROR);
  CHECK_STR(err, "10001 images; the limit is 10000");
  CHECK(cnn_png_grid(&png, &len, &imgs[0][0], labels, 5, 0, err) == CNN_ERROR);
  CHECK_STR(err, "columns must be 1..10000, got 0");
  /* 10000 images in one row would be 1000000 px wide: refused before reading them. */
  CHECK(cnn_png_grid(&png, &len, &imgs[0][0], labels, 10000, 10000, err) == CNN_ERROR);
  CHECK_STR(err,
            "a grid of 10000 images in 10000 columns would be 1000000x119 pixels; the "
            "limit is 67108864 pixels");
  CHECK(png == NULL && len == 0);
}

/* ---- SVG ----------------------------------------------------------------------- */

/* A small well-formedness check: tags balance and nest, attribute values are
 * quoted, text and attributes hold no raw '<' and only known entities.
 * Returns NULL or what is wrong. */
static const char *xml_check(const char *s) {
  const char *stack[64];
  size_t depth = 0, lens[64];
  int root_seen = 0;
  const char *p = s;
  if (strncmp(p, "<?xml ", 6) == 0) {
    p = strstr(p, "?>");
    if (!p) return "unterminated XML declaration";
    p += 2;
  }
  while (*p) {
    if (*p != '<') {
      if (*p == '&') {
        static const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
        int ok = 0;
        for (int i = 0; i < 5; i++) ok |= strncmp(p, ents[i], strlen(ents[i])) == 0;
        if (!ok) return "raw '&' in text";
      }
      if (depth == 0 && *p != '\n' && *p != ' ') return "text outside the root element";
      p++;
      continue;
    }
    if (p[1] == '/') { /* end tag */
      const char *name = p + 2;
      size_t n = strcspn(name, ">");
      if (name[n] != '>') return "unterminated end tag";
      if (depth == 0 || lens[depth - 1] != n || strncmp(stack[depth - 1], name, n) != 0)
        return "end tag does not match";
      depth--;
      p = name + n + 1;
      continue;
    }
    const char *name = p + 1;
    size_t n = strcspn(name, " />");
    if (n == 0) return "empty tag name";
    if (depth == 0 && root_seen) return "second root element";
    const char *q = name + n;
    /* attributes: name="value" */
    for (;;) {
      while (*q == ' ' || *q == '\n') q++;
      if (*q == '>' || (q[0] == '/' && q[1] == '>')) break;
      size_t an = strcspn(q, "=> ");
      if (an == 0 || q[an] != '=' || q[an + 1] != '"') return "attribute without a quoted value";
      q += an + 2;
      while (*q && *q != '"') {
        if (*q == '<') return "raw '<' in an attribute";
        q++;
      }
      if (!*q) return "unterminated attribute";
      q++;
    }
    if (*q == '/') { /* empty element */
      if (depth == 0) root_seen = 1;
      p = q + 2;
      continue;
    }
    if (depth == 64) return "too deep";
    stack[depth] = name, lens[depth] = n, depth++;
    if (depth == 1) root_seen = 1;
    p = q + 1;
  }
  return depth == 0 && root_seen ? NULL : "unclosed elements";
}

static int count(const char *s, const char *needle) {
  int k = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) k++;
  return k;
}

/* Markers of one series: circles with class "point" inside <g ... id="name">. */
static int series_points(const char *svg, const char *name) {
  char open[64];
  snprintf(open, sizeof open, "id=\"%s\"", name);
  const char *a = strstr(svg, open);
  if (!a) return -1;
  const char *b = strstr(a, "</g>");
  int k = 0;
  for (const char *p = strstr(a, "class=\"point\""); p && p < b;
       p = strstr(p + 1, "class=\"point\""))
    k++;
  return k;
}

/* Parses the SVG with Python's xml.etree and checks the circles per series.
 * Returns 0 if fine or python3 is missing, 1 otherwise. */
static int python_check(const char *svg, int want_acc, int want_val) {
  if (access("/usr/bin/python3", X_OK) != 0) return 0;
  char path[] = "/tmp/test_picture_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  FILE *f = fdopen(fd, "w");
  fputs(svg, f);
  fclose(f);
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as ET\n"
           "ns = '{http://www.w3.org/2000/svg}'\n"
           "root = ET.parse(sys.argv[1]).getroot()\n"
           "assert root.tag == ns + 'svg', root.tag\n"
           "g = {e.get('id'): e for e in root.iter(ns + 'g') if e.get('id')}\n"
           "n = [len([c for c in g[s].iter(ns + 'circle') if c.get('class') == 'point'])"
           " for s in ('accuracy', 'val_accuracy')]\n"
           "assert n == [%d, %d], n\n"
           "texts = [t.text for t in root.iter(ns + 'text')]\n"
           "assert 'Epoch' in texts and 'Accuracy' in texts, texts\n"
           "assert 'accuracy' in texts and 'val_accuracy' in texts, texts\n"
           "\" %s",
           want_acc, want_val, path);
  int rc = system(cmd);
  unlink(path);
  return rc != 0;
}

static void test_svg(void) {
  char err[CNN_ERRMAX];
  char *svg = NULL;
  /* A decimal comma in the host's locale must not leak into the numbers. */
  setlocale(LC_NUMERIC, "de_DE.UTF-8");
  double acc[10] = {0.9541, 0.9856, 0.9897, 0.9921, 0.9940, 0.9951, 0.9962, 0.9968, 0.9975, 0.9978};
  double val[10] = {0.9883, 0.9894, 0.9902, 0.9911, 0.9915, 0.9908, 0.9921, 0.9917, 0.9925, 0.9922};
  CHECK(cnn_svg_history(&svg, acc, val, 10, "Model \"a<b\" & co", err) == CNN_OK);
  if (svg) {
    const char *why = xml_check(svg);
    if (!CHECK(why == NULL)) fprintf(stderr, "svg: %s\n%s\n", why, svg);
    CHECK(series_points(svg, "accuracy") == 10);
    CHECK(series_points(svg, "val_accuracy") == 10);
    CHECK(count(svg, "<circle class=\"point\"") == 20);
    CHECK(count(svg, "class=\"legend-marker\"") == 2);
    CHECK(strstr(svg, ">Model &quot;a&lt;b&quot; &amp; co</text>") != NULL);
    CHECK(strstr(svg, ">Epoch</text>") && strstr(svg, ">Accuracy</text>"));
    CHECK(strstr(svg, ">accuracy</text>") && strstr(svg, ">val_accuracy</text>"));
    /* y from 0.5 to 1 in steps of 0.1; x ticks 0, 2, ..., 10. */
    CHECK(strstr(svg, ">0.5</text>") && strstr(svg, ">1.0</text>") && !strstr(svg, ">0.4</text>"));
    CHECK(count(svg, "class=\"ytick\"") == 6);
    CHECK(strstr(svg, ">2</text>") && strstr(svg, ">10</text>"));
    CHECK(strstr(svg, "0,5") == NULL && strstr(svg, "0,9") == NULL);
    /* The first point: epoch 1 at x = 80 + (1 - 0.55) / (10.45 - 0.55) * 496,
     * accuracy 0.9541 at y = 427.2 - (0.9541 - 0.5) / 0.5 * 369.6. */
    CHECK(strstr(svg, "<circle class=\"point\" cx=\"102.55\" cy=\"91.53\"") != NULL);
    CHECK(python_check(svg, 10, 10) == 0);
  }
  cnn_free(svg);
  setlocale(LC_NUMERIC, "C");

  /* Missing points (NaN) and a value under 0.5: the axis extends down. */
  double acc2[5] = {0.31, 0.62, NAN, 0.81, 0.86};
  double val2[5] = {NAN, 0.55, 0.71, 0.79, NAN};
  CHECK(cnn_svg_history(&svg, acc2, val2, 5, NULL, err) == CNN_OK);
  if (svg) {
    CHECK(xml_check(svg) == NULL);
    CHECK(series_points(svg, "accuracy") == 4);
    CHECK(series_points(svg, "val_accuracy") == 3);
    CHECK(strstr(svg, ">0.2</text>") && strstr(svg, ">1.0</text>"));
    CHECK(count(svg, "<polyline") == 3); /* accuracy broken in two, val_accuracy one */
    CHECK(strstr(svg, ">Model accuracy</text>") != NULL);
    CHECK(python_check(svg, 4, 3) == 0);
  }
  cnn_free(svg);

  /* No epochs yet: still a chart. */
  CHECK(cnn_svg_history(&svg, NULL, NULL, 0, "empty", err) == CNN_OK);
  if (svg) {
    CHECK(xml_check(svg) == NULL);
    CHECK(count(svg, "class=\"point\"") == 0);
    CHECK(python_check(svg, 0, 0) == 0);
  }
  cnn_free(svg);

  /* One epoch. */
  double one = 0.97;
  CHECK(cnn_svg_history(&svg, &one, &one, 1, "one", err) == CNN_OK);
  if (svg) {
    CHECK(xml_check(svg) == NULL);
    CHECK(count(svg, "<circle class=\"point\"") == 2);
    CHECK(count(svg, "<polyline") == 0);
  }
  cnn_free(svg);

  CHECK(cnn_svg_history(&svg, acc, val, 100001, "x", err) == CNN_ERROR);
  CHECK_STR(err, "100001 epochs; the limit is 100000");
  CHECK(svg == NULL);

  /* The matcher itself rejects broken XML. */
  CHECK(xml_check("<svg><g></svg></g>") != NULL);
  CHECK(xml_check("<svg><text>a < b</text></svg>") != NULL);
  CHECK(xml_check("<svg><text>a & b</text></svg>") != NULL);
  CHECK(xml_check("<svg x=1/>") != NULL);
  CHECK(xml_check("<svg><g/></svg>") == NULL);
}

/* The comparison chart: a path and a legend entry per series in order,
 * gaps as new subpaths, a log axis labelled at 1, 2 and 5 over two decades,
 * long names cut at a character boundary, and its errors. */
static void test_svg_compare(void) {
  char err[CNN_ERRMAX];
  char *svg = NULL;
  double a[4] = {2.3, 0.9, NAN, 0.05}, b[3] = {1.1, 0.7, 0.4}, c[2] = {0.6, -1};
  /* 41 bytes: 37 fit before the cut, the 38th starts a two-byte character. */
  const char *longname = "abcdefghijklmnopqrstuvwxyz0123456789a\xc3\xa9xyz";
  cnn_svg_series s[3] = {{"first <&>", a, 4}, {"second", b, 3}, {longname, c, 2}};
  setlocale(LC_NUMERIC, "de_DE.UTF-8");
  CHECK(cnn_svg_compare(&svg, s, 3, "loss per epoch", "Loss (log scale)", 1, err) == CNN_OK);
  if (svg) {
    const char *why = xml_check(svg);
    if (!CHECK(why == NULL)) fprintf(stderr, "svg: %s\n%s\n", why, svg);
    CHECK(count(svg, "<path class=\"line\"") == 3);
    CHECK(count(svg, "<g class=\"legend-entry\">") == 3);
    CHECK(count(svg, "<g class=\"series\"") == 3);
    const char *p1 = strstr(svg, "data-name=\"first &lt;&amp;&gt;\"");
    const char *p2 = strstr(svg, "data-name=\"second\"");
    CHECK(p1 && p2 && p1 < p2);
    /* Epochs 1-2 and 4 of the first (a gap at 3): two subpaths; the third
     * series' -1 is no point on a log scale. */
    CHECK(strstr(svg, "d=\"M102.55,81.59 L252.85,166.28 M553.45,427.20\"") != NULL);
    CHECK(count(svg, "<circle class=\"point\"") == 3 + 3 + 1);
    /* y from 0.05 to 3: labels at 0.05, 0.1, 0.2, 0.5, 1, 2 (not 3), the
     * lowest at the bottom of the axes. */
    CHECK(strstr(svg, "y=\"430.70\" text-anchor=\"end\">0.05</text>") != NULL);
    static const char *const ylabels[] = {"0.1", "0.2", "0.5", "1", "2"};
    char want[64];
    for (int i = 0; i < 5; i++) {
      snprintf(want, sizeof want, "text-anchor=\"end\">%s</text>", ylabels[i]);
      CHECK(count(svg, want) == 1);
    }
    CHECK(count(svg, "text-anchor=\"end\">") == 6);
    CHECK(count(svg, "class=\"ytick-minor\"") > 0);
    CHECK(strstr(svg, ">Loss (log scale)</text>") && strstr(svg, ">loss per epoch</text>"));
    CHECK(strstr(svg, ">abcdefghijklmnopqrstuvwxyz0123456789a...</text>") != NULL);
    CHECK(strstr(svg, "<title>second, epoch 3: 0.4000</title>") != NULL);
    CHECK(strstr(svg, "<title>first &lt;&amp;&gt;, epoch 4: 0.0500</title>") != NULL);
  }
  cnn_free(svg);
  setlocale(LC_NUMERIC, "C");

  /* Linear: one constant series still gets a range; tiny values in titles. */
  double flat[2] = {0.25, 0.25}, tiny[1] = {0.000123};
  cnn_svg_series f[2] = {{"flat", flat, 2}, {"tiny", tiny, 1}};
  CHECK(cnn_svg_compare(&svg, f, 1, NULL, NULL, 0, err) == CNN_OK);
  if (svg) {
    CHECK(xml_check(svg) == NULL);
    CHECK(count(svg, "<path class=\"line\"") == 1 && strstr(svg, ">Comparison</text>"));
  }
  cnn_free(svg);
  CHECK(cnn_svg_compare(&svg, f + 1, 1, "t", "y", 1, err) == CNN_OK);
  if (svg) CHECK(strstr(svg, "epoch 1: 1.230e-4</title>") != NULL);
  cnn_free(svg);

  /* Errors. */
  cnn_svg_series many[CNN_SVG_MAX_SERIES + 1];
  for (int i = 0; i <= CNN_SVG_MAX_SERIES; i++) many[i] = (cnn_svg_series){"m", b, 3};
  CHECK(cnn_svg_compare(&svg, many, CNN_SVG_MAX_SERIES, "t", "y", 0, err) == CNN_OK);
  cnn_free(svg);
  CHECK(cnn_svg_compare(&svg, many, CNN_SVG_MAX_SERIES + 1, "t", "y", 0, err) == CNN_ERROR);
  CHECK_STR(err, "13 series; expected 1 to 12");
  CHECK(cnn_svg_compare(&svg, many, 0, "t", "y", 0, err) == CNN_ERROR);
  CHECK_STR(err, "0 series; expected 1 to 12");
  double none[2] = {NAN, -2};
  cnn_svg_series n[1] = {{"none", none, 2}};
  CHECK(cnn_svg_compare(&svg, n, 1, "t", "y", 1, err) == CNN_ERROR);
  CHECK_STR(err, "no values to draw");
  CHECK(svg == NULL);
}

/* Every allocation failing in turn gives CNN_NOMEM and no leak. */
static void test_nomem(void) {
  char err[CNN_ERRMAX];
  static uint8_t imgs[4][CNN_MNIST_BYTES];
  int labels[4] = {1, 2, 3, 4};
  double acc[3] = {0.9, 0.95, 0.97};
  cnn_svg_series series[2] = {{"a", acc, 3}, {"b", acc, 2}};
  for (int which = 0; which < 4; which++) {
    int ok_at = 0;
    for (uint64_t k = 1; k < 100 && !ok_at; k++) {
      uint8_t *png = NULL;
      char *svg = NULL;
      size_t len;
      cnn_alloc_fail_at(k);
      int rc = which == 0   ? cnn_png_gray(&png, &len, imgs[0], 28, 28, 2, err)
               : which == 1 ? cnn_png_grid(&png, &len, &imgs[0][0], labels, 4, 2, err)
               : which == 2 ? cnn_svg_history(&svg, acc, acc, 3, "t", err)
                            : cnn_svg_compare(&svg, series, 2, "t", "y", 1, err);
      cnn_alloc_fail_at(0);
      if (rc == CNN_OK)
        ok_at = (int)k;
      else
        CHECK(rc == CNN_NOMEM);
      cnn_free(png);
      cnn_free(svg);
    }
    CHECK(ok_at > 1);
  }
}

int main(void) {
  test_png_gray();
  test_png_grid();
  test_svg();
  test_svg_compare();
  test_nomem();
  return check_done();
}
