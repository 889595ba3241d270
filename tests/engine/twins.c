/*
 * twins.c - the reference twins of twins.h: one straight loop nest per
 * formula, double accumulation, no blocking, no threads, no vectors. Written
 * from the definitions, not from the engine's kernels: Keras' window rules
 * and layouts, the activations as Keras 3 defines them, and the optimizers as
 * Keras 3's update_step methods write them (keras/src/optimizers/, one file each).
 */
#include "twins.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

int twin_geom_init(twin_geom *g) {
  if (g->same) {
    g->oh = (g->h + g->sh - 1) / g->sh;
    g->ow = (g->w + g->sw - 1) / g->sw;
    int th = (g->oh - 1) * g->sh + g->kh - g->h, tw = (g->ow - 1) * g->sw + g->kw - g->w;
    g->pad_top = th > 0 ? th / 2 : 0;
    g->pad_left = tw > 0 ? tw / 2 : 0;
  } else {
    if (g->kh > g->h || g->kw > g->w) return 0;
    g->oh = (g->h - g->kh) / g->sh + 1;
    g->ow = (g->w - g->kw) / g->sw + 1;
    g->pad_top = g->pad_left = 0;
  }
  return 1;
}

/* Index of x[i][r][q][ch] in an [n, h, w, c] array. */
static size_t at(int h, int w, int c, int i, int r, int q, int ch) {
  return (((size_t)i * h + r) * w + q) * c + ch;
}

/* ---- conv2d ------------------------------------------------------------------ */

void twin_conv2d_forward(double *y, double *scale, const float *x, const float *w, const float *b,
                         int relu, const twin_geom *g, int f) {
  for (int i = 0; i < g->n; i++)
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++)
        for (int o = 0; o < f; o++) {
          double s = b ? b[o] : 0.0, a = b ? fabs(b[o]) : 0.0;
          for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
              int iy = oy * g->sh + ky - g->pad_top, ix = ox * g->sw + kx - g->pad_left;
              if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue; /* zero padding */
              for (int c = 0; c < g->c; c++) {
                double t = (double)x[at(g->h, g->w, g->c, i, iy, ix, c)] *
                           w[(((size_t)ky * g->kw + kx) * g->c + c) * f + o];
                s += t, a += fabs(t);
              }
            }
          if (relu && !(s > 0)) s = 0;
          size_t k = at(g->oh, g->ow, f, i, oy, ox, o);
          y[k] = s;
          if (scale) scale[k] = a;
        }
}

void twin_conv2d_backward(double *dx, double *dx_scale, double *dw, double *dw_scale, double *db,
                          double *db_scale, const float *dy, const float *x, const float *w,
                          const twin_geom *g, int f) {
  size_t nx = (size_t)g->n * g->h * g->w * g->c, nw = (size_t)g->kh * g->kw * g->c * f;
  double dummy;
  if (dx) memset(dx, 0, nx * sizeof *dx);
  if (dx_scale) memset(dx_scale, 0, nx * sizeof *dx_scale);
  memset(dw, 0, nw * sizeof *dw);
  if (dw_scale) memset(dw_scale, 0, nw * sizeof *dw_scale);
  if (db) memset(db, 0, f * sizeof *db);
  if (db_scale) memset(db_scale, 0, f * sizeof *db_scale);
  for (int i = 0; i < g->n; i++)
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++)
        for (int o = 0; o < f; o++) {
          double d = dy[at(g->oh, g->ow, f, i, oy, ox, o)];
          if (db) db[o] += d;
          *(db_scale ? &db_scale[o] : &dummy) += fabs(d);
          for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
              int iy = oy * g->sh + ky - g->pad_top, ix = ox * g->sw + kx - g->pad_left;
              if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
              for (int c = 0; c < g->c; c++) {
                size_t xi = at(g->h, g->w, g->c, i, iy, ix, c);
                size_t wi = (((size_t)ky * g->kw + kx) * g->c + c) * f + o;
                double tx = d * w[wi], tw = d * x[xi];
                if (dx) dx[xi] += tx;
                if (dx_scale) dx_scale[xi] += fabs(tx);
                dw[wi] += tw;
                if (dw_scale) dw_scale[wi] += fabs(tw);
              }
            }
        }
}

/* ---- pooling ----------------------------------------------------------------- */

/* The window of output (oy, ox) clipped to the image: rows [*y0, *y1), columns
 * [*x0, *x1). */
static void window(const twin_geom *g, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
  int top = oy * g->sh - g->pad_top, left = ox * g->sw - g->pad_left;
  *y0 = top < 0 ? 0 : top;
  *x0 = left < 0 ? 0 : left;
  *y1 = top + g->kh > g->h ? g->h : top + g->kh;
  *x1 = left + g->kw > g->w ? g->w : left + g->kw;
}

