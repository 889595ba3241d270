/*
 * test_schedule.c - learning-rate schedules: each schedule's rate at
 * hand-computed steps (Keras' formulas, staircase and the piecewise
 * boundaries exactly), the rate each epoch reports, a schedule resumed in a
 * second call equal bit for bit to one call, and the optimizer's own rate
 * left as it was; ReduceLROnPlateau's reductions, patience, cooldown and
 * floor.
 */
#include "check.h"
#include "cnn.h"
#include "json.h"
#include "mnist_subset.h"

#define NTRAIN 320 /* 10 steps an epoch at batch 32 */

static const char *tiny_cnn =
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,"
    "\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"flatten\"},"
    "{\"type\":\"dropout\",\"rate\":0.2},{\"type\":\"dense\",\"units\":10}]}";

static cnn_dataset train;

typedef struct {
  int epochs;
  double lr[8];
} watch;

static int on_epoch(void *ctx, const cnn_epoch_stats *s, char *err) {
  (void)err;
  watch *w = ctx;
  if (w->epochs < 8) w->lr[w->epochs] = s->learning_rate;
  w->epochs++;
  return CNN_OK;
}

static int parse(cnn_train_config *cfg, const char *json) {
  char err[CNN_ERRMAX];
  int rc = cnn_train_config_parse(cfg, json, NULL, NULL, err);
  if (rc) fprintf(stderr, "%s: %s\n", json, err);
  return rc;
}

static double rate(const char *json, int64_t step) {
  cnn_train_config cfg;
  if (parse(&cfg, json)) return NAN;
  return cnn_lr_schedule_rate(&cfg.schedule, step);
}

static void rates(void) {
  const char *ex =
      "{\"learning_rate\":{\"schedule\":\"exponential_decay\","
      "\"initial_learning_rate\":0.1,\"decay_steps\":10,\"decay_rate\":0.5}}";
  CHECK_NEAR(rate(ex, 0), 0.1, 1e-15);
  CHECK_NEAR(rate(ex, 5), 0.1 * 0.70710678118654752, 1e-15); /* 0.5^0.5 */
  CHECK_NEAR(rate(ex, 10), 0.05, 1e-15);
  CHECK_NEAR(rate(ex, 25), 0.1 * 0.17677669529663688, 1e-15); /* 0.5^2.5 */
  const char *st =
      "{\"learning_rate\":{\"schedule\":\"exponential_decay\","
      "\"initial_learning_rate\":0.1,\"decay_steps\":10,\"decay_rate\":0.5,"
      "\"staircase\":true}}";
  CHECK_NEAR(rate(st, 0), 0.1, 0);
  CHECK_NEAR(rate(st, 9), 0.1, 0);
  CHECK_NEAR(rate(st, 10), 0.05, 0);
  CHECK_NEAR(rate(st, 19), 0.05, 0);
  CHECK_NEAR(rate(st, 25), 0.025, 0);

  const char *co =
      "{\"learning_rate\":{\"schedule\":\"cosine_decay\","
      "\"initial_learning_rate\":0.1,\"decay_steps\":100,\"alpha\":0.1}}";
  CHECK_NEAR(rate(co, 0), 0.1, 1e-15);
  /* 0.1 * (0.9 * 0.5 * (1 + cos(pi/4)) + 0.1) */
  CHECK_NEAR(rate(co, 25), 0.086819805153394639, 1e-15);
  CHECK_NEAR(rate(co, 50), 0.055, 1e-15);
  CHECK_NEAR(rate(co, 100), 0.01, 1e-15);
  CHECK_NEAR(rate(co, 1000), 0.01, 1e-15); /* alpha * initial after decay_steps */
  const char *co0 =
      "{\"learning_rate\":{\"schedule\":\"cosine_decay\","
      "\"initial_learning_rate\":0.1,\"decay_steps\":100}}";
  CHECK_NEAR(rate(co0, 100), 0, 1e-17); /* alpha defaults to 0 */

  const char *pw =
      "{\"learning_rate\":{\"schedule\":\"piecewise_constant\","
      "\"boundaries\":[10,20],\"values\":[1,0.5,0.1]}}";
  CHECK_NEAR(rate(pw, 0), 1, 0);
  CHECK_NEAR(rate(pw, 10), 1, 0); /* a boundary belongs to the interval it ends */
  CHECK_NEAR(rate(pw, 11), 0.5, 0);
  CHECK_NEAR(rate(pw, 20), 0.5, 0);
  CHECK_NEAR(rate(pw, 21), 0.1, 0);
  CHECK_NEAR(rate(pw, 1000000), 0.1, 0);

  char err[CNN_ERRMAX];
  cnn_train_config cfg;
  CHECK(cnn_train_config_parse(&cfg,
                               "{\"learning_rate\":{\"schedule\":\"exponential_decay\","
                               "\"initial_learning_rate\":0.1,\"decay_steps\":10,"
                               "\"decay_rate\":2}}",
                               NULL, NULL, err) == CNN_ERROR);
  CHECK_STR(err, "option learning_rate.decay_rate must be a number in (0, 1]; got 2");
  CHECK_EQ_INT(cfg.schedule.kind, CNN_LR_NONE); /* a failed parse leaves the defaults */
}

