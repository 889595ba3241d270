/*
 * options.c - cnn_train's options: JSON in, a checked cnn_train_config out.
 * Defaults are Keras' (10 epochs, batch 32, Adam, shuffled); every key is
 * known, typed and range-checked, so a typo is an error, not a silent default.
 * Options that only the caller understands (the SQL face's "validation",
 * "threads", "progress") are named by the caller: skipped here, and listed
 * when a key is unknown, so that the caller reads them from the same
 * document and a user sees one list of every option.
 */
#include <math.h>
#include <string.h>

#include "cnn.h"
#include "json.h"

static int int_opt(const cnn_json *v, const char *key, int lo, int hi, int *out, char *err) {
  char got[64];
  if (v->type != CNN_JSON_NUMBER || v->number != floor(v->number) || v->number < lo ||
      v->number > hi)
    return cnn_error(err, CNN_ERROR, "option %s must be an integer %d..%d; got %s", key, lo, hi,
                     cnn_json_describe(v, got, sizeof got));
  *out = (int)v->number;
  return CNN_OK;
}

static int bool_opt(const cnn_json *v, const char *key, int *out, char *err) {
  char got[64];
  if (v->type != CNN_JSON_TRUE && v->type != CNN_JSON_FALSE)
    return cnn_error(err, CNN_ERROR, "option %s must be true or false; got %s", key,
                     cnn_json_describe(v, got, sizeof got));
  *out = v->type == CNN_JSON_TRUE;
  return CNN_OK;
}

static int early_stopping(cnn_train_config *cfg, const cnn_json *v, char *err) {
  char got[64];
  if (v->type != CNN_JSON_OBJECT)
    return cnn_error(err, CNN_ERROR,
                     "option early_stopping must be an object like {\"patience\": 3}; got %s",
                     cnn_json_describe(v, got, sizeof got));
  cfg->patience = 1;
  for (size_t i = 0; i < v->count; i++) {
    const char *k = v->keys[i];
    const cnn_json *x = &v->items[i];
    int rc;
    if (!strcmp(k, "patience"))
      rc = int_opt(x, "early_stopping.patience", 1, CNN_MAX_EPOCHS, &cfg->patience, err);
    else if (!strcmp(k, "restore_best"))
      rc = bool_opt(x, "early_stopping.restore_best", &cfg->restore_best, err);
    else if (!strcmp(k, "min_delta")) {
      if (x->type != CNN_JSON_NUMBER || !(x->number >= 0 && x->number <= 1e6))
        return cnn_error(err, CNN_ERROR,
                         "option early_stopping.min_delta must be a number in [0, 1e6]; got %s",
                         cnn_json_describe(x, got, sizeof got));
      cfg->min_delta = x->number;
      rc = CNN_OK;
    } else
      return cnn_error(err, CNN_ERROR,
                       "unknown option early_stopping.%.40s (patience, restore_best, min_delta)",
                       k);
    if (rc) return rc;
  }
  return CNN_OK;
}

