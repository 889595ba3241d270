/*
 * test_train.c - training on real MNIST digits: a small CNN learns a subset
 * well in seconds with every optimizer of the notes; a seed reproduces a run
 * bit for bit, for any thread count, and training in two calls equals one;
 * interrupts, early stopping and the time budget behave.
 */
#include "check.h"
#include "cnn.h"
#include "json.h"
#include "mnist_subset.h"

#define NTRAIN 3000
#define NTEST 1000

static const char *small_cnn =
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,"
    "\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"conv2d\","
    "\"filters\":16,\"kernel\":3,\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},"
    "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":64,\"activation\":\"relu\"},"
    "{\"type\":\"dropout\",\"rate\":0.2},{\"type\":\"dense\",\"units\":10}]}";

static cnn_dataset train, test;

typedef struct {
  int epochs_seen;
  int stop_at_batch; /* interrupt after this many batches (0: never) */
  int batches;
  double last_loss[16];
} watch;

static int on_batch(void *ctx, const cnn_batch_progress *p) {
  watch *w = ctx;
  (void)p;
  w->batches++;
  return w->stop_at_batch && w->batches >= w->stop_at_batch;
}

static int on_epoch(void *ctx, const cnn_epoch_stats *s, char *err) {
  (void)err;
  watch *w = ctx;
  if (w->epochs_seen < 16) w->last_loss[w->epochs_seen] = s->loss;
  w->epochs_seen++;
  return CNN_OK;
}

static cnn_net *make(const char *spec_json, uint64_t seed) {
  char err[CNN_ERRMAX];
  cnn_spec spec;
  cnn_net *net = NULL;
  if (cnn_spec_parse(&spec, spec_json, err) || cnn_net_new(&net, &spec, err)) {
    fprintf(stderr, "%s\n", err);
    return NULL;
  }
  cnn_net_init(net, seed);
  return net;
}

static int optim(cnn_optim *opt, const cnn_net *net, const char *json) {
  char err[CNN_ERRMAX];
  cnn_json *j = NULL;
  cnn_optim_config cfg;
  int rc = cnn_json_parse(&j, json, strlen(json), err) || cnn_optim_parse(&cfg, j, err) ||
           cnn_optim_init(opt, &cfg, cnn_net_nparams(net), err);
  cnn_json_free(j);
  return rc;
}

/* Trains a fresh small CNN; returns test accuracy (and the net if wanted). */
static double run(const char *opt_json, int epochs, int threads, uint64_t seed, cnn_net **keep,
                  watch *w) {
  char err[CNN_ERRMAX];
  cnn_threads *pool = NULL;
  cnn_net *net = make(small_cnn, seed);
  cnn_optim opt;
  if (!net || optim(&opt, net, opt_json)) return -1;
  if (threads > 1 && cnn_threads_new(&pool, threads, err)) return -1;
  cnn_net_set_pool(net, pool);
  watch local = {0};
  cnn_train_config cfg = {.epochs = epochs,
                          .batch_size = 32,
                          .shuffle = 1,
                          .seed = seed,
                          .first_epoch = 1,
                          .on_batch = on_batch,
                          .on_epoch = on_epoch,
                          .ctx = w ? w : &local};
  cnn_train_result res;
  int rc = cnn_train(net, &opt, &train, NULL, &cfg, &res, err);
  double loss, acc = -1;
  if (rc == CNN_OK)
    cnn_evaluate(net, &test, 0, NULL, NULL, &loss, &acc, err);
  else
    fprintf(stderr, "train: %s\n", err);
  cnn_optim_clear(&opt);
  cnn_net_set_pool(net, NULL);
  cnn_threads_free(pool);
  if (keep)
    *keep = net;
  else
    cnn_net_free(net);
  return acc;
}

/* cnn_train updates each layer's weights inside backward, as soon as its
 * gradients are final (cnn_net_backward_each); that must be bit for bit
 * the whole backward followed by one optimizer step, as done here by hand:
 * the same rows in order (no shuffle), weights and optimizer state compared
 * after 12 steps, for optimizers with one to three state arrays and weight
 * decay, on pools of 2 and 3 (chunks of the update split across threads).
 * The first model has a batchnorm layer (gamma and beta but no kernel;
 * moving statistics past the trainable values); the others a dense kernel
 * big enough to go to the optimizer band by band (1352 x 200, with a short
 * last band and dx; 784 x 400 as the first layer, without dx). */
