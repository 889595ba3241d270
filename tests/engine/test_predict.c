/*
 * test_predict.c - inference of the notebook's model takes different paths
 * for one image (products shared by the threads, the first dense layer split
 * by k block) and for batches (convolutions in chunks of images per thread,
 * the layers before the first dense one 32 images at a time: 45 images make
 * a whole slice and a part), with 1, 2 or 3 threads. Every path must give
 * every image bit for bit the same probabilities, and the forward pass of
 * training the same outputs as inference.
 */
#include <stdlib.h>

#include "check.h"
#include "cnn.h"
#include "rng.h"

#define IMAGES 64
#define PIXELS 784
#define CLASSES 10

/* Probabilities of all images, predicted `per_call` at a time. */
static int predict(cnn_net *net, float *out, const uint8_t *images, int per_call) {
  char err[CNN_ERRMAX];
  for (int i = 0; i < IMAGES; i += per_call) {
    int n = IMAGES - i < per_call ? IMAGES - i : per_call;
    if (cnn_net_predict(net, out + (size_t)i * CLASSES, images + (size_t)i * PIXELS, (size_t)n,
                        err)) {
      fprintf(stderr, "test_predict: %s\n", err);
      return 0;
    }
  }
  return 1;
}

int main(void) {
  char err[CNN_ERRMAX];
  cnn_spec spec;
  cnn_net *net = NULL;
  uint8_t *images = malloc((size_t)IMAGES * PIXELS);
  float *ref = malloc(sizeof(float) * IMAGES * CLASSES);
  float *out = malloc(sizeof(float) * IMAGES * CLASSES);
  if (!CHECK(images && ref && out) || !CHECK(cnn_spec_parse(&spec, NULL, err) == CNN_OK) ||
      !CHECK(cnn_net_new(&net, &spec, err) == CNN_OK))
    return check_done();
  cnn_net_init(net, 3);
  cnn_rng rng;
  cnn_rng_seed(&rng, 11);
  for (size_t i = 0; i < (size_t)IMAGES * PIXELS; i++)
    images[i] = (uint8_t)(cnn_rng_next(&rng) >> 56);

  /* The reference: the whole set in one call on the calling thread. */
  CHECK(predict(net, ref, images, IMAGES));
  static const int per_call[] = {1, 3, 17, 45, IMAGES};
  int mismatches = 0, runs = 0;
  for (int threads = 1; threads <= 3; threads++) {
    cnn_threads *pool = NULL;
    if (!CHECK(cnn_threads_new(&pool, threads, err) == CNN_OK)) break;
    cnn_net_set_pool(net, pool);
    for (size_t p = 0; p < sizeof per_call / sizeof per_call[0]; p++) {
      memset(out, 0, sizeof(float) * IMAGES * CLASSES);
      if (!CHECK(predict(net, out, images, per_call[p]))) break;
      mismatches += memcmp(out, ref, sizeof(float) * IMAGES * CLASSES) != 0;
      runs++;
    }
    /* The training forward (pre-activations, kept columns) computes the
     * same logits as inference. */
    if (CHECK(cnn_net_reserve(net, IMAGES, 1, err) == CNN_OK)) {
      float *x = cnn_net_input_buffer(net);
      for (size_t i = 0; i < (size_t)IMAGES * PIXELS; i++) x[i] = images[i] / 255.0f;
      const float *logits = cnn_net_forward(net, IMAGES, 1);
      float *probs = malloc(sizeof(float) * IMAGES * CLASSES);
      if (CHECK(probs)) {
        /* Softmax as cnn_net_predict applies it (logits out, no dropout). */
        for (int i = 0; i < IMAGES; i++) {
          const float *z = logits + (size_t)i * CLASSES;
          float m = z[0], sum = 0;
          for (int j = 1; j < CLASSES; j++) m = z[j] > m ? z[j] : m;
          for (int j = 0; j < CLASSES; j++) sum += expf(z[j] - m);
          for (int j = 0; j < CLASSES; j++) probs[(size_t)i * CLASSES + j] = expf(z[j] - m) / sum;
        }
        double worst = 0;
        for (size_t i = 0; i < (size_t)IMAGES * CLASSES; i++)
          worst = fmax(worst, fabs(probs[i] - ref[i]));
        if (!CHECK(worst < 1e-6)) fprintf(stderr, "  training forward differs by %g\n", worst);
      }
      free(probs);
    }
    cnn_net_set_pool(net, NULL);
    cnn_threads_free(pool);
  }
  CHECK_EQ_INT(runs, 15);
  CHECK_EQ_INT(mismatches, 0);

  /* Batches multiply by the dense kernels packed once (cnn_net_predict packs
   * them; single images read them in place). Changed weights, and a pool
   * capped at another instruction set, must be seen by the next batch. */
  for (int isa = CNN_ISA_BASELINE; isa < CNN_ISA_COUNT; isa++) {
    if (isa == CNN_ISA_AMX || !check_isa((cnn_isa)isa)) continue;
    cnn_threads *pool = check_pool(2, (cnn_isa)isa);
    if (!pool) break;
    cnn_net_set_pool(net, pool);
    float *batch = malloc(sizeof(float) * IMAGES * CLASSES);
    if (CHECK(batch) && CHECK(predict(net, batch, images, IMAGES))) {
      float *w = cnn_net_params(net);
      for (size_t i = 0; i < cnn_net_nparams(net); i++) w[i] *= 0.75f;
      CHECK(predict(net, out, images, IMAGES));
      CHECK(memcmp(out, batch, sizeof(float) * IMAGES * CLASSES) != 0);
      CHECK(predict(net, batch, images, 1));
      if (!CHECK(memcmp(out, batch, sizeof(float) * IMAGES * CLASSES) == 0))
        fprintf(stderr, "  isa %s: a batch after changed weights differs from single images\n",
                cnn_isa_name((cnn_isa)isa));
      /* And what a network that never predicted with the old weights gives
       * (the convolutions' kernel transforms are kept for single images
       * too). */
      cnn_net *fresh = NULL;
      cnn_spec spec2;
      if (CHECK(cnn_spec_parse(&spec2, NULL, err) == CNN_OK) &&
          CHECK(cnn_net_new(&fresh, &spec2, err) == CNN_OK)) {
        cnn_net_set_pool(fresh, pool);
        memcpy(cnn_net_params(fresh), cnn_net_params(net),
               sizeof(float) * (cnn_net_nparams(net) + cnn_net_nstate(net)));
        float *again = malloc(sizeof(float) * IMAGES * CLASSES);
        if (CHECK(again) && CHECK(predict(fresh, again, images, 1)))
          CHECK(memcmp(again, batch, sizeof(float) * IMAGES * CLASSES) == 0);
        free(again);
        cnn_net_free(fresh);
      }
      /* The same pool capped at the baseline kernels, then back. */
      cnn_threads_set_isa(pool, CNN_ISA_BASELINE);
      CHECK(predict(net, out, images, IMAGES));
      CHECK(predict(net, batch, images, 1));
      CHECK(memcmp(out, batch, sizeof(float) * IMAGES * CLASSES) == 0);
      cnn_threads_set_isa(pool, (cnn_isa)isa);
      CHECK(predict(net, out, images, IMAGES));
      CHECK(predict(net, batch, images, 1));
      CHECK(memcmp(out, batch, sizeof(float) * IMAGES * CLASSES) == 0);
    }
    free(batch);
    cnn_net_set_pool(net, NULL);
    cnn_threads_free(pool);
  }

  /* Packs made for one instruction set, then out of memory while making
   * them again for a wider one (whose packed kernel is larger): batches go
   * on unpacked, and back at the first set none reads the freed packs
   * (AddressSanitizer would see it). */
  cnn_spec spec3;
  cnn_net *small = NULL; /* a new network: its packs sized for baseline first */
  if (check_isa(CNN_ISA_AVX2) && CHECK(cnn_spec_parse(&spec3, NULL, err) == CNN_OK) &&
      CHECK(cnn_net_new(&small, &spec3, err) == CNN_OK)) {
    cnn_net_init(small, 3);
    cnn_threads *pool = check_pool(2, CNN_ISA_BASELINE);
    float *batch = malloc(sizeof(float) * IMAGES * CLASSES);
    if (pool && CHECK(batch)) {
      cnn_net_set_pool(small, pool);
      CHECK(predict(small, batch, images, 1));
      CHECK(predict(small, out, images, IMAGES)); /* packs for baseline */
      CHECK(memcmp(out, batch, sizeof(float) * IMAGES * CLASSES) == 0);
      cnn_threads_set_isa(pool, CNN_ISA_AVX2);
      CHECK(predict(small, batch, images, 1));
      cnn_alloc_fail_at(1); /* the larger avx2 packs */
      CHECK(predict(small, out, images, IMAGES));
      cnn_alloc_fail_at(0);
      CHECK(memcmp(out, batch, sizeof(float) * IMAGES * CLASSES) == 0);
      cnn_threads_set_isa(pool, CNN_ISA_BASELINE);
      CHECK(predict(small, batch, images, 1));
      CHECK(predict(small, out, images, IMAGES));
      CHECK(memcmp(out, batch, sizeof(float) * IMAGES * CLASSES) == 0);
      cnn_net_set_pool(small, NULL);
    }
    free(batch);
    cnn_threads_free(pool);
  }
  cnn_net_free(small);
  cnn_net_free(net);
  free(images), free(ref), free(out);
  return check_done();
}