static int plateau(cnn_train_config *cfg, const cnn_json *v, char *err) {
  char got[64];
  if (v->type != CNN_JSON_OBJECT)
    return cnn_error(
        err, CNN_ERROR,
        "option reduce_lr_on_plateau must be an object like {\"patience\": 10}; got %s",
        cnn_json_describe(v, got, sizeof got));
  cnn_plateau_config *p = &cfg->plateau;
  *p = (cnn_plateau_config){1, CNN_MONITOR_AUTO, 0.1, 10, 1e-4, 0, 0};
  for (size_t i = 0; i < v->count; i++) {
    const char *k = v->keys[i];
    const cnn_json *x = &v->items[i];
    int rc = CNN_OK;
    if (!strcmp(k, "monitor")) {
      if (x->type == CNN_JSON_STRING && !strcmp(x->string, "loss"))
        p->monitor = CNN_MONITOR_LOSS;
      else if (x->type == CNN_JSON_STRING && !strcmp(x->string, "val_loss"))
        p->monitor = CNN_MONITOR_VAL_LOSS;
      else
        rc = cnn_error(
            err, CNN_ERROR,
            "option reduce_lr_on_plateau.monitor must be \"val_loss\" or \"loss\"; got %s",
            cnn_json_describe(x, got, sizeof got));
    } else if (!strcmp(k, "factor")) {
      /* Keras refuses factor >= 1: the rate would never fall. */
      if (x->type != CNN_JSON_NUMBER || !(x->number > 0 && x->number < 1))
        rc = cnn_error(err, CNN_ERROR,
                       "option reduce_lr_on_plateau.factor must be a number in (0, 1); got %s",
                       cnn_json_describe(x, got, sizeof got));
      else
        p->factor = x->number;
    } else if (!strcmp(k, "patience")) {
      rc = int_opt(x, "reduce_lr_on_plateau.patience", 0, CNN_MAX_EPOCHS, &p->patience, err);
    } else if (!strcmp(k, "cooldown")) {
      rc = int_opt(x, "reduce_lr_on_plateau.cooldown", 0, CNN_MAX_EPOCHS, &p->cooldown, err);
    } else if (!strcmp(k, "min_delta")) {
      if (x->type != CNN_JSON_NUMBER || !(x->number >= 0 && x->number <= 1e6))
        rc = cnn_error(err, CNN_ERROR,
                       "option reduce_lr_on_plateau.min_delta must be a number in [0, 1e6]; got %s",
                       cnn_json_describe(x, got, sizeof got));
      else
        p->min_delta = x->number;
    } else if (!strcmp(k, "min_lr")) {
      if (x->type != CNN_JSON_NUMBER || !(x->number >= 0 && x->number <= 10))
        rc = cnn_error(err, CNN_ERROR,
                       "option reduce_lr_on_plateau.min_lr must be a number in [0, 10]; got %s",
                       cnn_json_describe(x, got, sizeof got));
      else
        p->min_lr = x->number;
    } else
      rc = cnn_error(err, CNN_ERROR,
                     "unknown option reduce_lr_on_plateau.%.40s (monitor, factor, patience, "
                     "min_delta, cooldown, min_lr)",
                     k);
    if (rc) return rc;
  }
  return CNN_OK;
}

static const char *const engine_keys[] = {"epochs",
                                          "batch_size",
                                          "optimizer",
                                          "learning_rate",
                                          "shuffle",
                                          "seed",
                                          "early_stopping",
                                          "max_seconds",
                                          "augment",
                                          "label_smoothing",
                                          "reduce_lr_on_plateau",
                                          "layer_stats"};

static int is_listed(const char *const *list, const char *key) {
  for (; list && *list; list++)
    if (!strcmp(*list, key)) return 1;
  return 0;
}

static int unknown_key(const char *key, const char *const *caller_keys, char *err) {
  cnn_buf b = {0};
  cnn_buf_printf(&b, "unknown option \"%.40s\" (", key);
  for (size_t i = 0; i < sizeof engine_keys / sizeof engine_keys[0]; i++)
    cnn_buf_printf(&b, "%s%s", i ? ", " : "", engine_keys[i]);
  for (; caller_keys && *caller_keys; caller_keys++) cnn_buf_printf(&b, ", %s", *caller_keys);
  cnn_buf_puts(&b, ")");
  char *msg = cnn_buf_finish(&b);
  if (!msg) return cnn_nomem(err);
  cnn_error(err, CNN_ERROR, "%s", msg);
  cnn_free(msg);
  return CNN_ERROR;
}

void cnn_train_config_defaults(cnn_train_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->epochs = 10, cfg->batch_size = 32, cfg->shuffle = 1, cfg->restore_best = 1;
  cfg->first_epoch = 1;
  cnn_optim_defaults(&cfg->optimizer, "adam", NULL);
}