/* Trains net for `epochs` epochs from first_epoch with the options json. */
static int fit(cnn_net *net, cnn_optim *opt, const char *json, int first_epoch, watch *w) {
  char err[CNN_ERRMAX];
  cnn_train_config cfg;
  if (parse(&cfg, json)) return CNN_ERROR;
  cfg.first_epoch = first_epoch, cfg.on_epoch = on_epoch, cfg.ctx = w;
  cnn_train_result res;
  int rc = cnn_train(net, opt, &train, NULL, &cfg, &res, err);
  if (rc) fprintf(stderr, "train: %s\n", err);
  return rc;
}

static cnn_net *make(void) {
  char err[CNN_ERRMAX];
  cnn_spec spec;
  cnn_net *net = NULL;
  if (cnn_spec_parse(&spec, tiny_cnn, err) || cnn_net_new(&net, &spec, err)) {
    fprintf(stderr, "%s\n", err);
    return NULL;
  }
  cnn_net_init(net, 5);
  return net;
}

#define SCHED                                                                             \
  "\"learning_rate\":{\"schedule\":\"exponential_decay\",\"initial_learning_rate\":0.01," \
  "\"decay_steps\":10,\"decay_rate\":0.5,\"staircase\":true}"

static void training(void) {
  cnn_net *one = make(), *two = make(), *flat = make(), *fixed = make();
  cnn_optim o1 = {0}, o2 = {0}, o3 = {0}, o4 = {0};
  if (!CHECK(one && two && flat && fixed)) goto done;

  /* Steps 0..9, 10..19, 20..29: each epoch's last step is in a new stair. */
  watch w1 = {0};
  CHECK(fit(one, &o1, "{\"epochs\":3,\"seed\":9," SCHED "}", 1, &w1) == CNN_OK);
  CHECK_EQ_INT(w1.epochs, 3);
  CHECK_NEAR(w1.lr[0], 0.01, 0);
  CHECK_NEAR(w1.lr[1], 0.005, 0);
  CHECK_NEAR(w1.lr[2], 0.0025, 0);
  CHECK_EQ_INT(o1.step, 30);
  CHECK_NEAR(o1.cfg.learning_rate, 0.001, 0); /* Adam's own rate stays */

  /* 1 epoch, then 2 more in another call: the schedule goes on from step 10. */
  watch w2 = {0};
  CHECK(fit(two, &o2, "{\"epochs\":1,\"seed\":9," SCHED "}", 1, &w2) == CNN_OK);
  CHECK_NEAR(o2.cfg.learning_rate, 0.001, 0);
  CHECK(fit(two, &o2, "{\"epochs\":2,\"seed\":9," SCHED "}", 2, &w2) == CNN_OK);
  CHECK_EQ_INT(w2.epochs, 3);
  for (int e = 0; e < 3; e++) CHECK_NEAR(w2.lr[e], w1.lr[e], 0);
  CHECK(memcmp(cnn_net_params(one), cnn_net_params(two), cnn_net_nparams(one) * 4) == 0);

  /* The schedule's rate is the one the updates use: a one-value piecewise
   * schedule trains exactly as the same fixed rate, and differs from Adam's
   * default. */
  watch w3 = {0}, w4 = {0};
  CHECK(fit(flat, &o3,
            "{\"epochs\":1,\"seed\":9,\"learning_rate\":{\"schedule\":\"piecewise_constant\","
            "\"boundaries\":[],\"values\":[0.003]}}",
            1, &w3) == CNN_OK);
  CHECK(fit(fixed, &o4, "{\"epochs\":1,\"seed\":9,\"learning_rate\":0.003}", 1, &w4) == CNN_OK);
  CHECK_NEAR(w3.lr[0], 0.003, 0);
  CHECK(memcmp(cnn_net_params(flat), cnn_net_params(fixed), cnn_net_nparams(flat) * 4) == 0);
  CHECK_NEAR(o3.cfg.learning_rate, 0.001, 0);
  CHECK_NEAR(o4.cfg.learning_rate, 0.003, 0); /* a plain number overrides, as before */
done:
  cnn_optim_clear(&o1), cnn_optim_clear(&o2), cnn_optim_clear(&o3), cnn_optim_clear(&o4);
  cnn_net_free(one), cnn_net_free(two), cnn_net_free(flat), cnn_net_free(fixed);
}