/* Winning cell of output (i, oy, ox, c), as an index into image i. */
static int32_t max_cell(const float *x, const twin_geom *g, int i, int oy, int ox, int c) {
  int y0, y1, x0, x1;
  window(g, oy, ox, &y0, &y1, &x0, &x1);
  const float *img = x + (size_t)i * g->h * g->w * g->c;
  int32_t best = -1;
  for (int r = y0; r < y1; r++)
    for (int q = x0; q < x1; q++) {
      int32_t k = (int32_t)(((size_t)r * g->w + q) * g->c + c);
      if (best < 0 || img[k] > img[best] || isnan(img[k])) best = k;
    }
  return best;
}

void twin_maxpool_forward(double *y, int32_t *arg, const float *x, const twin_geom *g) {
  for (int i = 0; i < g->n; i++)
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++)
        for (int c = 0; c < g->c; c++) {
          int32_t k = max_cell(x, g, i, oy, ox, c);
          size_t o = at(g->oh, g->ow, g->c, i, oy, ox, c);
          y[o] = x[(size_t)i * g->h * g->w * g->c + k];
          if (arg) arg[o] = k;
        }
}

void twin_maxpool_backward(double *dx, const float *dy, const float *x, const twin_geom *g) {
  size_t img = (size_t)g->h * g->w * g->c;
  memset(dx, 0, g->n * img * sizeof *dx);
  for (int i = 0; i < g->n; i++)
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++)
        for (int c = 0; c < g->c; c++)
          dx[i * img + max_cell(x, g, i, oy, ox, c)] += dy[at(g->oh, g->ow, g->c, i, oy, ox, c)];
}

void twin_avgpool_forward(double *y, const float *x, const twin_geom *g) {
  for (int i = 0; i < g->n; i++)
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++)
        for (int c = 0; c < g->c; c++) {
          int y0, y1, x0, x1;
          window(g, oy, ox, &y0, &y1, &x0, &x1);
          double s = 0;
          for (int r = y0; r < y1; r++)
            for (int q = x0; q < x1; q++) s += x[at(g->h, g->w, g->c, i, r, q, c)];
          y[at(g->oh, g->ow, g->c, i, oy, ox, c)] = s / ((y1 - y0) * (x1 - x0));
        }
}

void twin_avgpool_backward(double *dx, const float *dy, const twin_geom *g) {
  memset(dx, 0, (size_t)g->n * g->h * g->w * g->c * sizeof *dx);
  for (int i = 0; i < g->n; i++)
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++)
        for (int c = 0; c < g->c; c++) {
          int y0, y1, x0, x1;
          window(g, oy, ox, &y0, &y1, &x0, &x1);
          double d = dy[at(g->oh, g->ow, g->c, i, oy, ox, c)] / ((y1 - y0) * (x1 - x0));
          for (int r = y0; r < y1; r++)
            for (int q = x0; q < x1; q++) dx[at(g->h, g->w, g->c, i, r, q, c)] += d;
        }
}

/* ---- dense ------------------------------------------------------------------- */

void twin_dense_forward(double *y, double *scale, const float *x, const float *w, const float *b,
                        int relu, int n, int in, int out) {
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out; o++) {
      double s = b ? b[o] : 0.0, a = b ? fabs(b[o]) : 0.0;
      for (int k = 0; k < in; k++) {
        double t = (double)x[(size_t)i * in + k] * w[(size_t)k * out + o];
        s += t, a += fabs(t);
      }
      if (relu && !(s > 0)) s = 0;
      y[(size_t)i * out + o] = s;
      if (scale) scale[(size_t)i * out + o] = a;
    }
}

void twin_dense_backward(double *dx, double *dx_scale, double *dw, double *dw_scale, double *db,
                         double *db_scale, const float *dy, const float *x, const float *w, int n,
                         int in, int out) {
  for (int i = 0; dx && i < n; i++)
    for (int k = 0; k < in; k++) {
      double s = 0, a = 0;
      for (int o = 0; o < out; o++) {
        double t = (double)dy[(size_t)i * out + o] * w[(size_t)k * out + o];
        s += t, a += fabs(t);
      }
      dx[(size_t)i * in + k] = s;
      if (dx_scale) dx_scale[(size_t)i * in + k] = a;
    }
  for (int k = 0; k < in; k++)
    for (int o = 0; o < out; o++) {
      double s = 0, a = 0;
      for (int i = 0; i < n; i++) {
        double t = (double)x[(size_t)i * in + k] * dy[(size_t)i * out + o];
        s += t, a += fabs(t);
      }
      dw[(size_t)k * out + o] = s;
      if (dw_scale) dw_scale[(size_t)k * out + o] = a;
    }
  for (int o = 0; db && o < out; o++) {
    double s = 0, a = 0;
    for (int i = 0; i < n; i++) s += dy[(size_t)i * out + o], a += fabs(dy[(size_t)i * out + o]);
    db[o] = s;
    if (db_scale) db_scale[o] = a;
  }
}

