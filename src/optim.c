/*
 * optim.c - the optimizers of Keras, each one tight loop over the flat
 * parameter arena (state arrays are arenas of the same length), with Keras'
 * defaults and update rules (Keras 3 / tf.keras 2.11+):
 *
 *   sgd       v = m*v - lr*g;  w += v  (Nesterov: w += m*v - lr*g);  m = 0: w -= lr*g
 *   adam      m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2)
 *             w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
 *   adamax    m += (g - m)(1 - b1);  u = max(b2*u, |g|);  w -= lr / (1 - b1^t) * m / (u + eps)
 *   adagrad   a += g^2;  w -= lr * g / sqrt(a + eps),  a starts at 0.1
 *   rmsprop   v = rho*v + (1 - rho) g^2;  centered: mg = rho*mg + (1 - rho) g, v - mg^2
 *             step = lr * g / sqrt(v + eps); momentum: s = m*s + step;  w -= s
 *   adamw     adam with weight_decay 0.004
 * Weight decay (any optimizer's weight_decay, adamw's default) is Keras 3's
 * decoupled one, applied to every trainable value before the update above:
 * w -= lr * weight_decay * w.
 * (epsilon inside the root for adagrad and rmsprop, outside for adam and
 * adamax: Keras' own placements, which differ by far for small gradients).
 * The arena is split into chunks across the pool: disjoint outputs, and the
 * same arithmetic per element whatever the thread count, or whichever part
 * of the arena is updated first (cnn_optim_update).
 */
#include <math.h>
#include <string.h>

#include "cnn.h"
#include "json.h"

static const char *const names[] = {
    [CNN_OPTIM_SGD] = "sgd",         [CNN_OPTIM_ADAM] = "adam",       [CNN_OPTIM_ADAMAX] = "adamax",
    [CNN_OPTIM_ADAGRAD] = "adagrad", [CNN_OPTIM_RMSPROP] = "rmsprop", [CNN_OPTIM_ADAMW] = "adamw",
};

const char *cnn_optim_name(cnn_optim_kind kind) { return names[kind]; }

int cnn_optim_defaults(cnn_optim_config *cfg, const char *name, char *err) {
  memset(cfg, 0, sizeof *cfg);
  cfg->learning_rate = 0.001;
  cfg->beta_1 = 0.9, cfg->beta_2 = 0.999, cfg->epsilon = 1e-7;
  cfg->rho = 0.9;
  cfg->initial_accumulator_value = 0.1;
  if (!strcmp(name, "sgd")) {
    cfg->kind = CNN_OPTIM_SGD, cfg->learning_rate = 0.01;
  } else if (!strcmp(name, "momentum")) {
    cfg->kind = CNN_OPTIM_SGD, cfg->learning_rate = 0.01, cfg->momentum = 0.9;
  } else if (!strcmp(name, "adam")) {
    cfg->kind = CNN_OPTIM_ADAM;
  } else if (!strcmp(name, "adamw")) {
    cfg->kind = CNN_OPTIM_ADAMW, cfg->weight_decay = 0.004;
  } else if (!strcmp(name, "adamax")) {
    cfg->kind = CNN_OPTIM_ADAMAX;
  } else if (!strcmp(name, "adagrad")) {
    cfg->kind = CNN_OPTIM_ADAGRAD;
  } else if (!strcmp(name, "rmsprop")) {
    cfg->kind = CNN_OPTIM_RMSPROP;
  } else {
    return cnn_error(err, CNN_ERROR,
                     "unknown optimizer \"%.40s\" (sgd, momentum, adam, adamw, adamax, adagrad, "
                     "rmsprop)",
                     name);
  }
  return CNN_OK;
}

/* Which settings each optimizer takes besides name, learning_rate and
 * weight_decay (which all of Keras 3's take). */
static int takes(cnn_optim_kind k, const char *key) {
  static const char *const sgd[] = {"momentum", "nesterov", NULL};
  static const char *const adam[] = {"beta_1", "beta_2", "epsilon", NULL};
  static const char *const adagrad[] = {"epsilon", "initial_accumulator_value", NULL};
  static const char *const rmsprop[] = {"rho", "momentum", "epsilon", "centered", NULL};
  const char *const *list = k == CNN_OPTIM_SGD       ? sgd
                            : k == CNN_OPTIM_ADAGRAD ? adagrad
                            : k == CNN_OPTIM_RMSPROP ? rmsprop
                                                     : adam;
  for (; *list; list++)
    if (!strcmp(*list, key)) return 1;
  return 0;
}

