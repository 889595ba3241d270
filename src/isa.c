/*
 * isa.c - what the CPU can run (cpuid and xgetbv) and the level the kernels
 * use (see isa.h).
 *
 * A feature counts only when the operating system also saves its registers
 * on a context switch (XCR0): AVX needs the ymm state, AVX-512 the opmask and
 * zmm state, AMX the tile state, which Linux moreover hands out per process
 * on request (arch_prctl ARCH_REQ_XCOMP_PERM). The CPU is read once per
 * process (pthread_once): cpuid traps to the hypervisor on virtual machines.
 */
#define _DEFAULT_SOURCE /* syscall() */
#include "isa.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define ISA_X86 1
#else
#define ISA_X86 0
#endif

typedef struct isa_cpu {
  int sse2, avx, avx2, fma, avx512f, avx512bw, avx512dq, avx512vl, avx512_bf16, amx_tile, amx_bf16;
  cnn_isa best;
  char features[256];
  char brand[49]; /* cpuid's processor name */
} isa_cpu;

static isa_cpu isa_found; /* written once, by isa_read under isa_once */
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

#if ISA_X86
static unsigned long long isa_xgetbv(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}

/* Linux gives a process the AMX tile state only when it asks. */
static int isa_request_amx(void) {
#if defined(SYS_arch_prctl)
  const long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
  return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
  return 0;
#endif
}
#endif

static void isa_read(void) {
  isa_cpu *c = &isa_found;
#if ISA_X86
  unsigned a, b, cx, d;
  c->sse2 = 1; /* every x86-64 CPU */
  if (__get_cpuid(0x80000000, &a, &b, &cx, &d) && a >= 0x80000004) {
    unsigned *w = (unsigned *)(void *)c->brand;
    for (unsigned leaf = 0; leaf < 3; leaf++, w += 4)
      __get_cpuid(0x80000002 + leaf, &w[0], &w[1], &w[2], &w[3]);
    c->brand[48] = 0;
  }
  if (__get_cpuid(1, &a, &b, &cx, &d)) {
    int osxsave = (cx >> 27) & 1;
    unsigned long long xcr0 = osxsave ? isa_xgetbv() : 0;
    int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0;
    int tiles = (xcr0 & 0x60000) == 0x60000;
    c->avx = ymm && ((cx >> 28) & 1);
    c->fma = c->avx && ((cx >> 12) & 1);
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
      c->avx2 = c->avx && ((b >> 5) & 1);
      c->avx512f = zmm && ((b >> 16) & 1);
      c->avx512dq = zmm && ((b >> 17) & 1);
      c->avx512bw = zmm && ((b >> 30) & 1);
      c->avx512vl = zmm && ((b >> 31) & 1);
      c->amx_tile = tiles && ((d >> 24) & 1);
      c->amx_bf16 = c->amx_tile && ((d >> 22) & 1);
      unsigned a1, b1, c1, d1;
      if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) c->avx512_bf16 = zmm && ((a1 >> 5) & 1);
    }
    if (c->amx_tile && !isa_request_amx()) c->amx_tile = c->amx_bf16 = 0;
  }
#endif
  int avx512 = c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl && c->avx2 && c->fma;
  c->best = c->amx_tile && avx512 ? CNN_ISA_AMX
            : avx512              ? CNN_ISA_AVX512
            : c->avx2 && c->fma   ? CNN_ISA_AVX2
                                  : CNN_ISA_BASELINE;
  snprintf(c->features, sizeof c->features,
           "sse2=%d avx=%d avx2=%d fma=%d avx512f=%d avx512bw=%d avx512dq=%d avx512vl=%d "
           "avx512_bf16=%d amx_tile=%d amx_bf16=%d",
           c->sse2, c->avx, c->avx2, c->fma, c->avx512f, c->avx512bw, c->avx512dq, c->avx512vl,
           c->avx512_bf16, c->amx_tile, c->amx_bf16);
}

