/*
 * fit.c - the training loop (Keras' fit): epochs of shuffled mini-batches
 * over a uint8 dataset, loss and accuracy per epoch, validation, early
 * stopping, a time budget, and callbacks through which the caller commits
 * each epoch and can interrupt.
 *
 * Reproducibility: epoch e of a run with seed s shuffles with a generator
 * seeded from (s, e) and draws dropout masks from another, so a model trained
 * 3 epochs and then 2 more sees the same batches as one trained 5 at once.
 * The dataset stays uint8; each batch is gathered and scaled to [0, 1] into
 * the network's input buffer, augmented on the way when asked (augmentation.h:
 * each image from its own stream of (seed, epoch, row), so the batches do not
 * depend on the thread count either).
 *
 * A streamed dataset (images NULL) is asked for each batch's rows in the
 * order of that same permutation, one batch ahead (reader.h), and its images
 * are augmented with the streams of their dataset rows: the batches, and so
 * the weights, are those of the same rows in memory. Its labels are checked
 * as they arrive, with the same message.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "cnn.h"
#include "reader.h"
#include "rng.h"

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t seed, uint64_t epoch, uint64_t stream) {
  return seed ^ (epoch * 0x9e3779b97f4a7c15ull) ^ (stream * 0xd1b54a32d192ed03ull);
}

/* Labels must index the output vector: rows idx[0..n) (NULL: 0..n) of a
 * dataset, their labels in labels[0..n). */
static int check_labels(const uint8_t *labels, const uint32_t *idx, size_t n, int classes,
                        const char *what, char *err) {
  for (size_t i = 0; i < n; i++)
    if (labels[i] >= classes)
      return cnn_error(err, CNN_ERROR, "%s row %zu has label %d but the model has %d classes", what,
                       (idx ? (size_t)idx[i] : i) + 1, labels[i], classes);
  return CNN_OK;
}

typedef struct {
  cnn_optim *opt;
  cnn_net *net;
} update_ctx;

static void update_layer(void *ctx, size_t lo, size_t hi) {
  update_ctx *u = ctx;
  cnn_optim_update(u->opt, cnn_net_params(u->net), cnn_net_grads(u->net), lo, hi,
                   cnn_net_pool(u->net));
}

/* A band of a layer's kernel, from a task on the network's pool. */
static void update_band(void *ctx, size_t lo, size_t hi) {
  update_ctx *u = ctx;
  cnn_optim_update_serial(u->opt, cnn_net_params(u->net), cnn_net_grads(u->net), lo, hi,
                          cnn_net_pool(u->net));
}