/* ---- activations ------------------------------------------------------------- */

#define TWIN_SELU_ALPHA 1.6732632423543772848170429916717
#define TWIN_SELU_SCALE 1.0507009873554804934193349852946

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

static double act_value(const twin_act *a, double z) {
  switch (a->kind) {
  case CNN_ACT_LINEAR:
    return z;
  case CNN_ACT_RELU:
    return z > 0 ? z : 0;
  case CNN_ACT_SIGMOID:
    return sigmoid(z);
  case CNN_ACT_TANH:
    return tanh(z);
  case CNN_ACT_SOFTMAX: /* by rows, in twin_act_forward */
    return NAN;
  case CNN_ACT_LEAKY_RELU:
    return z > 0 ? z : a->alpha * z;
  case CNN_ACT_ELU:
    return z > 0 ? z : a->alpha * (exp(z) - 1);
  case CNN_ACT_SELU:
    return TWIN_SELU_SCALE * (z > 0 ? z : TWIN_SELU_ALPHA * (exp(z) - 1));
  case CNN_ACT_GELU: /* exact: z * Phi(z) */
    return 0.5 * z * (1 + erf(z / sqrt(2.0)));
  case CNN_ACT_SWISH:
    return z * sigmoid(z);
  case CNN_ACT_SOFTPLUS:
    return log1p(exp(z));
  case CNN_ACT_SOFTSIGN:
    return z / (1 + fabs(z));
  case CNN_ACT_HARD_SIGMOID: /* relu6(z + 3) / 6 */
    return fmin(fmax(z + 3, 0), 6) / 6;
  case CNN_ACT_EXPONENTIAL:
    return exp(z);
  case CNN_ACT_EXPR:
    return a->f(z);
  }
  return NAN;
}

static double act_slope(const twin_act *a, double z) {
  switch (a->kind) {
  case CNN_ACT_LINEAR:
    return 1;
  case CNN_ACT_RELU:
    return z > 0 ? 1 : 0;
  case CNN_ACT_SIGMOID:
    return sigmoid(z) * (1 - sigmoid(z));
  case CNN_ACT_TANH:
    return 1 - tanh(z) * tanh(z);
  case CNN_ACT_SOFTMAX:
    return NAN;
  case CNN_ACT_LEAKY_RELU:
    return z > 0 ? 1 : a->alpha;
  case CNN_ACT_ELU:
    return z > 0 ? 1 : a->alpha * exp(z);
  case CNN_ACT_SELU:
    return TWIN_SELU_SCALE * (z > 0 ? 1 : TWIN_SELU_ALPHA * exp(z));
  case CNN_ACT_GELU: /* Phi(z) + z phi(z) */
    return 0.5 * (1 + erf(z / sqrt(2.0))) +
           z * exp(-0.5 * z * z) / 2.5066282746310002 /* sqrt(2 pi) */;
  case CNN_ACT_SWISH:
    return sigmoid(z) + z * sigmoid(z) * (1 - sigmoid(z));
  case CNN_ACT_SOFTPLUS:
    return sigmoid(z);
  case CNN_ACT_SOFTSIGN:
    return 1 / ((1 + fabs(z)) * (1 + fabs(z)));
  case CNN_ACT_HARD_SIGMOID:
    return z > -3 && z < 3 ? 1.0 / 6 : 0;
  case CNN_ACT_EXPONENTIAL:
    return exp(z);
  case CNN_ACT_EXPR:
    return a->df(z);
  }
  return NAN;
}

static void softmax_row(double *y, const float *z, size_t cols) {
  double m = z[0], sum = 0;
  for (size_t j = 1; j < cols; j++) m = z[j] > m ? z[j] : m;
  for (size_t j = 0; j < cols; j++) sum += y[j] = exp(z[j] - m);
  for (size_t j = 0; j < cols; j++) y[j] /= sum;
}

void twin_act_forward(double *y, const float *z, const twin_act *a, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; r++) {
    if (a->kind == CNN_ACT_SOFTMAX) {
      softmax_row(y + r * cols, z + r * cols, cols);
      continue;
    }
    for (size_t j = 0; j < cols; j++) y[r * cols + j] = act_value(a, z[r * cols + j]);
  }
}

