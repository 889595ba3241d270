/*
 * winograd.h - 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3): each 4x4
 * block of outputs from the 6x6 tile of inputs around it,
 *   V = B^T d B  (per tile and input channel)
 *   U = G g G^T  (per input and output channel: the kernel transform)
 *   M[xi] = V[xi] @ U[xi]  one [tiles, C] x [C, F] product for each of the
 *                          36 tile points xi (cnn_gemm's kernels)
 *   y = A^T M A + bias     (per tile and filter; then max(y, 0) with relu)
 * 36 products per 16 outputs where direct convolution takes 144: the
 * forward of the notebook's second convolution (13x13x32 -> 11x11x64) runs
 * 1.2 to 1.8 times as fast as im2col + GEMM (tests/bench/bench_winograd.c;
 * conv2d.c's rule says where it is used). The transforms add rounding:
 * results differ from direct convolution's by up to about 1e-5 of the scale
 * sum |x w| (test_winograd.c allows 5e-5), about ten times its own.
 *
 * Layouts as conv2d's: x [n, H, W, C], kernel [3, 3, C, F], y [n, OH, OW, F];
 * input pixels outside the image (padding, or past its edge for partial
 * tiles) are zeros. The input gradient of a 3x3 stride-1 convolution is the
 * same algorithm: dx = dy convolved with the kernel turned by 180 degrees and
 * its channels swapped (cnn_wino_kernel's flip), padded by 2 - the forward's.
 * Results are bitwise identical for any pool size (tiles go to tasks in
 * chunks fixed by the shape) and between the avx2 and avx512 kernels.
 */
#ifndef CNN_WINOGRAD_H
#define CNN_WINOGRAD_H

#include <stddef.h>

#include "isa.h"
#include "threads.h"

typedef struct cnn_wino_geom {
  int H, W, C;           /* input */
  int OH, OW, F;         /* output */
  int pad_top, pad_left; /* input rows and columns of zeros before the image */
} cnn_wino_geom;

/* Floats of a transformed kernel, [36, C, F] (a multiple of 16). */
size_t cnn_wino_kernel_floats(int C, int F);

/* Floats of scratch per sample for the transformed tiles and products. */
size_t cnn_wino_work_floats(const cnn_wino_geom *g);

/* u [36, C, F] = G w G^T of w [3, 3, C, F]; with flip, of the kernel turned
 * by 180 degrees with C and F swapped, for the input gradient: u [36, F, C].
 * Loops for the pool's instruction set; large kernels split over the pool
 * (NULL: the calling thread), with the same result. */
void cnn_wino_kernel(cnn_threads *pool, float *u, const float *w, int C, int F, int flip);

/* y [n, OH, OW, F] = x [n, H, W, C] convolved with the transformed kernel u,
 * + bias (NULL: none), then max(y, 0) with relu (NaN gives 0). work holds
 * n * cnn_wino_work_floats(g) floats. Every element of y is written. */
void cnn_wino_conv(cnn_threads *pool, const cnn_wino_geom *g, const float *x, const float *u,
                   const float *bias, int relu, float *y, float *work, int n);

/* dw [3, 3, C, F] = the weight gradient of the convolution of geometry g
 * (the forward's) with output gradients dy [n, OH, OW, F]: for each kernel
 * position, the sum over images and outputs of x[n, oy + ky - pad_top,
 * ox + kx - pad_left, c] * dy[n, oy, ox, f], by F(3x3, 4x4) on the
 * forward's tiles (winograd.c). work holds cnn_wino_kernel_floats(C, F) +
 * n * cnn_wino_work_floats(g) floats, the room of the forward's kernel and
 * tiles. dw is overwritten. */
void cnn_wino_dw(cnn_threads *pool, const cnn_wino_geom *g, const float *x, const float *dy,
                 float *dw, float *work, int n);

#endif
