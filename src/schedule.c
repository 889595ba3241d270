/*
 * schedule.c - learning-rate schedules (Keras' keras.optimizers.schedules):
 * the training option "learning_rate" given as an object, and the rate it
 * gives at an optimizer step.
 *
 * The step is the optimizer's update count before the update (Keras'
 * optimizer.iterations), which is stored with the model, so a run resumed in
 * another call continues the schedule where the last one stopped. Keras
 * evaluates in float32; here the rate is computed in double and rounded to
 * float where the optimizer uses it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cnn.h"
#include "json.h"

#define CNN_PI 3.14159265358979323846

static const char *const kind_names[] = {NULL, "exponential_decay", "cosine_decay",
                                         "piecewise_constant"};
/* Keys each schedule takes, "schedule" first; the required ones lead. */
static const char *const kind_keys[][6] = {
    {NULL},
    {"schedule", "initial_learning_rate", "decay_steps", "decay_rate", "staircase", NULL},
    {"schedule", "initial_learning_rate", "decay_steps", "alpha", NULL},
    {"schedule", "boundaries", "values", NULL}};
static const int kind_required[] = {0, 3, 2, 2}; /* keys after "schedule" */

/* decay_steps and boundaries count optimizer steps; 1e15 is far beyond any
 * run and keeps the arithmetic exact in a double. */
#define MAX_STEPS 1e15

static int number_in(const cnn_json *x, const char *key, double lo, double hi, int open_lo,
                     const char *range, double *out, char *err) {
  char got[64];
  if (x->type != CNN_JSON_NUMBER || !(open_lo ? x->number > lo : x->number >= lo) ||
      !(x->number <= hi))
    return cnn_error(err, CNN_ERROR, "option learning_rate.%s must be a number in %s; got %s", key,
                     range, cnn_json_describe(x, got, sizeof got));
  *out = x->number;
  return CNN_OK;
}

/* An array by its length: the reason it is refused is how many it holds. */
static const char *describe(const cnn_json *x, char *buf, size_t size) {
  if (x->type != CNN_JSON_ARRAY) return cnn_json_describe(x, buf, size);
  if (x->count == 0) return "an empty array";
  snprintf(buf, size, "an array of %zu", x->count);
  return buf;
}

static int list_keys(cnn_lr_kind kind, const char *key, char *err) {
  cnn_buf b = {0};
  cnn_buf_printf(&b, "unknown option learning_rate.%.40s for %s (", key, kind_names[kind]);
  for (int i = 0; kind_keys[kind][i]; i++)
    cnn_buf_printf(&b, "%s%s", i ? ", " : "", kind_keys[kind][i]);
  cnn_buf_puts(&b, ")");
  char *msg = cnn_buf_finish(&b);
  if (!msg) return cnn_nomem(err);
  cnn_error(err, CNN_ERROR, "%s", msg);
  cnn_free(msg);
  return CNN_ERROR;
}

static int boundaries(cnn_lr_schedule *s, const cnn_json *x, char *err) {
  char got[64];
  if (x->type != CNN_JSON_ARRAY || x->count > CNN_MAX_BOUNDARIES)
    return cnn_error(err, CNN_ERROR,
                     "option learning_rate.boundaries must be an array of at most %d step "
                     "numbers; got %s",
                     CNN_MAX_BOUNDARIES, describe(x, got, sizeof got));
  for (size_t i = 0; i < x->count; i++) {
    const cnn_json *b = &x->items[i];
    if (b->type != CNN_JSON_NUMBER || !(b->number >= 0 && b->number <= MAX_STEPS))
      return cnn_error(err, CNN_ERROR,
                       "option learning_rate.boundaries[%zu] must be a number in [0, 1e15]; got %s",
                       i, cnn_json_describe(b, got, sizeof got));
    /* Keras' intervals (b[i-1], b[i]] would be empty otherwise. */
    if (i && !(b->number > s->boundaries[i - 1]))
      return cnn_error(err, CNN_ERROR,
                       "option learning_rate.boundaries must increase; boundaries[%zu] is %s after "
                       "%.17g",
                       i, cnn_json_describe(b, got, sizeof got), s->boundaries[i - 1]);
    s->boundaries[i] = b->number;
  }
  s->nboundaries = (int)x->count;
  return CNN_OK;
}

static int values(cnn_lr_schedule *s, const cnn_json *x, char *err) {
  char got[64];
  if (x->type != CNN_JSON_ARRAY || x->count < 1 || x->count > CNN_MAX_BOUNDARIES + 1)
    return cnn_error(err, CNN_ERROR,
                     "option learning_rate.values must be an array of 1..%d learning rates; got %s",
                     CNN_MAX_BOUNDARIES + 1, describe(x, got, sizeof got));
  for (size_t i = 0; i < x->count; i++) {
    const cnn_json *v = &x->items[i];
    if (v->type != CNN_JSON_NUMBER || !(v->number > 0 && v->number <= 10))
      return cnn_error(err, CNN_ERROR,
                       "option learning_rate.values[%zu] must be a number in (0, 10]; got %s", i,
                       cnn_json_describe(v, got, sizeof got));
    s->values[i] = v->number;
  }
  return CNN_OK;
}

