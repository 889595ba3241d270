/*
 * gemm.h - single-precision matrix multiply, the engine's one hot kernel:
 * convolutions (after im2col) and dense layers are all this GEMM.
 *
 *   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
 *
 * Row-major. op(A) is A (M x K, leading dimension lda) or, with ta, A^T where A
 * is stored K x M. Likewise op(B) with tb. beta == 0 means C is write-only (its
 * old contents, even NaN, are ignored). With K == 0 or alpha == 0, C = beta * C
 * and A and B are not read; with M == 0 or N == 0 nothing is touched.
 *
 * Results are bitwise identical for any pool size: threads split C into
 * disjoint blocks and every element sums over K in the same order.
 * Each thread that runs cnn_gemm keeps about 1.8 MB of thread-local packing
 * buffers (see gemm.c); cnn_gemm itself never allocates and cannot fail.
 */
#ifndef CNN_GEMM_H
#define CNN_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"

/* The pool's instruction set picks the kernel; a pool set to bf16
 * (cnn_threads_set_bf16) runs these as cnn_gemm_bf16 and cnn_gemm_bias_bf16
 * below. */
void cnn_gemm(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* C = alpha * op(A) @ op(B) + bias, the bias row (N values) added to every
 * row; bias NULL means none; then, with relu, max(C, 0) (NaN gives 0, as in
 * cnn_act_forward). Bit for bit what filling each row of C with the bias,
 * calling cnn_gemm with beta = 1 and applying the ReLU gives, without
 * writing and reading C two or three times. */
void cnn_gemm_bias(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, const float *bias, int relu,
                   float *C, int ldc);

/* cnn_gemm_bias on the calling thread alone, with the kernels (instruction
 * set and precision) of the pool `like`: for tasks that already run on a
 * pool, which cannot start another run. */
void cnn_gemm_bias_serial(const cnn_threads *like, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, const float *bias,
                          int relu, float *C, int ldc);

/* B packed once, for products that use the same B many times (a dense
 * layer's kernel in inference, multiplied by batch after batch):
 * cnn_gemm_pack writes B [K, N] (row-major, leading dimension ldb) into bp,
 * cnn_gemm_packed_size(isa, K, N) floats, in the layout the products of
 * that instruction set pack B into for each call (it depends on their tile
 * width and on K). cnn_gemm_bias_prepacked is then cnn_gemm_bias with ta = tb
 * = 0 and alpha = 1, bit for bit, with B still given for the nests that read
 * it in place (few rows); bp must have been packed for the pool's
 * instruction set (cnn_gemm_pack_isa) from the B given. A bf16 pool runs
 * cnn_gemm_bias_bf16 and ignores bp. */
cnn_isa cnn_gemm_pack_isa(cnn_isa isa);
size_t cnn_gemm_packed_size(cnn_isa isa, int K, int N);
void cnn_gemm_pack(cnn_isa isa, float *bp, const float *B, int ldb, int K, int N);
void cnn_gemm_bias_prepacked(cnn_threads *pool, int M, int N, int K, const float *A, int lda,
                             const float *B, int ldb, const float *bp, const float *bias, int relu,
                             float *C, int ldc);
/* The same on the calling thread alone, with the kernels of the pool
 * `like` (as cnn_gemm_bias_serial). */
void cnn_gemm_bias_prepacked_serial(const cnn_threads *like, int M, int N, int K, const float *A,
                                    int lda, const float *B, int ldb, const float *bp,
                                    const float *bias, int relu, float *C, int ldc);

/* The blocked product for one instruction set (gemm_kernel.c, compiled once
 * per set; the functions above dispatch on cnn_threads_isa(pool)): C =
 * alpha * op(A) @ op(B) + beta * S, S being C, or the bias row when bias is
 * not NULL, then max(C, 0) with relu. */
#define CNN_GEMM_RUN_PARAMS                                                                     \
  cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, \
      const float *B, int ldb, float beta, const float *bias, int relu, float *C, int ldc
void cnn_gemm_run_baseline(CNN_GEMM_RUN_PARAMS);
void cnn_gemm_run_avx2(CNN_GEMM_RUN_PARAMS);
void cnn_gemm_run_avx512(CNN_GEMM_RUN_PARAMS);
/* And with B packed once (gemm_kernel.c: GEMM_PACK, GEMM_RUN_PACKED). */
#define CNN_GEMM_PACKED_PARAMS                                                              \
  cnn_threads *pool, int M, int N, int K, const float *A, int lda, const float *B, int ldb, \
      const float *bp, const float *bias, int relu, float *C, int ldc
size_t cnn_gemm_packed_size_baseline(int K, int N);
size_t cnn_gemm_packed_size_avx2(int K, int N);
size_t cnn_gemm_packed_size_avx512(int K, int N);
void cnn_gemm_pack_baseline(float *bp, const float *B, int ldb, int K, int N);
void cnn_gemm_pack_avx2(float *bp, const float *B, int ldb, int K, int N);
void cnn_gemm_pack_avx512(float *bp, const float *B, int ldb, int K, int N);
void cnn_gemm_run_packed_baseline(CNN_GEMM_PACKED_PARAMS);
void cnn_gemm_run_packed_avx2(CNN_GEMM_PACKED_PARAMS);
void cnn_gemm_run_packed_avx512(CNN_GEMM_PACKED_PARAMS);

/* Mixed precision, as PyTorch's CPU autocast: the same products with A and B
 * rounded to bfloat16 (8 significant bits, round to nearest even; denormals
 * count as zero) and every sum in fp32; C, alpha, beta, the bias and the
 * ReLU stay fp32. Each operand is within 2^-8 of itself (relative), so per
 * element |C - exact| <= about 2^-7 * |alpha| * sum_k |a_ik b_kj| plus
 * fp32's own rounding (over long sums the roundings mostly cancel). Results
 * are bitwise identical for any pool size, but equal neither the fp32
 * products' nor each other between the AMX and AVX-512 kernels. They run
 * when the pool's level has a bf16 kernel on this CPU (cnn_isa_bf16 in
 * isa.h) and the product is big enough to gain from it (gemm.c); otherwise
 * these are exactly cnn_gemm, cnn_gemm_bias and cnn_gemm_bias_serial. Each
 * thread that runs one keeps 768 KB of thread-local packing buffers. */
void cnn_gemm_bf16(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void cnn_gemm_bias_bf16(cnn_threads *pool, int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, const float *bias,
                        int relu, float *C, int ldc);
void cnn_gemm_bias_serial_bf16(cnn_isa isa, int ta, int tb, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, const float *bias,
                               int relu, float *C, int ldc);

/* The bf16 kernels (gemm_bf16.c), with CNN_GEMM_RUN_PARAMS' contract: AMX
 * tiles, and AVX512-BF16 for CPUs without them. They are compiled for those
 * instructions: call the first only where cnn_isa_bf16 reports CNN_BF16_AMX,
 * the second where it reports either. */
void cnn_gemm_run_bf16_amx(CNN_GEMM_RUN_PARAMS);
void cnn_gemm_run_bf16_avx512(CNN_GEMM_RUN_PARAMS);

/* Products with B in bf16, converted once: for inference, where a layer's
 * weights stay the same from one call to the next. cnn_bf16_pack rounds
 * B [K, N] (row-major, leading dimension ldb) to bfloat16 as the bf16
 * products do (nearest even, denormals to zero) into bp, which holds
 * cnn_bf16_packed_size(K, N) values, in the layout of gemm_bf16.c's
 * "products with B converted once". Then
 *   C[M, N] = bf16(A)[M, K] @ bp + bias, then max(C, 0) with relu
 * with sums in fp32 and the error bound of the bf16 products above; bitwise
 * identical for any pool size. It runs on AVX512-BF16 when the pool's level
 * has a bf16 kernel (cnn_isa_bf16), else through cnn_bf16_unpack and the
 * fp32 product (same operands, another order of additions). */
size_t cnn_bf16_packed_size(int K, int N);
void cnn_bf16_pack(uint16_t *bp, const float *B, int ldb, int K, int N);
/* The fp32 values of bp: B [K, N] row-major, each entry as rounded. */
void cnn_bf16_unpack(float *B, const uint16_t *bp, int K, int N);
void cnn_gemm_bias_bf16_packed(cnn_threads *pool, int M, int N, int K, const float *A, int lda,
                               const uint16_t *bp, const float *bias, int relu, float *C, int ldc);
void cnn_gemm_run_bf16_packed(cnn_threads *pool, int M, int N, int K, const float *A, int lda,
                              const uint16_t *bp, const float *bias, int relu, float *C, int ldc);

/* The naive reference twin (triple loop, double accumulation) the tests and
 * benchmarks compare against. */
void cnn_gemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

#endif
