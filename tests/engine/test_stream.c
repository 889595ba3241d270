/*
 * test_stream.c - a streamed dataset (cnn_dataset.read): training through a
 * reader gives bit-identical weights to the same rows in memory (with and
 * without augmentation, one or two threads), validation and evaluation agree,
 * every epoch is one pass between begin and end, and a failed read stops
 * training with its message after the completed epochs were reported.
 */
#include <pthread.h>

#include "check.h"
#include "cnn.h"
#include "json.h"
#include "mnist_subset.h"

#define NTRAIN 500
#define NVAL 200

static const char *small_cnn =
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,"
    "\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"flatten\"},"
    "{\"type\":\"dropout\",\"rate\":0.2},{\"type\":\"dense\",\"units\":10}]}";

/* A reader over rows held in memory, as the SQLite face reads a table. */
typedef struct {
  const uint8_t *images, *labels;
  int reads, passes, open; /* calls of read, completed passes, inside a pass */
  int fail_at;             /* read call that fails (0: none) */
  int outside;             /* reads outside a pass */
  int threads_seen;        /* a read ran on another thread than the trainer */
  pthread_t trainer;
} source;

static int src_read(void *ctx, const uint32_t *idx, int n, uint8_t *images, uint8_t *labels,
                    char *err) {
  source *s = ctx;
  s->reads++;
  if (!s->open) s->outside++;
  if (!pthread_equal(pthread_self(), s->trainer)) s->threads_seen = 1;
  if (s->fail_at && s->reads == s->fail_at)
    return cnn_error(err, CNN_ERROR, "source row %u: label must be an integer 0..9; got NULL",
                     idx[0] + 1);
  for (int i = 0; i < n; i++) {
    memcpy(images + (size_t)i * 784, s->images + (size_t)idx[i] * 784, 784);
    labels[i] = s->labels[idx[i]];
  }
  return CNN_OK;
}

static int src_pass(void *ctx, int begin, char *err) {
  (void)err;
  source *s = ctx;
  if (begin == s->open)
    return cnn_error(err, CNN_ERROR, "pass %s twice", begin ? "begun" : "ended");
  s->open = begin;
  if (!begin) s->passes++;
  return CNN_OK;
}

static int epochs_seen;
static int on_epoch(void *ctx, const cnn_epoch_stats *st, char *err) {
  (void)ctx, (void)st, (void)err;
  epochs_seen++;
  return CNN_OK;
}

/* Trains a fresh net for `epochs`; returns it (NULL on failure, message in err). */
static cnn_net *train(const cnn_dataset *d, const cnn_dataset *val, int epochs, int threads,
                      const char *augment, int *rc_out, char *err, double *val_loss) {
  cnn_spec spec;
  cnn_net *net = NULL;
  cnn_threads *pool = NULL;
  cnn_optim opt = {0};
  cnn_json *aj = NULL;
  if (cnn_spec_parse(&spec, small_cnn, err) || cnn_net_new(&net, &spec, err)) return NULL;
  cnn_net_init(net, 7);
  if (threads > 1 && cnn_threads_new(&pool, threads, err)) return NULL;
  cnn_net_set_pool(net, pool);
  cnn_train_config cfg;
  cnn_train_config_defaults(&cfg);
  cfg.epochs = epochs, cfg.seed = 42, cfg.first_epoch = 1, cfg.on_epoch = on_epoch;
  if (augment && (cnn_json_parse(&aj, augment, strlen(augment), err) ||
                  cnn_augment_parse(&cfg.augment, aj, "augment", err)))
    return NULL;
  cnn_json_free(aj);
  cnn_train_result res;
  double before = NAN, acc;
  epochs_seen = 0;
  int rc = cnn_train(net, &opt, d, val, &cfg, &res, err);
  if (rc == CNN_OK && val && val_loss) {
    cnn_evaluate(net, val, 0, NULL, NULL, &before, &acc, err);
    *val_loss = before;
  }
  *rc_out = rc;
  cnn_optim_clear(&opt);
  cnn_net_set_pool(net, NULL);
  cnn_threads_free(pool);
  return net;
}

static int same_weights(cnn_net *a, cnn_net *b) {
  if (!a || !b) return 0;
  size_t n = cnn_net_nparams(a) + cnn_net_nstate(a);
  return !memcmp(cnn_net_params(a), cnn_net_params(b), n * sizeof(float));
}