static const char *update_specs[] = {
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,"
    "\"activation\":\"relu\"},{\"type\":\"batchnorm\"},{\"type\":\"maxpool\",\"size\":2},"
    "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":40,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":10}]}",
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,"
    "\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":200,\"activation\":\"relu\"},{\"type\":\"dense\",\"units\":10}]"
    "}",
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"dense\",\"units\":400,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":10}]}"};

static void test_update_in_backward(const char *spec, const char *opt_json, int threads) {
  const int n = 32, steps = 12;
  char err[CNN_ERRMAX];
  cnn_threads *pool = NULL;
  cnn_net *a = make(spec, 5), *b = make(spec, 5);
  cnn_optim oa = {0}, ob = {0};
  if (!CHECK(a && b) || !CHECK(cnn_threads_new(&pool, threads, err) == CNN_OK) ||
      !CHECK(optim(&oa, a, opt_json) == 0 && optim(&ob, b, opt_json) == 0))
    goto done;
  cnn_net_set_pool(a, pool), cnn_net_set_pool(b, pool);
  cnn_dataset rows = {.images = train.images, .labels = train.labels, .count = (size_t)n * steps};
  cnn_train_config cfg = {.epochs = 1, .batch_size = n, .first_epoch = 1};
  cnn_train_result res;
  if (!CHECK(cnn_train(a, &oa, &rows, NULL, &cfg, &res, err) == CNN_OK)) goto done;
  if (!CHECK(cnn_net_reserve(b, n, 1, err) == CNN_OK)) goto done;
  for (int t = 0; t < steps; t++) {
    float *x = cnn_net_input_buffer(b);
    const uint8_t *im = train.images + (size_t)t * n * 784;
    for (size_t j = 0; j < (size_t)n * 784; j++) x[j] = im[j] / 255.0f;
    int correct;
    cnn_net_forward(b, n, 1);
    cnn_net_loss(b, train.labels + (size_t)t * n, n, 0, &correct);
    cnn_net_backward(b, n);
    cnn_optim_step(&ob, cnn_net_params(b), cnn_net_grads(b), pool);
  }
  size_t np = cnn_net_nparams(a);
  CHECK_EQ_INT((int)oa.step, steps);
  if (!CHECK(memcmp(cnn_net_params(a), cnn_net_params(b), np * sizeof(float)) == 0))
    fprintf(stderr, "  %s, %d threads, %.60s: weights differ\n", opt_json, threads, spec);
  CHECK(memcmp(oa.state, ob.state, (size_t)oa.nslots * np * sizeof(float)) == 0);
  /* And the weights did move. */
  cnn_net *c = make(spec, 5);
  if (CHECK(c != NULL)) CHECK(memcmp(cnn_net_params(a), cnn_net_params(c), np * sizeof(float)));
  cnn_net_free(c);
done:
  cnn_optim_clear(&oa), cnn_optim_clear(&ob);
  if (a) cnn_net_set_pool(a, NULL);
  if (b) cnn_net_set_pool(b, NULL);
  cnn_net_free(a), cnn_net_free(b);
  cnn_threads_free(pool);
}

