/*
 * image.h - images in and pictures out.
 *
 * In: an image argument is either a raw MNIST-convention blob (28x28 = 784 bytes,
 * uint8, row-major, white ink on black) or an encoded file (PNG, JPEG, BMP, GIF,
 * PSD, HDR, PNM: the formats of stb_image that carry a signature), recognised by
 * its content. Headers are checked before decoding: more than
 * CNN_IMAGE_MAX_PIXELS pixels or a side over CNN_IMAGE_MAX_SIDE is refused
 * (decompression bombs).
 *
 * Out: PNG through stb_image_write, and SVG charts as text. Pictures are capped
 * at CNN_PICTURE_MAX_PIXELS pixels, grids at CNN_GRID_MAX_IMAGES images.
 *
 * stb itself is compiled in src/io/stb.c only (all its symbols static); the
 * codec wrappers at the end of this header are the only way to it.
 */
#ifndef CNN_IO_IMAGE_H
#define CNN_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define CNN_MNIST_SIDE 28
#define CNN_MNIST_BYTES 784
#define CNN_IMAGE_MAX_PIXELS (40u * 1000u * 1000u)
#define CNN_IMAGE_MAX_SIDE 32768u
#define CNN_PICTURE_MAX_PIXELS (64u * 1024u * 1024u)
#define CNN_GRID_MAX_IMAGES 10000u
#define CNN_PNG_MAX_SCALE 64

/* A decoded 8-bit grayscale image, owned pixels (cnn_malloc). */
typedef struct cnn_gray {
  int w, h;
  uint8_t *px; /* owned, w*h bytes, row-major, 0 = black */
} cnn_gray;

void cnn_gray_clear(cnn_gray *g);

/* Decodes an encoded image to grayscale (luma of Rec. 601, alpha composited on
 * white paper, 16-bit samples reduced to 8). Errors: "not a recognised image
 * format", "image is 50000x50000 pixels; the limit is 40000000",
 * "corrupt or truncated PNG: <stb's reason>". On failure *out is left empty. */
int cnn_image_decode(cnn_gray *out, const uint8_t *data, size_t len, char *err);

/* Turns any image argument into the 784-byte MNIST convention:
 *  - a 784-byte blob that does not start like an encoded image is taken as is;
 *  - anything else is decoded and preprocessed like MNIST's own digits: paper and
 *    ink found from the image itself (either polarity, uneven lighting, noise),
 *    cropped to the ink, resized with area averaging so the longer side is 20 px,
 *    centred by centre of mass in 28x28.
 * A blank image (no ink found) gives an error. */
int cnn_image_to_mnist(uint8_t out[CNN_MNIST_BYTES], const uint8_t *data, size_t len, char *err);

/* Preprocesses an already decoded image (the second half of the above). The
 * method is described at the top of decode.c. */
int cnn_gray_to_mnist(uint8_t out[CNN_MNIST_BYTES], const cnn_gray *g, char *err);

/* PNG of a grayscale image w x h, each pixel scaled up `scale` times (1..64).
 * *out is owned by the caller (cnn_free). */
int cnn_png_gray(uint8_t **out, size_t *outlen, const uint8_t *px, int w, int h, int scale,
                 char *err);

/* PNG grid of n 28x28 images, `columns` per row, each shown as dark ink on
 * white paper (like matplotlib's binary colormap) with its label (0..9, or -1
 * for none) written under it. */
int cnn_png_grid(uint8_t **out, size_t *outlen, const uint8_t *images, const int *labels, size_t n,
                 int columns, char *err);

/* SVG line chart of accuracy and val_accuracy per epoch (NaN = missing point):
 * axes with ticks and labels ("Epoch", "Accuracy"), y from 0.5 to 1 (extended
 * down when a value is lower), legend in the lower right. Owned string. */
int cnn_svg_history(char **out, const double *accuracy, const double *val_accuracy, size_t epochs,
                    const char *title, char *err);

/* One line of a comparison chart: a name for the legend and a value per
 * epoch, y[e - 1] for epoch e (NaN = missing). Both borrowed. */
typedef struct cnn_svg_series {
  const char *name;
  const double *y;
  size_t n;
} cnn_svg_series;

#define CNN_SVG_MAX_SERIES 12

/* SVG line chart comparing 1..CNN_SVG_MAX_SERIES series on shared axes: one
 * <path> per series (a gap where a value is missing), a point marker per
 * value up to 100 epochs, a legend to the right of the axes in series order,
 * y labelled ylabel; log_y draws y on a log scale (decades), where values
 * that are not positive are gaps. Fails when no series has a value to draw.
 * Owned string. */
int cnn_svg_compare(char **out, const cnn_svg_series *series, size_t nseries, const char *title,
                    const char *ylabel, int log_y, char *err);

/* Codec wrappers (src/io/stb.c). */

/* CNN_OK if data is an image of a format we decode, with the size its header
 * claims in *w, *h (reads the header only; checking the size against the caps
 * is the caller's); CNN_ERROR "not a recognised image format"; CNN_NOMEM. */
int cnn_image_info(const uint8_t *data, size_t len, int *w, int *h, char *err);

/* Decodes data to gray+alpha, 2 bytes per pixel, *w x *h, stb's conversion
 * (Rec. 601 luma). The caller checks the size first (cnn_image_info); *px is
 * owned by the caller (cnn_free). Errors: "corrupt or truncated PNG: <reason>". */
int cnn_image_load(uint8_t **px, int *w, int *h, const uint8_t *data, size_t len, char *err);

/* PNG (zlib deflate) / baseline JPEG of w x h pixels with `channels` (1 gray,
 * 2 gray+alpha, 3 RGB, 4 RGBA) interleaved bytes per pixel; *out owned by the
 * caller (cnn_free). At most CNN_PICTURE_MAX_PIXELS pixels. */
int cnn_png_encode(uint8_t **out, size_t *outlen, const uint8_t *px, int w, int h, int channels,
                   char *err);
int cnn_jpg_encode(uint8_t **out, size_t *outlen, const uint8_t *px, int w, int h, int channels,
                   int quality, char *err);

#endif
