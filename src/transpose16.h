/*
 * transpose16.h - a 16x16 transpose of 32-bit lanes in zmm registers, for
 * the AVX-512 code of the products (gemm_kernel.c's turned-back narrow
 * product, gemm_bf16.c's packing of transposed operands). Include it only where the
 * compiler targets AVX-512F.
 */
#ifndef CNN_TRANSPOSE16_H
#define CNN_TRANSPOSE16_H

#include <immintrin.h>

/* r[i] lane j becomes r[j] lane i. */
static inline __attribute__((always_inline)) void cnn_transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  /* Now r[4g + m], 128-bit lane l, holds column 4l + m of rows 4g..4g+3. */
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int m = 0; m < 4; m++) {
    __m512i a = _mm512_shuffle_i32x4(r[m], r[4 + m], 0x88);
    __m512i b = _mm512_shuffle_i32x4(r[m], r[4 + m], 0xdd);
    __m512i c = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0x88);
    __m512i d = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0xdd);
    t[m] = _mm512_shuffle_i32x4(a, c, 0x88);
    t[4 + m] = _mm512_shuffle_i32x4(b, d, 0x88);
    t[8 + m] = _mm512_shuffle_i32x4(a, c, 0xdd);
    t[12 + m] = _mm512_shuffle_i32x4(b, d, 0xdd);
  }
  for (int i = 0; i < 16; i++) r[i] = t[i];
}

#endif
