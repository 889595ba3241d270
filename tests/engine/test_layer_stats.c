/*
 * test_layer_stats.c - the training option layer_stats: what cnn_train
 * reports per layer (mean |kernel gradient|, kernel norm, update-to-weight
 * ratio, share of zero outputs) equals a direct computation on the same
 * step -- each layer's outputs from the reference twins (twins.h), the
 * gradients and the update from the public arenas -- and is the same for
 * pools of 1, 2 and 3 threads when steps are sampled.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn.h"
#include "json.h"
#include "mnist_subset.h"
#include "twins.h"

#define NROWS 600
#define NLAYERS 6

/* The layers; make(k) builds the first k. */
static const char *const layer_json[NLAYERS] = {
    "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"activation\":\"relu\"}",
    "{\"type\":\"maxpool\",\"size\":2}",
    "{\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"padding\":\"same\",\"activation\":\"tanh\"}",
    "{\"type\":\"flatten\"}",
    "{\"type\":\"dense\",\"units\":16,\"activation\":\"relu\"}",
    "{\"type\":\"dense\",\"units\":10}"};

static cnn_net *make(int k, uint64_t seed) {
  char json[1024], err[CNN_ERRMAX];
  size_t len = (size_t)snprintf(json, sizeof json, "{\"input\":[28,28,1],\"layers\":[");
  for (int i = 0; i < k; i++)
    len += (size_t)snprintf(json + len, sizeof json - len, "%s%s", i ? "," : "", layer_json[i]);
  snprintf(json + len, sizeof json - len, "]}");
  cnn_spec spec;
  cnn_net *net = NULL;
  if (cnn_spec_parse(&spec, json, err) || cnn_net_new(&net, &spec, err)) {
    fprintf(stderr, "%s\n", err);
    return NULL;
  }
  cnn_net_init(net, seed);
  return net;
}

static int sgd(cnn_optim *opt, const cnn_net *net) {
  char err[CNN_ERRMAX];
  const char *json = "{\"name\":\"sgd\",\"learning_rate\":0.1,\"momentum\":0.5}";
  cnn_json *j = NULL;
  cnn_optim_config cfg;
  int rc = cnn_json_parse(&j, json, strlen(json), err) || cnn_optim_parse(&cfg, j, err) ||
           cnn_optim_init(opt, &cfg, cnn_net_nparams(net), err);
  cnn_json_free(j);
  return rc;
}

typedef struct capture {
  int epochs;
  cnn_layer_stat stats[4][NLAYERS];
} capture;

static int on_epoch(void *ctx, const cnn_epoch_stats *s, char *err) {
  (void)err;
  capture *c = ctx;
  if (s->layers && c->epochs < 4) memcpy(c->stats[c->epochs], s->layers, sizeof c->stats[0]);
  c->epochs++;
  return CNN_OK;
}

static int train(cnn_net *net, const cnn_dataset *data, int batch, int epochs, int shuffle,
                 cnn_threads *pool, capture *c) {
  char err[CNN_ERRMAX];
  cnn_optim opt = {0};
  cnn_train_result res;
  if (sgd(&opt, net)) return CNN_ERROR;
  cnn_net_set_pool(net, pool);
  cnn_train_config cfg = {.epochs = epochs,
                          .batch_size = batch,
                          .shuffle = shuffle,
                          .seed = 9,
                          .first_epoch = 1,
                          .layer_stats = 1,
                          .on_epoch = on_epoch,
                          .ctx = c};
  int rc = cnn_train(net, &opt, data, NULL, &cfg, &res, err);
  if (rc) fprintf(stderr, "train: %s\n", err);
  cnn_optim_clear(&opt);
  cnn_net_set_pool(net, NULL);
  return rc;
}

/* Within 1e-5 relative, and NaN where NaN is expected: the engine sums
 * float lanes over blocks of 256 values (at most 256 * 2^-24 = 1.5e-5 of
 * the sum of magnitudes, far less in practice: about 1e-8 here); a wrong
 * term, layer or formula is off by far more. */
static int close(double got, double want) {
  if (isnan(want)) return isnan(got);
  return fabs(got - want) <= 1e-5 * fabs(want) + 1e-15;
}

/* One batch, one epoch, not shuffled (the same order of rows, so the same
 * sums): the reported statistics are those of the single step, recomputed
 * here. */