static int number_in(const cnn_json *v, const char *key, double lo, double hi, int lo_open,
                     double *out, char *err) {
  char got[64];
  if (v->type != CNN_JSON_NUMBER || !(lo_open ? v->number > lo : v->number >= lo) ||
      !(v->number <= hi))
    return cnn_error(err, CNN_ERROR, "optimizer %s must be a number in %c%g, %g], got %s", key,
                     lo_open ? '(' : '[', lo, hi, cnn_json_describe(v, got, sizeof got));
  *out = v->number;
  return CNN_OK;
}

int cnn_optim_parse(cnn_optim_config *cfg, const cnn_json *v, char *err) {
  char got[64];
  if (v->type == CNN_JSON_STRING) return cnn_optim_defaults(cfg, v->string, err);
  if (v->type != CNN_JSON_OBJECT)
    return cnn_error(err, CNN_ERROR, "optimizer must be a name or an object with \"name\", got %s",
                     cnn_json_type_name(v->type));
  const cnn_json *name = cnn_json_get(v, "name");
  if (!name || name->type != CNN_JSON_STRING)
    return cnn_error(err, CNN_ERROR, "optimizer object needs \"name\" (text)");
  int rc = cnn_optim_defaults(cfg, name->string, err);
  if (rc) return rc;
  for (size_t i = 0; i < v->count; i++) {
    const char *k = v->keys[i];
    const cnn_json *x = &v->items[i];
    if (!strcmp(k, "name")) continue;
    if (strcmp(k, "learning_rate") && strcmp(k, "weight_decay") && !takes(cfg->kind, k))
      return cnn_error(err, CNN_ERROR, "optimizer %s has no setting \"%.40s\"", name->string, k);
    if (!strcmp(k, "learning_rate"))
      rc = number_in(x, k, 0, 10, 1, &cfg->learning_rate, err);
    else if (!strcmp(k, "weight_decay"))
      rc = number_in(x, k, 0, 1, 0, &cfg->weight_decay, err);
    else if (!strcmp(k, "momentum"))
      rc = number_in(x, k, 0, 1, 0, &cfg->momentum, err);
    else if (!strcmp(k, "beta_1") || !strcmp(k, "beta_2") || !strcmp(k, "rho"))
      rc = number_in(x, k, 0, 1, 0,
                     !strcmp(k, "beta_1")   ? &cfg->beta_1
                     : !strcmp(k, "beta_2") ? &cfg->beta_2
                                            : &cfg->rho,
                     err);
    else if (!strcmp(k, "epsilon"))
      rc = number_in(x, k, 0, 1, 1, &cfg->epsilon, err);
    else if (!strcmp(k, "initial_accumulator_value"))
      rc = number_in(x, k, 0, 1e6, 0, &cfg->initial_accumulator_value, err);
    else if (x->type != CNN_JSON_TRUE && x->type != CNN_JSON_FALSE)
      rc = cnn_error(err, CNN_ERROR, "optimizer %s must be true or false, got %s", k,
                     cnn_json_describe(x, got, sizeof got));
    else if (!strcmp(k, "nesterov"))
      cfg->nesterov = x->type == CNN_JSON_TRUE;
    else
      cfg->centered = x->type == CNN_JSON_TRUE;
    if (rc) return rc;
  }
  if (cfg->beta_1 >= 1 || cfg->beta_2 >= 1 || cfg->rho >= 1)
    return cnn_error(err, CNN_ERROR, "optimizer %s must be below 1, got 1",
                     cfg->beta_1 >= 1   ? "beta_1"
                     : cfg->beta_2 >= 1 ? "beta_2"
                                        : "rho");
  return CNN_OK;
}