/* ReduceLROnPlateau on a loss that cannot improve by min_delta 1 after the
 * first epoch: with patience 1 and cooldown 2 Keras halves the rate after
 * epochs 2, 4 and 6, the last time only down to min_lr. */
static void plateau(void) {
  char err[CNN_ERRMAX];
  cnn_net *net = make();
  cnn_optim opt = {0};
  watch w = {0};
  if (!CHECK(net)) return;
  CHECK(fit(net, &opt,
            "{\"epochs\":6,\"seed\":9,\"optimizer\":{\"name\":\"sgd\",\"learning_rate\":1e-6},"
            "\"reduce_lr_on_plateau\":{\"monitor\":\"loss\",\"factor\":0.5,\"patience\":1,"
            "\"min_delta\":1,\"cooldown\":2,\"min_lr\":2e-7}}",
            1, &w) == CNN_OK);
  CHECK_EQ_INT(w.epochs, 6);
  const double want[] = {1e-6, 1e-6, 5e-7, 5e-7, 2.5e-7, 2.5e-7};
  for (int e = 0; e < 6; e++) CHECK_NEAR(w.lr[e], want[e], 1e-21);
  CHECK_NEAR(opt.cfg.learning_rate, 2e-7, 0); /* kept: the optimizer's rate */

  cnn_train_config cfg;
  CHECK(parse(&cfg, "{\"reduce_lr_on_plateau\":{\"monitor\":\"val_loss\"}}") == CNN_OK);
  cnn_train_result res;
  CHECK(cnn_train(net, &opt, &train, NULL, &cfg, &res, err) == CNN_ERROR);
  CHECK_STR(err,
            "option reduce_lr_on_plateau.monitor is \"val_loss\" but there is no "
            "validation data");
  CHECK(cnn_train_config_parse(&cfg,
                               "{\"reduce_lr_on_plateau\":{},\"learning_rate\":{\"schedule\":"
                               "\"piecewise_constant\",\"boundaries\":[],\"values\":[0.1]}}",
                               NULL, NULL, err) == CNN_ERROR);
  CHECK_STR(err,
            "option reduce_lr_on_plateau cannot be combined with a learning_rate schedule; "
            "give learning_rate as a number");
  cnn_optim_clear(&opt);
  cnn_net_free(net);
}

int main(void) {
  uint8_t *ti, *tl;
  rates();
  if (!CHECK(mnist_subset("train", NTRAIN, &ti, &tl) == 0)) return check_done();
  train = (cnn_dataset){.images = ti, .labels = tl, .count = NTRAIN};
  training();
  plateau();
  free(ti), free(tl);
  return check_done();
}