static void test_direct(const uint8_t *images, const uint8_t *labels) {
  const int n = 48;
  cnn_dataset data = {.images = images, .labels = labels, .count = (size_t)n};
  cnn_net *net = make(NLAYERS, 5), *twin = make(NLAYERS, 5);
  float *before = NULL;
  capture c = {0};
  if (!CHECK(net && twin)) goto done;
  if (!CHECK(train(net, &data, n, 1, 0, NULL, &c) == CNN_OK) || !CHECK_EQ_INT(c.epochs, 1))
    goto done;

  /* The same step on the twin, by hand. */
  char err[CNN_ERRMAX];
  cnn_optim opt = {0};
  if (!CHECK(sgd(&opt, twin) == 0) || !CHECK(cnn_net_reserve(twin, n, 1, err) == CNN_OK)) goto done;
  float *x = cnn_net_input_buffer(twin);
  for (size_t j = 0; j < (size_t)n * 784; j++) x[j] = images[j] / 255.0f;
  cnn_net_forward(twin, n, 1);
  int correct;
  cnn_net_loss(twin, labels, n, 0, &correct);
  cnn_net_backward(twin, n);
  size_t np = cnn_net_nparams(twin);
  before = malloc(np * sizeof *before);
  if (!CHECK(before != NULL)) goto done;
  memcpy(before, cnn_net_params(twin), np * sizeof *before);
  const float *g = cnn_net_grads(twin);
  double grad[NLAYERS], norm[NLAYERS], ratio[NLAYERS];
  for (int i = 0; i < NLAYERS; i++) grad[i] = norm[i] = ratio[i] = NAN;
  cnn_optim_step(&opt, cnn_net_params(twin), g, NULL);
  const float *after = cnn_net_params(twin);
  /* The kernels: tensors named "<layer>/kernel", in layer order. */
  for (int t = 0, layer = -1; t < cnn_net_tensors(twin); t++) {
    cnn_tensor_info ti = cnn_net_tensor(twin, t);
    if (!strstr(ti.name, "/kernel")) continue;
    while (++layer < NLAYERS && strncmp(cnn_net_layer(twin, layer).name, ti.name,
                                        strlen(cnn_net_layer(twin, layer).name)))
      ;
    if (!CHECK(layer < NLAYERS)) break;
    double sg = 0, s0 = 0, s1 = 0, sd = 0;
    for (size_t j = ti.offset; j < ti.offset + ti.count; j++) {
      sg += fabsf(g[j]);
      s0 += (double)before[j] * before[j], s1 += (double)after[j] * after[j];
      sd += ((double)after[j] - before[j]) * ((double)after[j] - before[j]);
    }
    grad[layer] = sg / ti.count, norm[layer] = sqrt(s1), ratio[layer] = sqrt(sd / s0);
  }
  /* Each layer's outputs, from the twins with the weights before the step. */
  const float *kernel[NLAYERS] = {NULL}, *bias[NLAYERS] = {NULL};
  for (int t = 0; t < cnn_net_tensors(twin); t++) {
    cnn_tensor_info ti = cnn_net_tensor(twin, t);
    for (int k = 0; k < NLAYERS; k++) {
      const char *ln = cnn_net_layer(twin, k).name;
      size_t len = strlen(ln);
      if (strncmp(ti.name, ln, len) || ti.name[len] != '/') continue;
      if (!strcmp(ti.name + len, "/kernel")) kernel[k] = before + ti.offset;
      if (!strcmp(ti.name + len, "/bias")) bias[k] = before + ti.offset;
    }
  }
  size_t sizes[NLAYERS] = {(size_t)n * 26 * 26 * 4, (size_t)n * 13 * 13 * 4,
                           (size_t)n * 13 * 13 * 6, (size_t)n * 1014,
                           (size_t)n * 16,          (size_t)n * 10};
  double *yd = malloc(sizes[0] * sizeof *yd);
  float *out[NLAYERS] = {NULL};
  for (int k = 0; k < NLAYERS; k++) out[k] = malloc(sizes[k] * sizeof(float));
  twin_geom g0 = {n, 28, 28, 1, 3, 3, 1, 1, 0, 0, 0, 0, 0};
  twin_geom g1 = {n, 26, 26, 4, 2, 2, 2, 2, 0, 0, 0, 0, 0};
  twin_geom g2 = {n, 13, 13, 4, 3, 3, 1, 1, 1, 0, 0, 0, 0};
  if (!CHECK(yd && out[0] && out[1] && out[2] && out[3] && out[4] && out[5]) ||
      !CHECK(twin_geom_init(&g0) && twin_geom_init(&g1) && twin_geom_init(&g2)))
    goto done;
  for (size_t j = 0; j < (size_t)n * 784; j++) x[j] = images[j] / 255.0f;
  twin_conv2d_forward(yd, NULL, x, kernel[0], bias[0], 1, &g0, 4);
  for (size_t j = 0; j < sizes[0]; j++) out[0][j] = (float)yd[j];
  twin_maxpool_forward(yd, NULL, out[0], &g1);
  for (size_t j = 0; j < sizes[1]; j++) out[1][j] = (float)yd[j];
  twin_conv2d_forward(yd, NULL, out[1], kernel[2], bias[2], 0, &g2, 6);
  for (size_t j = 0; j < sizes[2]; j++) out[2][j] = (float)tanh(yd[j]);
  memcpy(out[3], out[2], sizes[3] * sizeof(float));
  twin_dense_forward(yd, NULL, out[3], kernel[4], bias[4], 1, n, 1014, 16);
  for (size_t j = 0; j < sizes[4]; j++) out[4][j] = (float)yd[j];
  twin_dense_forward(yd, NULL, out[4], kernel[5], bias[5], 0, n, 16, 10);
  for (size_t j = 0; j < sizes[5]; j++) out[5][j] = (float)yd[j];
  int bad = 0;
  for (int k = 0; k < NLAYERS; k++) {
    size_t zeros = 0;
    for (size_t j = 0; j < sizes[k]; j++) zeros += out[k][j] == 0.0f;
    const cnn_layer_stat *s = &c.stats[0][k];
    double want[4] = {grad[k], norm[k], ratio[k], (double)zeros / sizes[k]};
    double got[4] = {s->grad_mean_abs, s->weight_norm, s->update_ratio, s->zero_fraction};
    for (int q = 0; q < 4; q++) {
      /* A ReLU input within rounding of 0 may fall either way: a few
       * outputs of slack in the share of zeros, none elsewhere. */
      int ok = q < 3 ? close(got[q], want[q]) : fabs(got[q] - want[q]) <= 3.0 / sizes[k];
      if (!ok) {
        fprintf(stderr, "layer %d (%s) statistic %d: %.17g, direct %.17g\n", k,
                cnn_net_layer(twin, k).name, q, got[q], want[q]);
        bad++;
      }
    }
    printf("%-14s grad %-10.4g norm %-10.4g ratio %-10.4g zeros %.4f\n",
           cnn_net_layer(twin, k).name, got[0], got[1], got[2], got[3]);
  }
  free(yd);
  for (int k = 0; k < NLAYERS; k++) free(out[k]);
  CHECK_EQ_INT(bad, 0);
  /* The ReLU layers have zeros, the logits none. (So has the tanh layer,
   * where its whole window of input is 0 and its bias still 0.) */
  CHECK(c.stats[0][0].zero_fraction > 0.01 && c.stats[0][4].zero_fraction > 0.01);
  CHECK(c.stats[0][5].zero_fraction == 0.0);
  cnn_optim_clear(&opt);
done:
  free(before);
  cnn_net_free(net);
  cnn_net_free(twin);
}