char *cnn_optim_to_json(const cnn_optim_config *c) {
  cnn_buf b = {0};
  cnn_buf_printf(&b, "{\"name\":\"%s\",\"learning_rate\":", names[c->kind]);
  cnn_buf_json_number(&b, c->learning_rate);
  if (c->weight_decay > 0 || c->kind == CNN_OPTIM_ADAMW) {
    cnn_buf_puts(&b, ",\"weight_decay\":");
    cnn_buf_json_number(&b, c->weight_decay);
  }
  switch (c->kind) {
  case CNN_OPTIM_SGD:
    cnn_buf_puts(&b, ",\"momentum\":");
    cnn_buf_json_number(&b, c->momentum);
    cnn_buf_printf(&b, ",\"nesterov\":%s", c->nesterov ? "true" : "false");
    break;
  case CNN_OPTIM_ADAM:
  case CNN_OPTIM_ADAMW:
  case CNN_OPTIM_ADAMAX:
    cnn_buf_puts(&b, ",\"beta_1\":");
    cnn_buf_json_number(&b, c->beta_1);
    cnn_buf_puts(&b, ",\"beta_2\":");
    cnn_buf_json_number(&b, c->beta_2);
    cnn_buf_puts(&b, ",\"epsilon\":");
    cnn_buf_json_number(&b, c->epsilon);
    break;
  case CNN_OPTIM_ADAGRAD:
    cnn_buf_puts(&b, ",\"initial_accumulator_value\":");
    cnn_buf_json_number(&b, c->initial_accumulator_value);
    cnn_buf_puts(&b, ",\"epsilon\":");
    cnn_buf_json_number(&b, c->epsilon);
    break;
  case CNN_OPTIM_RMSPROP:
    cnn_buf_puts(&b, ",\"rho\":");
    cnn_buf_json_number(&b, c->rho);
    cnn_buf_puts(&b, ",\"momentum\":");
    cnn_buf_json_number(&b, c->momentum);
    cnn_buf_puts(&b, ",\"epsilon\":");
    cnn_buf_json_number(&b, c->epsilon);
    cnn_buf_printf(&b, ",\"centered\":%s", c->centered ? "true" : "false");
    break;
  }
  cnn_buf_puts(&b, "}");
  return cnn_buf_finish(&b);
}

int cnn_optim_slots(const cnn_optim_config *c) {
  switch (c->kind) {
  case CNN_OPTIM_SGD:
    return c->momentum > 0 ? 1 : 0;
  case CNN_OPTIM_ADAM:
  case CNN_OPTIM_ADAMW:
  case CNN_OPTIM_ADAMAX:
    return 2;
  case CNN_OPTIM_ADAGRAD:
    return 1;
  case CNN_OPTIM_RMSPROP:
    return 1 + (c->momentum > 0) + (c->centered != 0);
  }
  return 0;
}

const char *cnn_optim_slot_name(const cnn_optim_config *c, int slot) {
  switch (c->kind) {
  case CNN_OPTIM_SGD:
    return "momentum";
  case CNN_OPTIM_ADAM:
  case CNN_OPTIM_ADAMW:
    return slot ? "velocity" : "momentum";
  case CNN_OPTIM_ADAMAX:
    return slot ? "norm" : "momentum";
  case CNN_OPTIM_ADAGRAD:
    return "accumulator";
  case CNN_OPTIM_RMSPROP:
    if (slot == 0) return "velocity";
    if (slot == 1 && c->momentum > 0) return "momentum";
    return "average_gradient";
  }
  return "";
}

int cnn_optim_init(cnn_optim *opt, const cnn_optim_config *cfg, size_t nparams, char *err) {
  memset(opt, 0, sizeof *opt);
  opt->cfg = *cfg;
  opt->n = nparams;
  opt->nslots = cnn_optim_slots(cfg);
  if (opt->nslots) {
    size_t bytes;
    if (cnn_mul_size(&bytes, nparams, (size_t)opt->nslots * sizeof(float)))
      return cnn_error(err, CNN_ERROR, "optimizer state of %d arrays of %zu values is too large",
                       opt->nslots, nparams);
    opt->state = cnn_calloc(1, bytes);
    if (!opt->state) return cnn_nomem(err);
  }
  if (cfg->kind == CNN_OPTIM_ADAGRAD)
    for (size_t i = 0; i < nparams; i++) opt->state[i] = (float)cfg->initial_accumulator_value;
  return CNN_OK;
}

void cnn_optim_clear(cnn_optim *opt) {
  cnn_free(opt->state);
  memset(opt, 0, sizeof *opt);
}

typedef struct {
  cnn_optim *opt;
  float *w;
  const float *g;
  size_t lo;   /* the first value updated */
  cnn_isa isa; /* of the pool */
} step_task;