int cnn_lr_schedule_parse(cnn_lr_schedule *s, const cnn_json *v, char *err) {
  char got[64];
  memset(s, 0, sizeof *s);
  const cnn_json *name = cnn_json_get(v, "schedule");
  if (!name)
    return cnn_error(err, CNN_ERROR,
                     "option learning_rate needs \"schedule\": \"exponential_decay\", "
                     "\"cosine_decay\" or \"piecewise_constant\"");
  for (int k = CNN_LR_EXPONENTIAL; k <= CNN_LR_PIECEWISE; k++)
    if (name->type == CNN_JSON_STRING && !strcmp(name->string, kind_names[k])) s->kind = k;
  if (!s->kind)
    return cnn_error(err, CNN_ERROR,
                     "option learning_rate.schedule must be \"exponential_decay\", "
                     "\"cosine_decay\" or \"piecewise_constant\"; got %s",
                     cnn_json_describe(name, got, sizeof got));
  int rc = CNN_OK;
  for (size_t i = 0; i < v->count && rc == CNN_OK; i++) {
    const char *k = v->keys[i];
    const cnn_json *x = &v->items[i];
    int known = 0;
    for (int j = 0; kind_keys[s->kind][j]; j++) known |= !strcmp(k, kind_keys[s->kind][j]);
    if (!known)
      rc = list_keys(s->kind, k, err);
    else if (!strcmp(k, "schedule"))
      continue;
    else if (!strcmp(k, "initial_learning_rate"))
      rc = number_in(x, k, 0, 10, 1, "(0, 10]", &s->initial, err);
    else if (!strcmp(k, "decay_steps"))
      rc = number_in(x, k, 0, MAX_STEPS, 1, "(0, 1e15]", &s->decay_steps, err);
    else if (!strcmp(k, "decay_rate"))
      rc = number_in(x, k, 0, 1, 1, "(0, 1]", &s->decay_rate, err);
    else if (!strcmp(k, "alpha"))
      rc = number_in(x, k, 0, 1, 0, "[0, 1]", &s->alpha, err);
    else if (!strcmp(k, "staircase")) {
      if (x->type != CNN_JSON_TRUE && x->type != CNN_JSON_FALSE)
        rc = cnn_error(err, CNN_ERROR,
                       "option learning_rate.staircase must be true or false; got %s",
                       cnn_json_describe(x, got, sizeof got));
      s->staircase = x->type == CNN_JSON_TRUE;
    } else if (!strcmp(k, "boundaries"))
      rc = boundaries(s, x, err);
    else
      rc = values(s, x, err);
  }
  /* Keras takes these as required arguments: no default would be its. */
  for (int j = 1; rc == CNN_OK && j <= kind_required[s->kind]; j++)
    if (!cnn_json_get(v, kind_keys[s->kind][j])) {
      cnn_buf b = {0};
      for (int i = 1; i <= kind_required[s->kind]; i++)
        cnn_buf_printf(&b, "%s%s", i > 1 ? ", " : "", kind_keys[s->kind][i]);
      char *need = cnn_buf_finish(&b);
      if (!need) return cnn_nomem(err);
      rc = cnn_error(err, CNN_ERROR, "option learning_rate.%s is missing (%s needs %s)",
                     kind_keys[s->kind][j], kind_names[s->kind], need);
      cnn_free(need);
    }
  if (rc == CNN_OK && s->kind == CNN_LR_PIECEWISE) {
    size_t nv = cnn_json_get(v, "values")->count;
    if (nv != (size_t)s->nboundaries + 1)
      rc = cnn_error(err, CNN_ERROR,
                     "option learning_rate.values must have one more entry than boundaries; got "
                     "%zu value%s for %d boundar%s",
                     nv, nv == 1 ? "" : "s", s->nboundaries, s->nboundaries == 1 ? "y" : "ies");
  }
  if (rc) memset(s, 0, sizeof *s);
  return rc;
}

double cnn_lr_schedule_rate(const cnn_lr_schedule *s, int64_t step) {
  double t = (double)step;
  switch (s->kind) {
  case CNN_LR_EXPONENTIAL: {
    double p = t / s->decay_steps;
    return s->initial * pow(s->decay_rate, s->staircase ? floor(p) : p);
  }
  case CNN_LR_COSINE: {
    double done = (t < s->decay_steps ? t : s->decay_steps) / s->decay_steps;
    return s->initial * ((1 - s->alpha) * 0.5 * (1 + cos(CNN_PI * done)) + s->alpha);
  }
  case CNN_LR_PIECEWISE: {
    /* values[i] for step in (boundaries[i-1], boundaries[i]]. */
    int i = 0;
    while (i < s->nboundaries && t > s->boundaries[i]) i++;
    return s->values[i];
  }
  default:
    return 0;
  }
}