/* More batches than sampled steps, shuffled: the same numbers on 1, 2 and
 * 3 threads, finite and positive where they exist. */
static void test_threads(const uint8_t *images, const uint8_t *labels) {
  cnn_dataset data = {.images = images, .labels = labels, .count = NROWS};
  capture c[3];
  for (int p = 0; p < 3; p++) {
    memset(&c[p], 0, sizeof c[p]);
    cnn_threads *pool = p ? check_pool(p + 1, cnn_isa_cpu()) : NULL;
    cnn_net *net = make(NLAYERS, 7);
    if (!CHECK(net != NULL)) return;
    CHECK(train(net, &data, 16, 3, 1, pool, &c[p]) == CNN_OK);
    CHECK_EQ_INT(c[p].epochs, 3);
    cnn_net_free(net);
    cnn_threads_free(pool);
  }
  CHECK(memcmp(c[0].stats, c[1].stats, sizeof c[0].stats) == 0);
  CHECK(memcmp(c[0].stats, c[2].stats, sizeof c[0].stats) == 0);
  for (int e = 0; e < 3; e++)
    for (int k = 0; k < NLAYERS; k++) {
      const cnn_layer_stat *s = &c[0].stats[e][k];
      int kernel = k == 0 || k == 2 || k == 4 || k == 5;
      CHECK(kernel ? s->grad_mean_abs > 0 && s->weight_norm > 0 && s->update_ratio > 0
                   : isnan(s->grad_mean_abs) && isnan(s->weight_norm) && isnan(s->update_ratio));
      CHECK(s->zero_fraction >= 0 && s->zero_fraction <= 1);
    }
}

int main(void) {
  uint8_t *images, *labels;
  if (!CHECK(mnist_subset("train", NROWS, &images, &labels) == 0)) return check_done();
  test_direct(images, labels);
  test_threads(images, labels);
  free(images);
  free(labels);
  return check_done();
}