CNN_INLINE void step_range_body(const step_task *t, size_t lo, size_t hi) {
  const cnn_optim_config *c = &t->opt->cfg;
  float *restrict w = t->w;
  const float *restrict g = t->g;
  size_t n = t->opt->n;
  float *restrict s0 = t->opt->state, *restrict s1 = s0 ? s0 + n : NULL;
  float *restrict s2 = s0 ? s0 + 2 * n : NULL;
  float lr = (float)c->learning_rate, eps = (float)c->epsilon;
  float mom = (float)c->momentum, decay = t->opt->decay;
  /* Keras 3 decays the weights before the optimizer's own update, so the
   * update below sees the decayed w (momentum's and Nesterov's included). */
  if (decay > 0)
    for (size_t i = lo; i < hi; i++) w[i] -= w[i] * decay;
  switch (c->kind) {
  case CNN_OPTIM_SGD:
    if (mom <= 0) {
      for (size_t i = lo; i < hi; i++) w[i] -= lr * g[i];
    } else if (c->nesterov) {
      for (size_t i = lo; i < hi; i++) {
        s0[i] = mom * s0[i] - lr * g[i];
        w[i] += mom * s0[i] - lr * g[i];
      }
    } else {
      for (size_t i = lo; i < hi; i++) {
        s0[i] = mom * s0[i] - lr * g[i];
        w[i] += s0[i];
      }
    }
    break;
  case CNN_OPTIM_ADAM:
  case CNN_OPTIM_ADAMW: {
    float b1 = 1.0f - (float)c->beta_1, b2 = 1.0f - (float)c->beta_2, alpha = t->opt->alpha;
    for (size_t i = lo; i < hi; i++) {
      s0[i] += (g[i] - s0[i]) * b1;
      s1[i] += (g[i] * g[i] - s1[i]) * b2;
      w[i] -= s0[i] * alpha / (sqrtf(s1[i]) + eps);
    }
    break;
  }
  case CNN_OPTIM_ADAMAX: {
    float b1 = 1.0f - (float)c->beta_1, beta2 = (float)c->beta_2, alpha = t->opt->alpha;
    for (size_t i = lo; i < hi; i++) {
      s0[i] += (g[i] - s0[i]) * b1;
      s1[i] = fmaxf(beta2 * s1[i], fabsf(g[i]));
      w[i] -= alpha * s0[i] / (s1[i] + eps);
    }
    break;
  }
  case CNN_OPTIM_ADAGRAD:
    for (size_t i = lo; i < hi; i++) {
      s0[i] += g[i] * g[i];
      w[i] -= lr * g[i] / sqrtf(s0[i] + eps);
    }
    break;
  case CNN_OPTIM_RMSPROP: {
    float rho = (float)c->rho;
    float *restrict ms = mom > 0 ? s1 : NULL;
    float *restrict mg = c->centered ? (mom > 0 ? s2 : s1) : NULL;
    for (size_t i = lo; i < hi; i++) {
      s0[i] = rho * s0[i] + (1 - rho) * g[i] * g[i];
      float den = s0[i] + eps;
      if (mg) {
        mg[i] = rho * mg[i] + (1 - rho) * g[i];
        den -= mg[i] * mg[i];
      }
      float step = lr * g[i] / sqrtf(den);
      if (ms) {
        ms[i] = mom * ms[i] + step;
        step = ms[i];
      }
      w[i] -= step;
    }
    break;
  }
  }
}

/* The update loops, compiled for each instruction set (isa.h). */
CNN_ISA_CLONES(step_range, (const step_task *t, size_t lo, size_t hi), (t, lo, hi))

static void step_task_run(void *ctx, size_t lo, size_t hi, int thread) {
  (void)thread;
  const step_task *t = ctx;
  step_range_isa(t->isa, t, t->lo + lo, t->lo + hi);
}

void cnn_optim_begin(cnn_optim *opt) {
  opt->step++;
  const cnn_optim_config *c = &opt->cfg;
  double t = (double)opt->step;
  opt->decay = (float)(c->learning_rate * c->weight_decay);
  opt->alpha = 0;
  if (c->kind == CNN_OPTIM_ADAM || c->kind == CNN_OPTIM_ADAMW)
    opt->alpha = (float)(c->learning_rate * sqrt(1 - pow(c->beta_2, t)) / (1 - pow(c->beta_1, t)));
  else if (c->kind == CNN_OPTIM_ADAMAX)
    opt->alpha = (float)(c->learning_rate / (1 - pow(c->beta_1, t)));
}

void cnn_optim_update(cnn_optim *opt, float *params, const float *grads, size_t lo, size_t hi,
                      cnn_threads *pool) {
  if (hi > opt->n) hi = opt->n;
  if (lo >= hi) return;
  step_task task = {opt, params, grads, lo, cnn_threads_isa(pool)};
  /* Tasks of 256 KB of each array: big enough to amortise a task. */
  cnn_threads_for(pool, hi - lo, 1 << 16, step_task_run, &task);
}

void cnn_optim_update_serial(cnn_optim *opt, float *params, const float *grads, size_t lo,
                             size_t hi, const cnn_threads *like) {
  if (hi > opt->n) hi = opt->n;
  if (lo >= hi) return;
  step_task task = {opt, params, grads, lo, cnn_threads_isa(like)};
  step_task_run(&task, 0, hi - lo, 0);
}

void cnn_optim_step(cnn_optim *opt, float *params, const float *grads, cnn_threads *pool) {
  cnn_optim_begin(opt);
  cnn_optim_update(opt, params, grads, 0, opt->n, pool);
}