int cnn_train_config_parse(cnn_train_config *cfg, const char *json, const char *const *caller_keys,
                           cnn_json **out, char *err) {
  char sub[CNN_ERRMAX], got[64];
  cnn_json *root = NULL;
  int rc = CNN_OK;
  cnn_train_config_defaults(cfg);
  if (out) *out = NULL;
  if (!json || !json[0]) return CNN_OK;
  rc = cnn_json_parse(&root, json, strlen(json), sub);
  if (rc == CNN_NOMEM) {
    cnn_json_free(root);
    return cnn_nomem(err);
  }
  if (rc) {
    cnn_json_free(root);
    return cnn_error(err, CNN_ERROR, "options are not valid JSON: %s", sub);
  }
  if (root->type != CNN_JSON_OBJECT) {
    rc = cnn_error(err, CNN_ERROR, "options must be a JSON object, got %s",
                   cnn_json_type_name(root->type));
    goto done;
  }
  for (size_t i = 0; i < root->count && rc == CNN_OK; i++) {
    const char *k = root->keys[i];
    const cnn_json *x = &root->items[i];
    if (is_listed(caller_keys, k)) continue;
    if (!strcmp(k, "epochs")) {
      rc = int_opt(x, k, 0, CNN_MAX_EPOCHS, &cfg->epochs, err);
    } else if (!strcmp(k, "batch_size")) {
      rc = int_opt(x, k, 1, CNN_MAX_BATCH, &cfg->batch_size, err);
    } else if (!strcmp(k, "optimizer")) {
      cfg->has_optimizer = 1;
      if ((rc = cnn_optim_parse(&cfg->optimizer, x, sub)))
        rc = cnn_error(err, rc, "option optimizer: %s", sub);
    } else if (!strcmp(k, "learning_rate")) {
      if (x->type == CNN_JSON_OBJECT)
        rc = cnn_lr_schedule_parse(&cfg->schedule, x, err);
      else if (x->type != CNN_JSON_NUMBER)
        rc = cnn_error(err, CNN_ERROR,
                       "option learning_rate must be a number in (0, 10] or a schedule like "
                       "{\"schedule\": \"exponential_decay\", ...}; got %s",
                       cnn_json_describe(x, got, sizeof got));
      else if (!(x->number > 0 && x->number <= 10))
        rc = cnn_error(err, CNN_ERROR, "option learning_rate must be a number in (0, 10]; got %s",
                       cnn_json_describe(x, got, sizeof got));
      else
        cfg->learning_rate = x->number;
    } else if (!strcmp(k, "shuffle")) {
      rc = bool_opt(x, k, &cfg->shuffle, err);
    } else if (!strcmp(k, "layer_stats")) {
      rc = bool_opt(x, k, &cfg->layer_stats, err);
    } else if (!strcmp(k, "seed")) {
      if (x->type != CNN_JSON_NUMBER || x->number != floor(x->number) || x->number < 0 ||
          x->number > 9007199254740991.0)
        rc = cnn_error(err, CNN_ERROR, "option seed must be an integer 0..2^53-1; got %s",
                       cnn_json_describe(x, got, sizeof got));
      else
        cfg->has_seed = 1, cfg->seed = (uint64_t)x->number;
    } else if (!strcmp(k, "early_stopping")) {
      if (x->type == CNN_JSON_FALSE || x->type == CNN_JSON_NULL) continue;
      rc = early_stopping(cfg, x, err);
    } else if (!strcmp(k, "reduce_lr_on_plateau")) {
      if (x->type == CNN_JSON_FALSE || x->type == CNN_JSON_NULL) continue;
      rc = plateau(cfg, x, err);
    } else if (!strcmp(k, "augment")) {
      rc = cnn_augment_parse(&cfg->augment, x, "augment", err);
    } else if (!strcmp(k, "label_smoothing")) {
      /* 1 would make every target uniform: nothing left to learn. */
      if (x->type != CNN_JSON_NUMBER || !(x->number >= 0 && x->number < 1))
        rc = cnn_error(err, CNN_ERROR, "option label_smoothing must be a number in [0, 1); got %s",
                       cnn_json_describe(x, got, sizeof got));
      else
        cfg->label_smoothing = x->number;
    } else if (!strcmp(k, "max_seconds")) {
      if (x->type != CNN_JSON_NUMBER || !(x->number > 0 && x->number <= 1e9))
        rc = cnn_error(err, CNN_ERROR, "option max_seconds must be a number in (0, 1e9]; got %s",
                       cnn_json_describe(x, got, sizeof got));
      else
        cfg->max_seconds = x->number;
    } else {
      rc = unknown_key(k, caller_keys, err);
    }
  }
  /* The schedule would overwrite every reduction at the next step. */
  if (rc == CNN_OK && cfg->plateau.on && cfg->schedule.kind != CNN_LR_NONE)
    rc = cnn_error(err, CNN_ERROR,
                   "option reduce_lr_on_plateau cannot be combined with a learning_rate schedule; "
                   "give learning_rate as a number");
done:
  if (rc == CNN_OK && out)
    *out = root;
  else
    cnn_json_free(root);
  if (rc) cnn_train_config_defaults(cfg);
  return rc;
}
