/*
 * isa.h - which vector instructions the engine's kernels use, chosen at run
 * time.
 *
 * One cnn.so runs on any x86-64 CPU: the hot kernels are compiled once per
 * instruction set (gemm.c as a whole, once per level; the loops of im2col,
 * pooling and the optimizers through CNN_ISA_CLONES below) and the level is
 * picked when a thread pool is made: the best this CPU and its operating
 * system support, capped by the environment variable CNN_ISA (and by the
 * training option "isa", through cnn_threads_set_isa). Levels:
 *   baseline  x86-64 (SSE2): the portable 4x8 GEMM tile
 *   avx2      AVX2 + FMA: the 6x16 tile (ymm)
 *   avx512    AVX-512 F+BW+DQ+VL: the 12x32 tile (zmm, mask registers)
 *   amx       AMX tiles present (the avx512 kernels run: there are no
 *             AMX kernels yet; the level exists so a cap can name it)
 * avx2 and avx512 give bit-for-bit the same results (every element of a
 * product is one FMA chain over the same k blocks, in k order; other kernels
 * round the same in any vector width); baseline has no FMA, so its products
 * round differently (within 1e-6 relative of the others, see test_isa.c).
 */
#ifndef CNN_ISA_H
#define CNN_ISA_H

typedef enum cnn_isa {
  CNN_ISA_BASELINE = 0,
  CNN_ISA_AVX2 = 1,
  CNN_ISA_AVX512 = 2,
  CNN_ISA_AMX = 3,
} cnn_isa;

#define CNN_ISA_COUNT 4

/* "baseline", "avx2", "avx512", "amx". */
const char *cnn_isa_name(cnn_isa isa);

/* The highest level this CPU and OS can run. */
cnn_isa cnn_isa_cpu(void);

/* Parses a level's name and checks that this CPU can run it. Fails with
 * CNN_ERROR naming the unknown name or the missing CPU feature. */
int cnn_isa_parse(const char *name, cnn_isa *out, char *err);

/* The level a new pool starts with: cnn_isa_cpu(), capped by $CNN_ISA when
 * set. Fails like cnn_isa_parse for a bad $CNN_ISA ("CNN_ISA=..." first). */
int cnn_isa_default(cnn_isa *out, char *err);

/* The CPU features found, as "avx2=1 fma=1 avx512f=0 ..." (static text). */
const char *cnn_isa_features(void);

/* The processor's name as cpuid gives it, or "unknown". */
const char *cnn_isa_cpu_name(void);

/* What a level runs for the matrix product ("avx512 12x32" ...), and for the
 * loops of CNN_ISA_CLONES ("avx512", "avx2", "baseline": amx runs avx512). */
const char *cnn_isa_gemm_kernel(cnn_isa isa);
const char *cnn_isa_loops(cnn_isa isa);

/* The mixed-precision (bf16) matrix product a level runs on this CPU (see
 * cnn_gemm_bf16): AMX tiles at level amx with amx_bf16 and avx512_bf16
 * (which packs the operands); AVX512-BF16 at level avx512 or amx on CPUs
 * with avx512_bf16 but no AMX; else none, and bf16 products run in fp32
 * (also on AMX CPUs capped below amx, where the AVX-512 kernel loses). */
typedef enum cnn_bf16 {
  CNN_BF16_NONE = 0,
  CNN_BF16_AVX512 = 1,
  CNN_BF16_AMX = 2,
} cnn_bf16;
cnn_bf16 cnn_isa_bf16(cnn_isa isa);
/* Its name: "amx-bf16 32x32", "avx512-bf16 8x32" or "none (fp32)". */
const char *cnn_isa_gemm_bf16_kernel(cnn_isa isa);

/* Kernels compiled for every level from one source: CNN_ISA_CLONES(name,
 * params, args) defines name_avx512, name_avx2 and name_baseline, each
 * compiling the always-inline name##_body for its instruction set, and
 * name_isa(isa, params) that calls the right one. Use it for loops the
 * compiler vectorises; hand-written vector code lives in gemm.c. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define CNN_TARGET_AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl")))
#define CNN_ISA_CLONES(name, params, args)                                 \
  static CNN_TARGET_AVX512 void name##_avx512 params { name##_body args; } \
  static CNN_TARGET_AVX2 void name##_avx2 params { name##_body args; }     \
  static void name##_baseline params { name##_body args; }                 \
  static void name##_isa(cnn_isa isa_, CNN_ISA_UNPAREN params) {           \
    if (isa_ >= CNN_ISA_AVX512)                                            \
      name##_avx512 args;                                                  \
    else if (isa_ == CNN_ISA_AVX2)                                         \
      name##_avx2 args;                                                    \
    else                                                                   \
      name##_baseline args;                                                \
  }
#else
#define CNN_ISA_CLONES(name, params, args)                       \
  static void name##_isa(cnn_isa isa_, CNN_ISA_UNPAREN params) { \
    (void)isa_;                                                  \
    name##_body args;                                            \
  }
#endif
#define CNN_ISA_UNPAREN(...) __VA_ARGS__
/* For the body of a clone and every function it calls, so that each clone
 * compiles all of it for its instruction set. */
#define CNN_INLINE static inline __attribute__((always_inline))

#endif
