/*
 * options.c - cnn_train's options: JSON in, a checked cnn_train_options out.
 * Defaults are Keras' (10 epochs, batch 32, Adam, shuffled); every key is
 * known, typed and range-checked, so a typo is an error, not a silent default.
 */
#include <math.h>
#include <string.h>

#include "cnn.h"
#include "json.h"

static int int_opt(const cnn_json *v, const char *key, int lo, int hi, int *out, char *err) {
  if (v->type != CNN_JSON_NUMBER || v->number != floor(v->number) || v->number < lo ||
      v->number > hi)
    return cnn_error(err, CNN_ERROR, "option %s must be an integer %d..%d", key, lo, hi);
  *out = (int)v->number;
  return CNN_OK;
}

static int bool_opt(const cnn_json *v, const char *key, int *out, char *err) {
  if (v->type != CNN_JSON_TRUE && v->type != CNN_JSON_FALSE)
    return cnn_error(err, CNN_ERROR, "option %s must be true or false", key);
  *out = v->type == CNN_JSON_TRUE;
  return CNN_OK;
}

static int early_stopping(cnn_train_options *o, const cnn_json *v, char *err) {
  if (v->type != CNN_JSON_OBJECT)
    return cnn_error(err, CNN_ERROR,
                     "option early_stopping must be an object like {\"patience\": 3}");
  o->patience = 1;
  for (size_t i = 0; i < v->count; i++) {
    const char *k = v->keys[i];
    const cnn_json *x = &v->items[i];
    int rc;
    if (!strcmp(k, "patience"))
      rc = int_opt(x, "early_stopping.patience", 1, CNN_MAX_EPOCHS, &o->patience, err);
    else if (!strcmp(k, "restore_best"))
      rc = bool_opt(x, "early_stopping.restore_best", &o->restore_best, err);
    else if (!strcmp(k, "min_delta")) {
      if (x->type != CNN_JSON_NUMBER || !(x->number >= 0 && x->number <= 1e6))
        return cnn_error(err, CNN_ERROR, "option early_stopping.min_delta must be a number >= 0");
      o->min_delta = x->number;
      rc = CNN_OK;
    } else
      return cnn_error(err, CNN_ERROR,
                       "unknown option early_stopping.%.40s (patience, restore_best, min_delta)",
                       k);
    if (rc) return rc;
  }
  return CNN_OK;
}

int cnn_train_options_parse(cnn_train_options *o, const char *json, char *err) {
  char sub[CNN_ERRMAX];
  cnn_json *root = NULL;
  int rc = CNN_OK;
  memset(o, 0, sizeof *o);
  o->epochs = 10, o->batch_size = 32, o->shuffle = 1, o->progress = -1, o->restore_best = 1;
  cnn_optim_defaults(&o->optimizer, "adam", NULL);
  if (!json || !json[0]) return CNN_OK;
  rc = cnn_json_parse(&root, json, strlen(json), sub);
  if (rc == CNN_NOMEM) return cnn_nomem(err);
  if (rc) return cnn_error(err, CNN_ERROR, "options are not valid JSON: %s", sub);
  if (root->type != CNN_JSON_OBJECT) {
    rc = cnn_error(err, CNN_ERROR, "options must be a JSON object, got %s",
                   cnn_json_type_name(root->type));
    goto done;
  }
  for (size_t i = 0; i < root->count && rc == CNN_OK; i++) {
    const char *k = root->keys[i];
    const cnn_json *x = &root->items[i];
    if (!strcmp(k, "epochs")) {
      rc = int_opt(x, k, 0, CNN_MAX_EPOCHS, &o->epochs, err);
    } else if (!strcmp(k, "batch_size")) {
      rc = int_opt(x, k, 1, CNN_MAX_BATCH, &o->batch_size, err);
    } else if (!strcmp(k, "optimizer")) {
      o->has_optimizer = 1;
      if ((rc = cnn_optim_parse(&o->optimizer, x, sub)))
        rc = cnn_error(err, rc, "option optimizer: %s", sub);
    } else if (!strcmp(k, "learning_rate")) {
      if (x->type != CNN_JSON_NUMBER || !(x->number > 0 && x->number <= 10))
        rc = cnn_error(err, CNN_ERROR, "option learning_rate must be a number in (0, 10]");
      else
        o->learning_rate = x->number;
    } else if (!strcmp(k, "validation")) {
      if (x->type == CNN_JSON_NULL) continue;
      if (x->type != CNN_JSON_STRING || !x->string[0]) {
        rc = cnn_error(err, CNN_ERROR, "option validation must be a table name or a query");
        continue;
      }
      size_t n = strlen(x->string) + 1;
      cnn_free(o->validation);
      if (!(o->validation = cnn_malloc(n)))
        rc = cnn_nomem(err);
      else
        memcpy(o->validation, x->string, n);
    } else if (!strcmp(k, "shuffle")) {
      rc = bool_opt(x, k, &o->shuffle, err);
    } else if (!strcmp(k, "seed")) {
      if (x->type != CNN_JSON_NUMBER || x->number != floor(x->number) || x->number < 0 ||
          x->number > 9007199254740991.0)
        rc = cnn_error(err, CNN_ERROR, "option seed must be an integer 0..2^53-1");
      else
        o->has_seed = 1, o->seed = (uint64_t)x->number;
    } else if (!strcmp(k, "threads")) {
      rc = int_opt(x, k, 0, CNN_MAX_THREADS, &o->threads, err);
    } else if (!strcmp(k, "progress")) {
      rc = bool_opt(x, k, &o->progress, err);
    } else if (!strcmp(k, "early_stopping")) {
      if (x->type == CNN_JSON_FALSE || x->type == CNN_JSON_NULL) continue;
      rc = early_stopping(o, x, err);
    } else if (!strcmp(k, "max_seconds")) {
      if (x->type != CNN_JSON_NUMBER || !(x->number > 0 && x->number <= 1e9))
        rc = cnn_error(err, CNN_ERROR, "option max_seconds must be a number > 0");
      else
        o->max_seconds = x->number;
    } else {
      rc = cnn_error(err, CNN_ERROR,
                     "unknown option \"%.40s\" (epochs, batch_size, optimizer, learning_rate, "
                     "validation, shuffle, seed, threads, progress, early_stopping, max_seconds)",
                     k);
    }
  }
done:
  cnn_json_free(root);
  if (rc) cnn_train_options_clear(o);
  return rc;
}

void cnn_train_options_clear(cnn_train_options *o) {
  cnn_free(o->validation);
  o->validation = NULL;
}