int main(void) {
  uint8_t *ti, *tl, *vi, *vl;
  if (!CHECK(mnist_subset("train", NTRAIN, &ti, &tl) == 0)) return check_done();
  if (!CHECK(mnist_subset("t10k", NTEST, &vi, &vl) == 0)) return check_done();
  train = (cnn_dataset){.images = ti, .labels = tl, .count = NTRAIN};
  test = (cnn_dataset){.images = vi, .labels = vl, .count = NTEST};

  /* Each optimizer of the notes learns 3000 digits in 3 epochs. Plain SGD
   * and Adagrad get larger rates than Keras' defaults (0.01, 0.001), with
   * which they need many more epochs. */
  const char *optims[] = {"\"adam\"",
                          "{\"name\":\"sgd\",\"learning_rate\":0.1}",
                          "\"momentum\"",
                          "{\"name\":\"sgd\",\"momentum\":0.9,\"nesterov\":true}",
                          "\"rmsprop\"",
                          "{\"name\":\"adagrad\",\"learning_rate\":0.05}",
                          "{\"name\":\"adamax\",\"learning_rate\":0.002}"};
  const double floor_acc[] = {0.90, 0.88, 0.90, 0.90, 0.90, 0.88, 0.88};
  for (size_t i = 0; i < sizeof optims / sizeof optims[0]; i++) {
    double acc = run(optims[i], 3, 1, 1, NULL, NULL);
    printf("%-50s test accuracy %.3f\n", optims[i], acc);
    if (!CHECK(acc >= floor_acc[i]))
      fprintf(stderr, "  %s: %.3f < %.2f\n", optims[i], acc, floor_acc[i]);
  }

  for (size_t i = 0; i < sizeof update_specs / sizeof update_specs[0]; i++)
    for (int threads = 2; threads <= (i ? 3 : 2); threads++) {
      test_update_in_backward(update_specs[i], "\"adam\"", threads);
      test_update_in_backward(update_specs[i], "{\"name\":\"adamw\",\"weight_decay\":0.01}",
                              threads);
      test_update_in_backward(update_specs[i],
                              "{\"name\":\"rmsprop\",\"momentum\":0.5,\"centered\":true}", threads);
      test_update_in_backward(update_specs[i], "\"momentum\"", threads);
    }

  /* Same seed, 1 or 2 threads, one call of 2 epochs or two calls of 1. */
  cnn_net *a = NULL, *b = NULL, *c = NULL;
  run("\"adam\"", 2, 1, 7, &a, NULL);
  run("\"adam\"", 2, 2, 7, &b, NULL);
  if (CHECK(a && b))
    CHECK(memcmp(cnn_net_params(a), cnn_net_params(b), cnn_net_nparams(a) * 4) == 0);
  {
    char err[CNN_ERRMAX];
    c = make(small_cnn, 7);
    cnn_optim opt;
    CHECK(optim(&opt, c, "\"adam\"") == 0);
    for (int e = 1; e <= 2; e++) {
      cnn_train_config cfg = {
          .epochs = 1, .batch_size = 32, .shuffle = 1, .seed = 7, .first_epoch = e};
      cnn_train_result res;
      CHECK(cnn_train(c, &opt, &train, NULL, &cfg, &res, err) == CNN_OK);
    }
    CHECK(memcmp(cnn_net_params(a), cnn_net_params(c), cnn_net_nparams(a) * 4) == 0);
    cnn_optim_clear(&opt);
  }
  cnn_net_free(a), cnn_net_free(b), cnn_net_free(c);

  /* An interrupt stops mid-epoch, after the completed epochs were reported. */
  {
    char err[CNN_ERRMAX];
    cnn_net *net = make(small_cnn, 3);
    cnn_optim opt;
    CHECK(optim(&opt, net, "\"adam\"") == 0);
    watch w = {.stop_at_batch = 94 + 10}; /* 94 batches per epoch */
    cnn_train_config cfg = {.epochs = 5,
                            .batch_size = 32,
                            .shuffle = 1,
                            .first_epoch = 1,
                            .on_batch = on_batch,
                            .on_epoch = on_epoch,
                            .ctx = &w};
    cnn_train_result res;
    CHECK_EQ_INT(cnn_train(net, &opt, &train, NULL, &cfg, &res, err), CNN_INTERRUPTED);
    CHECK_EQ_INT(w.epochs_seen, 1);
    CHECK_EQ_INT(res.epochs_run, 1);

    /* Early stopping: patience 1 on a rising validation loss (lr too high)
     * stops and restores the best epoch. */
    cnn_optim_clear(&opt);
    CHECK(optim(&opt, net, "{\"name\":\"sgd\",\"learning_rate\":0.0000001}") == 0);
    cnn_train_config es = {.epochs = 6,
                           .batch_size = 64,
                           .first_epoch = 2,
                           .patience = 1,
                           .min_delta = 1.0,
                           .restore_best = 1};
    CHECK(cnn_train(net, &opt, &train, &test, &es, &res, err) == CNN_OK);
    CHECK_EQ_INT(res.epochs_run, 2); /* no epoch improves by min_delta = 1 */
    CHECK(res.stopped_early);
    CHECK_EQ_INT(res.best_epoch, 2);

    /* A label beyond the output vector is refused before anything runs. */
    uint8_t bad_labels[NTRAIN];
    memcpy(bad_labels, tl, NTRAIN);
    bad_labels[41] = 10;
    cnn_dataset bad = {.images = ti, .labels = bad_labels, .count = NTRAIN};
    CHECK(cnn_train(net, &opt, &bad, NULL, &es, &res, err) == CNN_ERROR);
    CHECK_STR(err, "training row 42 has label 10 but the model has 10 classes");
    cnn_optim_clear(&opt);
    cnn_net_free(net);
  }
  free(ti), free(tl), free(vi), free(vl);
  return check_done();
}
