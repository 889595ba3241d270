/*
 * augmentation.h - data augmentation: random geometric, elastic, stroke and noise
 * transforms of training images, applied to each batch as it is gathered
 * (the dataset itself is never copied or changed).
 *
 * Images are uint8 NHWC, any h x w x c; the output is the float input of the
 * network, values in [0, 1]. One image's result depends only on the settings
 * and its stream (cnn_augment_stream of the run's seed, the epoch and the
 * sample's row in the dataset), never on the batch it falls in or the thread
 * that runs it, so training stays reproducible bit for bit.
 *
 * What one image goes through, in order:
 *   1. thickness: grayscale dilation (max) or erosion (min) over a square of
 *      side n+1, which makes strokes n pixels wider or narrower, n uniform in
 *      1..thickness, each of none/dilate/erode with probability 1/3;
 *   2. one affine map about the image centre ((w-1)/2, (h-1)/2), from source
 *      to output: zoom by s, then shear x += k*y, then rotate by a
 *      counter-clockwise (as seen, y pointing down), then shift by (tx, ty);
 *      plus, with elastic, a displacement field (Simard et al. 2003: uniform
 *      [-1, 1] per pixel and axis, smoothed by a Gaussian of std sigma with
 *      zero padding, times alpha) added to the sampling coordinates. Output
 *      pixels are sampled from the source with bilinear interpolation, zero
 *      (black) outside it;
 *   3. noise: additive Gaussian of std `noise`, clamped to [0, 1].
 * With every setting zero the output is the image scaled by 1/255 exactly as
 * training scales an image that is not augmented.
 */
#ifndef CNN_AUGMENTATION_H
#define CNN_AUGMENTATION_H

#include <stdint.h>

#include "base.h"
#include "threads.h"

typedef struct cnn_json cnn_json;

/* The settings (cnn_train's "augment" option); all zero = off. */
typedef struct cnn_augment_config {
  double rotation;      /* degrees: angle uniform in [-rotation, rotation]; 0..180 */
  double shift;         /* fraction of the side: tx, ty uniform in [-shift, shift] * w, h */
  double zoom;          /* scale uniform in [1 - zoom, 1 + zoom]; 0..0.9 */
  double shear;         /* factor k uniform in [-shear, shear]; 0..1 */
  double elastic_alpha; /* displacement scale in pixels; 0 = no elastic distortion */
  double elastic_sigma; /* std of the smoothing Gaussian, pixels */
  int thickness;        /* strokes up to that many pixels wider or narrower; 0..8 */
  double noise;         /* std of additive Gaussian noise on the [0, 1] scale; 0..1 */
} cnn_augment_config;

#define CNN_AUGMENT_MAX_THICKNESS 8

/* Parses the settings from a JSON object into *cfg (zeroed first). prefix
 * names the object in messages ("augment" gives "option augment.rotation
 * must be a number in [0, 180]; got 400"; NULL gives "option rotation ...").
 * Unknown keys are errors that list the known ones. */
int cnn_augment_parse(cnn_augment_config *cfg, const cnn_json *v, const char *prefix, char *err);

/* Whether any setting changes an image. */
int cnn_augment_active(const cnn_augment_config *cfg);

/* The random choices for one image (what cnn_augment_draw picks), in the
 * units of the transform: radians, pixels, factors. */
typedef struct cnn_augment_draw {
  double angle;  /* counter-clockwise as seen */
  double tx, ty; /* pixels: right, down */
  double scale;  /* > 1 enlarges */
  double shear;  /* x += shear * y about the centre */
  int thickness; /* > 0 strokes that many pixels wider, < 0 narrower, 0 neither */
} cnn_augment_draw;

/* Augmenting state for images of one shape: settings, the Gaussian kernel of
 * the elastic field, and scratch for `threads` threads at once (sized here,
 * so that augmenting never allocates). */
typedef struct cnn_augment cnn_augment;

int cnn_augment_new(cnn_augment **out, const cnn_augment_config *cfg, int h, int w, int c,
                    int threads, char *err);
void cnn_augment_free(cnn_augment *a);

/* The stream of one image: a hash of (seed, epoch, row). */
uint64_t cnn_augment_stream(uint64_t seed, uint64_t epoch, uint64_t row);

/* The random choices of an image's stream (the fields and noise come from
 * the same stream, after these). */
void cnn_augment_draw_params(const cnn_augment *a, uint64_t stream, cnn_augment_draw *d);

/* One image with given choices: out (h x w x c floats) from src (h x w x c
 * uint8). stream seeds the elastic field and the noise. thread names the
 * scratch to use (0..threads-1), so calls with different thread values may
 * run at once. */
void cnn_augment_apply(const cnn_augment *a, float *out, const uint8_t *src,
                       const cnn_augment_draw *d, uint64_t stream, int thread);

/* One image with the choices of its stream. */
void cnn_augment_image(const cnn_augment *a, float *out, const uint8_t *src, uint64_t stream,
                       int thread);

/* A training batch: out[i] (h x w x c floats) is image rows[i] of images
 * (count x h x w x c uint8), augmented with the stream (seed, epoch,
 * rows[i]); n images, one task each on pool (NULL: this thread). The pool
 * may not have more threads than cnn_augment_new was given. */
void cnn_augment_batch(const cnn_augment *a, float *out, const uint8_t *images,
                       const uint32_t *rows, int n, uint64_t seed, uint64_t epoch,
                       cnn_threads *pool);
/* The same for a batch already gathered (a streamed dataset): image i is
 * images + i x h x w x c, still augmented with the stream of its dataset
 * row rows[i], so streamed and in-memory training draw alike. */
void cnn_augment_gathered(const cnn_augment *a, float *out, const uint8_t *images,
                          const uint32_t *rows, int n, uint64_t seed, uint64_t epoch,
                          cnn_threads *pool);

#endif