void twin_act_backward(double *dz, const float *dy, const float *z, const twin_act *a, size_t rows,
                       size_t cols) {
  for (size_t r = 0; r < rows; r++) {
    const float *zr = z + r * cols, *dyr = dy + r * cols;
    double *dzr = dz + r * cols;
    if (a->kind == CNN_ACT_SOFTMAX) {
      /* dz_j = sum_k dy_k d y_k / d z_j = sum_k dy_k y_k ([j == k] - y_j) */
      double *y = malloc(cols * sizeof *y);
      if (!y) abort(); /* a test's few bytes */
      softmax_row(y, zr, cols);
      for (size_t j = 0; j < cols; j++) {
        double s = 0;
        for (size_t k = 0; k < cols; k++) s += dyr[k] * y[k] * ((j == k) - y[j]);
        dzr[j] = s;
      }
      free(y);
      continue;
    }
    for (size_t j = 0; j < cols; j++) dzr[j] = dyr[j] * act_slope(a, zr[j]);
  }
}

/* ---- dropout ----------------------------------------------------------------- */

void twin_dropout_mask(uint8_t *keep, uint64_t seed, double rate, size_t count) {
  cnn_rng r;
  cnn_rng_seed(&r, seed);
  for (size_t i = 0; i < count; i++) keep[i] = !(cnn_rng_float(&r) < rate);
}

void twin_dropout_forward(double *y, const float *x, const uint8_t *keep, double rate,
                          size_t count) {
  for (size_t i = 0; i < count; i++) y[i] = keep[i] ? x[i] / (1 - rate) : 0.0;
}

/* ---- batchnorm ---------------------------------------------------------------- */

void twin_batchnorm_forward(double *y, double *scale, double *mean, double *var, const float *x,
                            const float *gamma, const float *beta, const float *moving_mean,
                            const float *moving_var, double eps, int training, size_t rows, int c) {
  for (int k = 0; k < c; k++) {
    double mu = 0, v = 0;
    if (training) {
      for (size_t r = 0; r < rows; r++) mu += x[r * c + k];
      mu /= rows;
      for (size_t r = 0; r < rows; r++) v += (x[r * c + k] - mu) * (x[r * c + k] - mu);
      v /= rows;
      mean[k] = mu, var[k] = v;
    } else {
      mu = moving_mean[k], v = moving_var[k];
    }
    double g = gamma ? gamma[k] : 1.0, b = beta ? beta[k] : 0.0, sd = sqrt(v + eps);
    for (size_t r = 0; r < rows; r++) {
      y[r * c + k] = g * (x[r * c + k] - mu) / sd + b;
      if (scale) scale[r * c + k] = (fabs(x[r * c + k]) + fabs(mu)) * fabs(g) / sd + fabs(b);
    }
  }
}

void twin_batchnorm_moving(double *moving, const float *before, const double *batch,
                           double momentum, int c) {
  for (int k = 0; k < c; k++) moving[k] = before[k] * momentum + batch[k] * (1 - momentum);
}

void twin_batchnorm_backward(double *dx, double *dgamma, double *dbeta, const float *dy,
                             const float *x, const float *gamma, double eps, size_t rows, int c) {
  for (int k = 0; k < c; k++) {
    double mu = 0, v = 0;
    for (size_t r = 0; r < rows; r++) mu += x[r * c + k];
    mu /= rows;
    for (size_t r = 0; r < rows; r++) v += (x[r * c + k] - mu) * (x[r * c + k] - mu);
    v /= rows;
    double g = gamma ? gamma[k] : 1.0, inv = 1 / sqrt(v + eps);
    /* xhat = (x - mu) inv; y = g xhat + b. dL/dxhat = dy g, then through
     * var = mean((x - mu)^2) and mu = mean(x). */
    double dvar = 0, dmu = 0, sumdev = 0, dg = 0, db = 0;
    for (size_t r = 0; r < rows; r++) {
      double d = x[r * c + k] - mu, dxh = dy[r * c + k] * g;
      dvar += dxh * d * -0.5 * inv * inv * inv;
      dmu += -dxh * inv;
      sumdev += -2 * d;
      dg += dy[r * c + k] * d * inv;
      db += dy[r * c + k];
    }
    dmu += dvar * sumdev / rows;
    for (size_t r = 0; r < rows; r++) {
      double d = x[r * c + k] - mu;
      dx[r * c + k] = dy[r * c + k] * g * inv + dvar * 2 * d / rows + dmu / rows;
    }
    dgamma[k] = dg, dbeta[k] = db;
  }
}