static const isa_cpu *isa_get(void) {
  pthread_once(&isa_once, isa_read);
  return &isa_found;
}

static const char *const isa_names[CNN_ISA_COUNT] = {"baseline", "avx2", "avx512", "amx"};

const char *cnn_isa_name(cnn_isa isa) {
  return (unsigned)isa < CNN_ISA_COUNT ? isa_names[isa] : "unknown";
}

cnn_isa cnn_isa_cpu(void) { return isa_get()->best; }

const char *cnn_isa_features(void) { return isa_get()->features; }

const char *cnn_isa_cpu_name(void) {
  const char *s = isa_get()->brand;
  while (*s == ' ') s++;
  return *s ? s : "unknown";
}

const char *cnn_isa_gemm_kernel(cnn_isa isa) {
  return isa >= CNN_ISA_AVX512 ? "avx512 12x32"
         : isa == CNN_ISA_AVX2 ? "avx2 6x16"
                               : "baseline 4x8";
}

const char *cnn_isa_loops(cnn_isa isa) {
  return isa >= CNN_ISA_AVX512 ? "avx512" : isa == CNN_ISA_AVX2 ? "avx2" : "baseline";
}

cnn_bf16 cnn_isa_bf16(cnn_isa isa) {
  const isa_cpu *c = isa_get();
  if (isa > c->best || isa < CNN_ISA_AVX512 || !c->avx512_bf16) return CNN_BF16_NONE;
  /* A core with AMX runs VDPBF16PS no faster than its fp32 FMAs, so there
   * the AVX-512 kernel lost to fp32 (0.6x over a training step, see
   * gemm_bf16.c): a level capped below amx keeps fp32 products. */
  if (c->amx_bf16) return isa >= CNN_ISA_AMX ? CNN_BF16_AMX : CNN_BF16_NONE;
  return CNN_BF16_AVX512;
}

const char *cnn_isa_gemm_bf16_kernel(cnn_isa isa) {
  static const char *const names[] = {"none (fp32)", "avx512-bf16 8x32", "amx-bf16 32x32"};
  return names[cnn_isa_bf16(isa)];
}

/* The first feature of the level that this CPU lacks. */
static const char *isa_missing(const isa_cpu *c, cnn_isa isa) {
  if (isa >= CNN_ISA_AVX2) {
    if (!c->avx2) return "avx2";
    if (!c->fma) return "fma";
  }
  if (isa >= CNN_ISA_AVX512) {
    if (!c->avx512f) return "avx512f";
    if (!c->avx512bw) return "avx512bw";
    if (!c->avx512dq) return "avx512dq";
    if (!c->avx512vl) return "avx512vl";
  }
  if (isa >= CNN_ISA_AMX && !c->amx_tile) return "amx_tile";
  return NULL;
}

int cnn_isa_parse(const char *name, cnn_isa *out, char *err) {
  for (int i = 0; i < CNN_ISA_COUNT; i++) {
    if (strcmp(name, isa_names[i]) != 0) continue;
    const char *missing = isa_missing(isa_get(), (cnn_isa)i);
    if (missing)
      return cnn_error(err, CNN_ERROR,
                       "isa \"%s\" needs %s, which this CPU lacks (it has up to \"%s\")", name,
                       missing, cnn_isa_name(cnn_isa_cpu()));
    *out = (cnn_isa)i;
    return CNN_OK;
  }
  return cnn_error(err, CNN_ERROR, "isa must be one of baseline, avx2, avx512, amx; got \"%.40s\"",
                   name);
}

int cnn_isa_default(cnn_isa *out, char *err) {
  const char *env = getenv("CNN_ISA");
  *out = cnn_isa_cpu();
  if (!env || !*env) return CNN_OK;
  char why[CNN_ERRMAX];
  cnn_isa cap;
  if (cnn_isa_parse(env, &cap, why))
    return cnn_error(err, CNN_ERROR, "CNN_ISA=%.40s: %.180s", env, why);
  if (cap < *out) *out = cap;
  return CNN_OK;
}