int cnn_train(cnn_net *net, cnn_optim *opt, const cnn_dataset *train, const cnn_dataset *val,
              const cnn_train_config *cfg, cnn_train_result *res, char *err) {
  int rc = CNN_OK;
  uint32_t *order = NULL;
  uint8_t *labels = NULL;
  float *best = NULL, *before = NULL;
  double *scratch = NULL;
  cnn_layer_stat *stats = NULL;
  cnn_augment *aug = NULL;
  cnn_reader rd = {0};
  int streamed = train->images == NULL;
  int scheduled = 0;
  double base_lr = 0;
  memset(res, 0, sizeof *res);
  cnn_shape in = cnn_net_input(net);
  size_t isize = (size_t)in.h * in.w * in.c, nparams = cnn_net_nparams(net);
  /* The best epoch's weights include the non-trainable ones (batchnorm's
   * moving statistics), which follow the trainable ones in the arena. */
  size_t nkeep = nparams + cnn_net_nstate(net);
  int classes = cnn_net_classes(net);
  double t0 = now_seconds();

  if (train->count == 0) return cnn_error(err, CNN_ERROR, "no training rows");
  if (train->count > UINT32_MAX)
    return cnn_error(err, CNN_ERROR, "%zu training rows; the limit is %u", train->count,
                     UINT32_MAX);
  /* Checked here too, so that no epoch is trained before validation refuses. */
  if (val && val->count > UINT32_MAX)
    return cnn_error(err, CNN_ERROR, "%zu validation rows; the limit is %u", val->count,
                     UINT32_MAX);
  if (cfg->batch_size < 1)
    return cnn_error(err, CNN_ERROR, "batch_size must be at least 1, got %d", cfg->batch_size);
  if (opt->n && opt->n != nparams)
    return cnn_error(err, CNN_ERROR, "optimizer has %zu values but the model has %zu parameters",
                     opt->n, nparams);
  if (cfg->plateau.on && cfg->plateau.monitor == CNN_MONITOR_VAL_LOSS && !(val && val->count))
    return cnn_error(err, CNN_ERROR,
                     "option reduce_lr_on_plateau.monitor is \"val_loss\" but there is no "
                     "validation data");
  if (streamed && !train->read)
    return cnn_error(err, CNN_ERROR, "training rows have neither images nor a reader");
  if (!streamed && (rc = check_labels(train->labels, NULL, train->count, classes, "training", err)))
    return rc;
  if (val && val->count && val->images &&
      (rc = check_labels(val->labels, NULL, val->count, classes, "validation", err)))
    return rc;

  /* Keras: compiling with another optimizer starts its state afresh; the
   * same optimizer (or none named) continues where it stopped. */
  if (!opt->n || (cfg->has_optimizer && memcmp(&cfg->optimizer, &opt->cfg, sizeof opt->cfg))) {
    cnn_optim_clear(opt);
    if ((rc = cnn_optim_init(opt, &cfg->optimizer, nparams, err))) return rc;
  }
  if (cfg->learning_rate > 0) opt->cfg.learning_rate = cfg->learning_rate;
  /* A schedule sets the rate of each step; the optimizer's own rate is put
   * back before each epoch is reported (the caller stores the optimizer then)
   * and at the end, so the stored model keeps it, as Keras' optimizer keeps
   * its schedule apart from a fit that is given one. */
  scheduled = cfg->schedule.kind != CNN_LR_NONE;
  base_lr = opt->cfg.learning_rate;
  double last_lr = base_lr;

  int batch = (size_t)cfg->batch_size < train->count ? cfg->batch_size : (int)train->count;
  if ((rc = cnn_net_reserve(net, batch, 1, err))) return rc;
  order = cnn_malloc(train->count * sizeof *order);
  labels = cnn_malloc((size_t)batch);
  if (cfg->patience > 0 && cfg->restore_best) best = cnn_malloc(nkeep * sizeof *best);
  int nlayers = cnn_net_layers(net);
  if (cfg->layer_stats) {
    before = cnn_malloc((nparams ? nparams : 1) * sizeof *before);
    stats = cnn_malloc((size_t)nlayers * sizeof *stats);
    scratch = cnn_malloc((cnn_net_stat_scratch(net) + 1) * sizeof *scratch);
  }
  if (!order || !labels || (cfg->patience > 0 && cfg->restore_best && !best) ||
      (cfg->layer_stats && (!before || !stats || !scratch))) {
    rc = cnn_nomem(err);
    goto done;
  }
  if (streamed && (rc = cnn_reader_init(&rd, train, isize, batch, err))) goto done;
  if (cnn_augment_active(&cfg->augment) &&
      (rc = cnn_augment_new(&aug, &cfg->augment, in.h, in.w, in.c,
                            cnn_threads_size(cnn_net_pool(net)), err)))
    goto done;

  double best_metric = INFINITY;
  int wait = 0;
  /* ReduceLROnPlateau's state lives for one call, as a Keras callback's
   * does for one fit; the rate it lowers is the optimizer's, kept. */
  const cnn_plateau_config *pl = &cfg->plateau;
  int pl_val =
      pl->monitor == CNN_MONITOR_VAL_LOSS || (pl->monitor == CNN_MONITOR_AUTO && val && val->count);
  double pl_best = INFINITY;
  int pl_wait = 0, pl_cooldown = 0;
  size_t batches = (train->count + batch - 1) / batch;
  /* Layer statistics sample steps spread evenly over the epoch, the last
   * one included: batch b is one when (b + 1) * k / batches steps up. */
  size_t probes = batches < CNN_LAYER_STAT_STEPS ? batches : CNN_LAYER_STAT_STEPS;
  for (int e = 0; e < cfg->epochs; e++) {
    int epoch = cfg->first_epoch + e;
    double te = now_seconds();
    for (size_t i = 0; i < train->count; i++) order[i] = (uint32_t)i;
    if (cfg->shuffle) {
      cnn_rng r;
      cnn_rng_seed(&r, mix(cfg->seed, (uint64_t)epoch, 1));
      for (size_t i = train->count - 1; i > 0; i--) {
        size_t j = (size_t)cnn_rng_below(&r, i + 1);
        uint32_t t = order[i];
        order[i] = order[j], order[j] = t;
      }
    }
    cnn_net_seed(net, mix(cfg->seed, (uint64_t)epoch, 2));
    double loss_sum = 0;
    size_t right = 0, seen = 0;
    if (stats) memset(stats, 0, (size_t)nlayers * sizeof *stats);
    if (streamed) {
      if (train->pass && (rc = train->pass(train->ctx, 1, err))) goto done;
      cnn_reader_start(&rd, order, train->count < (size_t)batch ? (int)train->count : batch);
    }
    for (size_t b = 0; b < batches; b++) {
      int probe = stats && (b + 1) * probes / batches != b * probes / batches;
      size_t start = b * batch;
      int m = train->count - start < (size_t)batch ? (int)(train->count - start) : batch;
      float *x = cnn_net_input_buffer(net);
      if (streamed) {
        const uint8_t *im, *lb;
        if ((rc = cnn_reader_wait(&rd, &im, &lb, err)) ||
            (rc = check_labels(lb, order + start, (size_t)m, classes, "training", err)))
          goto done;
        size_t next = start + (size_t)m;
        if (next < train->count)
          cnn_reader_start(
              &rd, order + next,
              train->count - next < (size_t)batch ? (int)(train->count - next) : batch);
        if (aug)
          cnn_augment_gathered(aug, x, im, order + start, m, cfg->seed, (uint64_t)epoch,
                               cnn_net_pool(net));
        else
          for (size_t j = 0; j < (size_t)m * isize; j++) x[j] = im[j] / 255.0f;
        memcpy(labels, lb, (size_t)m);
      } else {
        if (aug)
          cnn_augment_batch(aug, x, train->images, order + start, m, cfg->seed, (uint64_t)epoch,
                            cnn_net_pool(net));
        for (int i = 0; i < m; i++) {
          const uint8_t *src = train->images + (size_t)order[start + i] * isize;
          float *dst = x + (size_t)i * isize;
          if (!aug)
            for (size_t j = 0; j < isize; j++) dst[j] = src[j] / 255.0f;
          labels[i] = train->labels[order[start + i]];
        }
      }
      cnn_net_forward(net, m, 1);
      if (probe) cnn_net_stat_outputs(net, m, stats);
      if (cfg->stop && cfg->stop(cfg->ctx)) {
        rc = cnn_error(err, CNN_INTERRUPTED, "interrupted");
        goto done;
      }
      int correct;
      double loss = cnn_net_loss(net, labels, m, cfg->label_smoothing, &correct);
      if (!isfinite(loss)) {
        rc = cnn_error(err, CNN_ERROR,
                       "loss became %s in epoch %d, batch %zu (learning rate too high?); "
                       "training stopped, completed epochs are kept",
                       isnan(loss) ? "NaN" : "infinite", epoch, b + 1);
        goto done;
      }
      if (scheduled) opt->cfg.learning_rate = cnn_lr_schedule_rate(&cfg->schedule, opt->step);
      last_lr = opt->cfg.learning_rate;
      if (probe) memcpy(before, cnn_net_params(net), nparams * sizeof *before);
      /* Each layer's weights are updated as soon as its gradients are
       * final, while they are in cache (the first dense layer's kernel,
       * gradient and weights are most of a step's memory traffic). */
      cnn_optim_begin(opt);
      update_ctx up = {opt, net};
      cnn_net_backward_each(net, m, update_layer, update_band, &up);
      if (probe) cnn_net_stat_update(net, before, scratch, stats);
      loss_sum += loss * m;
      right += correct;
      seen += m;
      if (cfg->on_batch) {
        cnn_batch_progress p = {epoch,
                                e + 1,
                                cfg->epochs,
                                b + 1,
                                batches,
                                seen,
                                loss_sum / seen,
                                (double)right / seen,
                                now_seconds() - te};
        if (cfg->on_batch(cfg->ctx, &p)) {
          rc = cnn_error(err, CNN_INTERRUPTED, "interrupted");
          goto done;
        }
      }
    }
    if (streamed && train->pass && (rc = train->pass(train->ctx, 0, err))) goto done;
    opt->cfg.learning_rate = base_lr;
    /* The rate of the epoch's last step, as Keras' history logs it. */
    cnn_epoch_stats s = {epoch, loss_sum / seen, (double)right / seen, NAN, NAN, last_lr, 0, seen,
                         NULL};
    if (stats) {
      for (int i = 0; i < nlayers; i++) {
        cnn_layer_stat *t = &stats[i];
        int has_kernel = cnn_net_layer(net, i).trainable > 0;
        t->zero_fraction /= (double)probes;
        t->grad_mean_abs = has_kernel ? t->grad_mean_abs / probes : NAN;
        t->weight_norm = has_kernel ? t->weight_norm / probes : NAN;
        t->update_ratio = has_kernel ? t->update_ratio / probes : NAN;
      }
      s.layers = stats;
    }
    if (val && val->count &&
        (rc = cnn_evaluate(net, val, cfg->label_smoothing, cfg->stop, cfg->ctx, &s.val_loss,
                           &s.val_accuracy, err)))
      goto done;
    if (val && val->count && (rc = cnn_net_reserve(net, batch, 1, err))) goto done;
    if (pl->on) {
      /* Keras' ReduceLROnPlateau.on_epoch_end, mode min; before the epoch
       * is reported so the stored optimizer has the lowered rate. */
      double metric = pl_val ? s.val_loss : s.loss;
      if (pl_cooldown > 0) pl_cooldown--, pl_wait = 0;
      if (metric < pl_best - pl->min_delta) {
        pl_best = metric, pl_wait = 0;
      } else if (pl_cooldown == 0 && ++pl_wait >= pl->patience) {
        if (opt->cfg.learning_rate > pl->min_lr) {
          double lr = opt->cfg.learning_rate * pl->factor;
          opt->cfg.learning_rate = lr > pl->min_lr ? lr : pl->min_lr;
          base_lr = opt->cfg.learning_rate;
          pl_cooldown = pl->cooldown, pl_wait = 0;
        }
      }
    }
    s.seconds = now_seconds() - te;
    res->epochs_run++;
    if (cfg->on_epoch && (rc = cfg->on_epoch(cfg->ctx, &s, err))) goto done;

    if (cfg->patience > 0) {
      double metric = val && val->count ? s.val_loss : s.loss;
      if (metric < best_metric - cfg->min_delta) {
        best_metric = metric;
        wait = 0;
        res->best_epoch = epoch;
        if (best) memcpy(best, cnn_net_params(net), nkeep * sizeof *best);
      } else if (++wait >= cfg->patience) {
        res->stopped_early = 1;
        break;
      }
    }
    if (cfg->max_seconds > 0 && now_seconds() - t0 >= cfg->max_seconds && e + 1 < cfg->epochs) {
      res->out_of_time = 1;
      break;
    }
  }
  /* Restore the best weights unless the last epoch was the best. */
  if (best && res->best_epoch && res->best_epoch != cfg->first_epoch + res->epochs_run - 1)
    memcpy(cnn_net_params(net), best, nkeep * sizeof *best);
  else
    res->best_epoch = 0;
done:
  if (scheduled) opt->cfg.learning_rate = base_lr;
  res->seconds = now_seconds() - t0;
  cnn_free(order);
  cnn_free(labels);
  cnn_free(best);
  cnn_free(before);
  cnn_free(scratch);
  cnn_free(stats);
  cnn_augment_free(aug);
  cnn_reader_clear(&rd);
  return rc;
}