/* ---- global average pooling ----------------------------------------------------- */

void twin_globalavgpool_forward(double *y, const float *x, int n, int m, int c) {
  for (int i = 0; i < n; i++)
    for (int k = 0; k < c; k++) {
      double s = 0;
      for (int r = 0; r < m; r++) s += x[((size_t)i * m + r) * c + k];
      y[(size_t)i * c + k] = s / m;
    }
}

void twin_globalavgpool_backward(double *dx, const float *dy, int n, int m, int c) {
  for (int i = 0; i < n; i++)
    for (int r = 0; r < m; r++)
      for (int k = 0; k < c; k++) dx[((size_t)i * m + r) * c + k] = dy[(size_t)i * c + k] / m;
}

/* ---- optimizers -------------------------------------------------------------- */

int twin_optim_init(twin_optim *o, const cnn_optim_config *cfg, size_t n) {
  memset(o, 0, sizeof *o);
  o->cfg = *cfg;
  o->n = n;
  o->m = calloc(n ? n : 1, sizeof *o->m);
  o->v = calloc(n ? n : 1, sizeof *o->v);
  o->u = calloc(n ? n : 1, sizeof *o->u);
  if (!o->m || !o->v || !o->u) {
    twin_optim_clear(o);
    return 0;
  }
  if (cfg->kind == CNN_OPTIM_ADAGRAD) /* Constant(initial_accumulator_value) */
    for (size_t i = 0; i < n; i++) o->v[i] = cfg->initial_accumulator_value;
  return 1;
}

void twin_optim_clear(twin_optim *o) {
  free(o->m), free(o->v), free(o->u);
  memset(o, 0, sizeof *o);
}

void twin_optim_step(twin_optim *o, double *w, const float *grad) {
  const cnn_optim_config *c = &o->cfg;
  double lr = c->learning_rate, eps = c->epsilon, mom = c->momentum;
  double t = (double)(o->step + 1); /* local_step = iterations + 1 */
  double b1p = pow(c->beta_1, t), b2p = pow(c->beta_2, t);
  for (size_t i = 0; i < o->n; i++) {
    double g = grad[i];
    /* Keras 3's Optimizer._apply_weight_decay, before update_step:
     * variable - variable * weight_decay * lr. */
    if (c->weight_decay != 0) w[i] -= w[i] * c->weight_decay * lr;
    switch (c->kind) {
    case CNN_OPTIM_SGD: /* m = m*momentum - g*lr; w += m (nesterov: m*momentum - g*lr) */
      if (mom != 0) {
        o->m[i] = o->m[i] * mom - g * lr;
        w[i] += c->nesterov ? o->m[i] * mom - g * lr : o->m[i];
      } else {
        w[i] -= g * lr;
      }
      break;
    case CNN_OPTIM_ADAM:
    case CNN_OPTIM_ADAMW: { /* AdamW is Adam's update_step; alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
                             */
      double alpha = lr * sqrt(1 - b2p) / (1 - b1p);
      o->m[i] += (g - o->m[i]) * (1 - c->beta_1);
      o->v[i] += (g * g - o->v[i]) * (1 - c->beta_2);
      w[i] -= o->m[i] * alpha / (sqrt(o->v[i]) + eps);
      break;
    }
    case CNN_OPTIM_ADAMAX: /* u = max(b2 u, |g|); w -= lr m / ((1 - b1^t)(u + eps)) */
      o->m[i] += (g - o->m[i]) * (1 - c->beta_1);
      o->u[i] = fmax(c->beta_2 * o->u[i], fabs(g));
      w[i] -= lr * o->m[i] / ((1 - b1p) * (o->u[i] + eps));
      break;
    case CNN_OPTIM_ADAGRAD: /* a += g^2; w -= lr g / sqrt(a + eps) */
      o->v[i] += g * g;
      w[i] -= lr * g / sqrt(o->v[i] + eps);
      break;
    case CNN_OPTIM_RMSPROP: { /* v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v [- mg^2] + eps) */
      o->v[i] = c->rho * o->v[i] + (1 - c->rho) * g * g;
      double den = o->v[i] + eps;
      if (c->centered) {
        o->u[i] = c->rho * o->u[i] + (1 - c->rho) * g;
        den = o->v[i] - o->u[i] * o->u[i] + eps;
      }
      double inc = lr * g / sqrt(den);
      if (mom > 0) {
        o->m[i] = mom * o->m[i] + inc;
        w[i] -= o->m[i];
      } else {
        w[i] -= inc;
      }
      break;
    }
    }
  }
  o->step++;
}