int main(void) {
  uint8_t *ti, *tl, *vi, *vl;
  char err[CNN_ERRMAX];
  int rc;
  if (!CHECK(mnist_subset("train", NTRAIN, &ti, &tl) == 0)) return check_done();
  if (!CHECK(mnist_subset("t10k", NVAL, &vi, &vl) == 0)) return check_done();
  cnn_dataset mem = {ti, tl, NTRAIN, NULL, NULL, NULL, 0};
  cnn_dataset vmem = {vi, vl, NVAL, NULL, NULL, NULL, 0};
  static const char *augments[] = {NULL, "{\"rotation\":10,\"shift\":0.1,\"noise\":0.05}"};
  for (int a = 0; a < 2; a++)
    for (int threads = 1; threads <= 2; threads++) {
      source s = {ti, tl, 0, 0, 0, 0, 0, 0, pthread_self()};
      source v = {vi, vl, 0, 0, 0, 0, 0, 0, pthread_self()};
      cnn_dataset st = {NULL, NULL, NTRAIN, src_read, src_pass, &s, 0};
      cnn_dataset vst = {NULL, NULL, NVAL, src_read, src_pass, &v, 0};
      double l1 = NAN, l2 = NAN;
      cnn_net *x = train(&mem, &vmem, 2, threads, augments[a], &rc, err, &l1);
      CHECK_EQ_INT(rc, CNN_OK);
      cnn_net *y = train(&st, &vst, 2, threads, augments[a], &rc, err, &l2);
      if (!CHECK_EQ_INT(rc, CNN_OK)) fprintf(stderr, "%s\n", err);
      if (!CHECK(same_weights(x, y)))
        fprintf(stderr, "augment %s, %d threads: weights differ\n", augments[a] ? "on" : "off",
                threads);
      /* Validation after each epoch and the evaluation at the end read it
       * streamed too, with the same result. */
      CHECK(l1 == l2);
      CHECK_EQ_INT(s.passes, 2);
      CHECK_EQ_INT(v.passes, 3);
      CHECK_EQ_INT(s.reads, 2 * ((NTRAIN + 31) / 32));
      CHECK_EQ_INT(s.outside + v.outside, 0);
      CHECK(s.threads_seen); /* read ahead on a thread */
      cnn_net_free(x);
      cnn_net_free(y);
    }

  /* same_thread: every read on the calling thread, the same weights. */
  {
    source s = {ti, tl, 0, 0, 0, 0, 0, 0, pthread_self()};
    cnn_dataset st = {NULL, NULL, NTRAIN, src_read, src_pass, &s, 1};
    cnn_net *x = train(&mem, NULL, 1, 1, NULL, &rc, err, NULL);
    cnn_net *y = train(&st, NULL, 1, 1, NULL, &rc, err, NULL);
    CHECK_EQ_INT(rc, CNN_OK);
    CHECK(same_weights(x, y));
    CHECK(!s.threads_seen);
    cnn_net_free(x);
    cnn_net_free(y);
  }

  /* A read that fails in the second epoch: its message, the first epoch
   * reported. */
  {
    source s = {ti, tl, 0, 0, 0, 0, 0, 0, pthread_self()};
    s.fail_at = (NTRAIN + 31) / 32 + 3;
    cnn_dataset st = {NULL, NULL, NTRAIN, src_read, src_pass, &s, 0};
    cnn_net *y = train(&st, NULL, 3, 1, NULL, &rc, err, NULL);
    CHECK_EQ_INT(rc, CNN_ERROR);
    CHECK_CONTAINS(err, "label must be an integer 0..9; got NULL");
    CHECK_EQ_INT(epochs_seen, 1);
    cnn_net_free(y);
  }

  /* A label beyond the model's classes: the in-memory message. */
  {
    uint8_t *bad = malloc(NTRAIN);
    memcpy(bad, tl, NTRAIN);
    bad[123] = 12;
    source s = {ti, bad, 0, 0, 0, 0, 0, 0, pthread_self()};
    cnn_dataset st = {NULL, NULL, NTRAIN, src_read, src_pass, &s, 0};
    cnn_dataset m2 = {ti, bad, NTRAIN, NULL, NULL, NULL, 0};
    char err2[CNN_ERRMAX];
    cnn_net *y = train(&st, NULL, 1, 1, NULL, &rc, err, NULL);
    CHECK_EQ_INT(rc, CNN_ERROR);
    cnn_net *x = train(&m2, NULL, 1, 1, NULL, &rc, err2, NULL);
    CHECK_STR(err, "training row 124 has label 12 but the model has 10 classes");
    CHECK_STR(err, err2);
    cnn_net_free(x);
    cnn_net_free(y);
    free(bad);
  }

  /* Neither images nor a reader. */
  {
    cnn_dataset none = {NULL, NULL, NTRAIN, NULL, NULL, NULL, 0};
    cnn_net *y = train(&none, NULL, 1, 1, NULL, &rc, err, NULL);
    CHECK_EQ_INT(rc, CNN_ERROR);
    CHECK_STR(err, "training rows have neither images nor a reader");
    cnn_net_free(y);
  }
  /* No rows, and more rows than 32-bit row numbers reach: refused before
   * anything is read or allocated, in training, validation and evaluation. */
  {
    source s = {ti, tl, 0, 0, 0, 0, 0, 0, pthread_self()};
    cnn_dataset empty = {NULL, NULL, 0, src_read, src_pass, &s, 0};
    cnn_dataset huge = {NULL, NULL, (size_t)UINT32_MAX + 1, src_read, src_pass, &s, 0};
    cnn_dataset ok = {NULL, NULL, NTRAIN, src_read, src_pass, &s, 0};
    cnn_net *y = train(&empty, NULL, 1, 1, NULL, &rc, err, NULL);
    CHECK_EQ_INT(rc, CNN_ERROR);
    CHECK_STR(err, "no training rows");
    cnn_net_free(y);
    y = train(&huge, NULL, 1, 1, NULL, &rc, err, NULL);
    CHECK_EQ_INT(rc, CNN_ERROR);
    CHECK_STR(err, "4294967296 training rows; the limit is 4294967295");
    cnn_net_free(y);
    y = train(&ok, &huge, 1, 1, NULL, &rc, err, NULL);
    CHECK_EQ_INT(rc, CNN_ERROR);
    CHECK_STR(err, "4294967296 validation rows; the limit is 4294967295");
    double loss, acc;
    CHECK_EQ_INT(cnn_evaluate(y, &empty, 0, NULL, NULL, &loss, &acc, err), CNN_ERROR);
    CHECK_STR(err, "no rows to evaluate");
    CHECK_EQ_INT(cnn_evaluate(y, &huge, 0, NULL, NULL, &loss, &acc, err), CNN_ERROR);
    CHECK_STR(err, "4294967296 rows to evaluate; the limit is 4294967295");
    CHECK_EQ_INT(s.passes + s.outside, 0);
    cnn_net_free(y);
  }
  free(ti), free(tl), free(vi), free(vl);
  return check_done();
}
