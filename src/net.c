/*
 * net.c - a network: layers built from a spec, the parameter and gradient
 * arenas, the batch buffers, forward, loss and backward.
 *
 * Memory: parameters and gradients are two flat arenas (layer order, kernel
 * then bias). The parameter arena goes on past the nparams trainable values
 * with the nstate non-trainable ones (batchnorm's moving statistics, layer
 * order): tensors, blobs and the weights table reach them through the same
 * offsets, while gradients, optimizer state and their loops stop at nparams,
 * so no optimizer can touch them and models without them keep the layout
 * they always had. Everything that depends on the batch size lives in one batch
 * arena allocated by cnn_net_reserve and reused for every batch, so training
 * allocates nothing per step:
 *   act[i]   input of layer i (act[0] the network's input), [n, shape]
 *   z[i]     pre-activation of conv2d/dense with a non-linear activation,
 *            kept in training only (inference applies activations in place)
 *   g0, g1   gradients, ping-pong from the output back to the input
 *   work     im2col and Winograd scratch;  aux: pool argmax and dropout masks
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gemm.h"
#include "layer.h"
#include "reader.h"
#include "winograd.h"

struct cnn_net {
  cnn_spec spec; /* owned */
  int nlayers;
  cnn_layer *layers; /* owned, nlayers */
  cnn_shape input;
  int classes;
  size_t nparams, nstate;
  float *params, *grads; /* owned: nparams + nstate, nparams */
  int ntensors;
  cnn_tensor_info *tensors; /* owned; names point into tensor_names */
  char (*tensor_names)[48]; /* owned */
  int cap, cap_training;    /* what the batch arena was laid out for */
  void *arena;              /* owned: the batch arena, everything below */
  float **act;              /* owned array of nlayers + 1 borrowed pointers */
  float **z;                /* owned array of nlayers borrowed pointers (or NULL) */
  float *g0, *g1, *work, *input_grad;
  int want_input_grad, have_input_grad;
  int last_n;        /* samples of the last forward */
  cnn_threads *pool; /* borrowed */
  cnn_rng rng;       /* dropout masks */
  int freeze;
  int bf16;        /* inference in mixed precision */
  uint16_t *wbf16; /* owned: the dense kernels in bf16, when bf16 */
  float *wpack;    /* owned: the dense kernels packed for batched inference */
  size_t wpack_size;
  float *wino_u; /* owned: the Winograd kernel transforms for inference */
  size_t wino_u_size;
};

static const cnn_layer_ops *ops_of(cnn_layer_type t) {
  switch (t) {
  case CNN_LAYER_CONV2D:
    return &cnn_conv2d_ops;
  case CNN_LAYER_MAXPOOL:
    return &cnn_maxpool_ops;
  case CNN_LAYER_AVGPOOL:
    return &cnn_avgpool_ops;
  case CNN_LAYER_FLATTEN:
    return &cnn_flatten_ops;
  case CNN_LAYER_DENSE:
    return &cnn_dense_ops;
  case CNN_LAYER_DROPOUT:
    return &cnn_dropout_ops;
  case CNN_LAYER_BATCHNORM:
    return &cnn_batchnorm_ops;
  case CNN_LAYER_GLOBALAVGPOOL:
    return &cnn_globalavgpool_ops;
  case CNN_LAYER_ACTIVATION:
    return &cnn_activation_ops;
  }
  return NULL;
}

static size_t shape_size(cnn_shape s) { return (size_t)s.h * s.w * s.c; }

/* conv2d, dense and the activation layer apply an activation; is it one
 * that needs z? */
static int has_act(const cnn_layer *l) {
  cnn_layer_type t = l->spec->type;
  return (t == CNN_LAYER_CONV2D || t == CNN_LAYER_DENSE || t == CNN_LAYER_ACTIVATION) &&
         l->spec->act.kind != CNN_ACT_LINEAR;
}

/* A ReLU the layer applies in its own output writes (cnn_run.relu). Its
 * derivative reads y alone, so training keeps no z for it either. */
static int fused_relu(const cnn_layer *l) {
  return has_act(l) && l->spec->act.kind == CNN_ACT_RELU && l->ops->fuses_relu;
}

static void set_tensor(cnn_net *net, const cnn_layer *l, const char *what, size_t offset,
                       size_t count, int rank, const int *dims) {
  int t = net->ntensors++;
  snprintf(net->tensor_names[t], sizeof net->tensor_names[t], "%s/%s", l->name, what);
  net->tensors[t] =
      (cnn_tensor_info){net->tensor_names[t], rank, {0}, offset, count, offset < net->nparams};
  memcpy(net->tensors[t].dims, dims, rank * sizeof *dims);
}

int cnn_net_new(cnn_net **out, cnn_spec *spec, char *err) {
  int rc = CNN_OK;
  char lerr[CNN_ERRMAX];
  *out = NULL;
  cnn_net *net = cnn_calloc(1, sizeof *net);
  if (!net) {
    cnn_spec_clear(spec);
    return cnn_nomem(err);
  }
  net->spec = *spec;
  memset(spec, 0, sizeof *spec);
  net->nlayers = net->spec.nlayers;
  net->input = (cnn_shape){net->spec.h, net->spec.w, net->spec.c};
  net->layers = cnn_calloc(net->nlayers, sizeof *net->layers);
  /* At most four tensors a layer (batchnorm's). */
  net->tensors = cnn_calloc(4 * (size_t)net->nlayers, sizeof *net->tensors);
  net->tensor_names = cnn_calloc(4 * (size_t)net->nlayers, sizeof *net->tensor_names);
  if (!net->layers || !net->tensors || !net->tensor_names) {
    rc = cnn_nomem(err);
    goto done;
  }

  int counts[16] = {0};
  cnn_shape shape = net->input;
  size_t nparams = 0, nstate = 0, acts = shape_size(shape);
  for (int i = 0; i < net->nlayers; i++) {
    cnn_layer *l = &net->layers[i];
    const cnn_layer_spec *s = &net->spec.layers[i];
    l->ops = ops_of(s->type);
    l->spec = s;
    l->in = shape;
    int k = counts[s->type]++;
    if (k)
      snprintf(l->name, sizeof l->name, "%s_%d", l->ops->keras_name, k);
    else
      snprintf(l->name, sizeof l->name, "%s", l->ops->keras_name);
    if ((rc = l->ops->setup(l, lerr))) {
      rc = cnn_error(err, rc, "layer %d (%s): %s", i + 1, l->name, lerr);
      goto done;
    }
    shape = l->out;
    nparams += l->nweights + l->nbias;
    nstate += l->nstate;
    acts += shape_size(shape);
    if (nparams + nstate > CNN_SPEC_MAX_PARAMS) {
      rc = cnn_error(err, CNN_ERROR, "layer %d (%s): the model would have more than %u parameters",
                     i + 1, l->name, CNN_SPEC_MAX_PARAMS);
      goto done;
    }
    if (acts > CNN_SPEC_MAX_ACTIVATIONS || l->work_per_sample > CNN_SPEC_MAX_ACTIVATIONS) {
      rc = cnn_error(err, CNN_ERROR,
                     "layer %d (%s): the model needs more than %u activations per image", i + 1,
                     l->name, CNN_SPEC_MAX_ACTIVATIONS);
      goto done;
    }
  }
  if (shape.h != 1 || shape.w != 1 || shape.c < 2) {
    rc = cnn_error(err, CNN_ERROR,
                   "the last layer must give a vector of at least 2 class scores (a dense layer); "
                   "it gives (%d, %d, %d)",
                   shape.h, shape.w, shape.c);
    goto done;
  }
  net->classes = shape.c;
  net->nparams = nparams, net->nstate = nstate;
  net->params = cnn_calloc(nparams + nstate ? nparams + nstate : 1, sizeof(float));
  net->grads = cnn_calloc(nparams ? nparams : 1, sizeof(float));
  if (!net->params || !net->grads) {
    rc = cnn_nomem(err);
    goto done;
  }
  /* Tensors in Keras' order of get_weights(): kernel, bias; gamma, beta,
   * moving_mean, moving_variance. */
  size_t off = 0, soff = nparams;
  for (int i = 0; i < net->nlayers; i++) {
    cnn_layer *l = &net->layers[i];
    int bn = l->spec->type == CNN_LAYER_BATCHNORM;
    int vec[1] = {l->out.c};
    if (l->nweights) {
      l->w = net->params + off, l->dw = net->grads + off;
      if (bn) {
        set_tensor(net, l, "gamma", off, l->nweights, 1, vec);
      } else if (l->spec->type == CNN_LAYER_CONV2D) {
        int dims[4] = {l->spec->kh, l->spec->kw, l->in.c, l->out.c};
        set_tensor(net, l, "kernel", off, l->nweights, 4, dims);
      } else {
        int dims[2] = {(int)shape_size(l->in), l->out.c};
        set_tensor(net, l, "kernel", off, l->nweights, 2, dims);
      }
      off += l->nweights;
    }
    if (l->nbias) {
      l->b = net->params + off, l->db = net->grads + off;
      int dims[1] = {(int)l->nbias};
      set_tensor(net, l, bn ? "beta" : "bias", off, l->nbias, 1, dims);
      off += l->nbias;
    }
    if (l->nstate) {
      l->state = net->params + soff;
      set_tensor(net, l, "moving_mean", soff, l->nstate / 2, 1, vec);
      set_tensor(net, l, "moving_variance", soff + l->nstate / 2, l->nstate / 2, 1, vec);
      soff += l->nstate;
    }
  }
  cnn_rng_seed(&net->rng, 0);
done:
  if (rc) {
    cnn_net_free(net);
    return rc;
  }
  *out = net;
  return CNN_OK;
}

void cnn_net_free(cnn_net *net) {
  if (!net) return;
  cnn_spec_clear(&net->spec);
  cnn_free(net->layers);
  cnn_free(net->tensors);
  cnn_free(net->tensor_names);
  cnn_free(net->params);
  cnn_free(net->grads);
  cnn_free(net->arena);
  cnn_free(net->act);
  cnn_free(net->z);
  cnn_free(net->wbf16);
  cnn_free(net->wpack);
  cnn_free(net->wino_u);
  cnn_free(net);
}

const cnn_spec *cnn_net_spec(const cnn_net *net) { return &net->spec; }
/* The dense kernels packed for inference (cnn_gemm_pack) and the Winograd
 * kernel transforms stand for the weights and the pool's instruction set of
 * the moment they were made: anything that may change either forgets them. */
static void forget_packs(cnn_net *net) {
  for (int i = 0; i < net->nlayers; i++) net->layers[i].wpack = NULL, net->layers[i].wino_u = NULL;
}

/* *buf (of *have floats) with room for n floats, grown if needed (its
 * contents then lost); NULL out of memory, *buf then empty. Views into it
 * must be forgotten before: growing moves it. */
static float *grow_floats(float **buf, size_t *have, size_t n) {
  if (n > *have) {
    cnn_free(*buf);
    *have = 0;
    if (!(*buf = cnn_malloc(n * sizeof **buf))) return NULL;
    *have = n;
  }
  return *buf;
}

/* The Winograd kernel transforms of the convolutions that run their forward
 * that way, for inference at any batch: a training forward transforms the
 * kernel on every call (the weights change with every step), which for one
 * image is about a tenth of the prediction, on one thread. Out of memory, the
 * forward transforms per call, with the same results. */
static void transform_for_inference(cnn_net *net) {
  cnn_isa isa = cnn_threads_isa(net->pool);
  size_t total = 0;
  int stale = 0;
  for (int i = 0; i < net->nlayers; i++) {
    const cnn_layer *l = &net->layers[i];
    if (l->ops != &cnn_conv2d_ops || !(l->winograd & CNN_WINO_FORWARD)) continue;
    stale |= !l->wino_u || l->wino_isa != isa;
    total += cnn_wino_kernel_floats(l->in.c, l->out.c);
  }
  if (!stale) return;
  for (int i = 0; i < net->nlayers; i++) net->layers[i].wino_u = NULL; /* the buffer may move */
  float *p = grow_floats(&net->wino_u, &net->wino_u_size, total);
  for (int i = 0; p && i < net->nlayers; i++) {
    cnn_layer *l = &net->layers[i];
    if (l->ops != &cnn_conv2d_ops || !(l->winograd & CNN_WINO_FORWARD)) continue;
    cnn_wino_kernel(net->pool, p, l->w, l->in.c, l->out.c, 0);
    l->wino_u = p, l->wino_isa = isa;
    p += cnn_wino_kernel_floats(l->in.c, l->out.c);
  }
}

/* Packs the dense kernels for batches of more than one tile of rows, where
 * each product would otherwise pack all of its kernel again (the first
 * dense layer: 11.5 MB for every 128 images). Out of memory it leaves them
 * unpacked: the products then pack per call, with the same results. */
static void pack_for_inference(cnn_net *net, int batch) {
  cnn_isa isa = cnn_threads_isa(net->pool);
  size_t total = 0;
  if (batch <= 16 || net->bf16 || cnn_threads_bf16(net->pool)) return;
  for (int i = 0; i < net->nlayers; i++) {
    const cnn_layer *l = &net->layers[i];
    if (l->ops != &cnn_dense_ops) continue;
    if (l->wpack && l->wpack_isa == cnn_gemm_pack_isa(isa)) return; /* nothing changed since */
    total += cnn_gemm_packed_size(isa, (int)shape_size(l->in), l->out.c);
  }
  if (!total) return;
  for (int i = 0; i < net->nlayers; i++) net->layers[i].wpack = NULL; /* the buffer may move */
  float *p = grow_floats(&net->wpack, &net->wpack_size, total);
  for (int i = 0; p && i < net->nlayers; i++) {
    cnn_layer *l = &net->layers[i];
    if (l->ops != &cnn_dense_ops) continue;
    int in = (int)shape_size(l->in), out = l->out.c;
    cnn_gemm_pack(isa, p, l->w, out, in, out);
    l->wpack = p, l->wpack_isa = cnn_gemm_pack_isa(isa);
    p += cnn_gemm_packed_size(isa, in, out);
  }
}

void cnn_net_set_pool(cnn_net *net, cnn_threads *pool) {
  net->pool = pool;
  forget_packs(net);
}
cnn_threads *cnn_net_pool(const cnn_net *net) { return net->pool; }
void cnn_net_seed(cnn_net *net, uint64_t seed) { cnn_rng_seed(&net->rng, seed); }
int cnn_net_layers(const cnn_net *net) { return net->nlayers; }
cnn_shape cnn_net_input(const cnn_net *net) { return net->input; }
int cnn_net_classes(const cnn_net *net) { return net->classes; }
size_t cnn_net_nparams(const cnn_net *net) { return net->nparams; }
size_t cnn_net_nstate(const cnn_net *net) { return net->nstate; }
float *cnn_net_params(cnn_net *net) {
  forget_packs(net); /* the caller may write the weights */
  return net->params;
}
float *cnn_net_grads(cnn_net *net) { return net->grads; }
int cnn_net_tensors(const cnn_net *net) { return net->ntensors; }
cnn_tensor_info cnn_net_tensor(const cnn_net *net, int i) { return net->tensors[i]; }
float *cnn_net_input_buffer(cnn_net *net) { return net->act ? net->act[0] : NULL; }
void cnn_net_freeze_dropout(cnn_net *net, int freeze) { net->freeze = freeze; }
void cnn_net_set_input_grad(cnn_net *net, int on) {
  net->want_input_grad = on;
  net->cap = 0; /* lay the arena out again with (or without) the input gradient */
}
const float *cnn_net_input_grad(cnn_net *net) {
  return net->have_input_grad ? net->input_grad : NULL;
}

cnn_layer_info cnn_net_layer(const cnn_net *net, int i) {
  const cnn_layer *l = &net->layers[i];
  size_t trainable = l->nweights + l->nbias;
  return (cnn_layer_info){l->name, l->ops->keras_type, l->out, trainable + l->nstate, trainable};
}

int cnn_net_check_weights(const cnn_net *net, char *err) {
  /* A negative moving variance under a small epsilon would turn inference
   * into NaN for every image; no training produces one. */
  for (int i = 0; i < net->nlayers; i++) {
    const cnn_layer *l = &net->layers[i];
    size_t c = l->nstate / 2;
    for (size_t j = 0; l->spec->type == CNN_LAYER_BATCHNORM && j < c; j++)
      if (l->state[c + j] < 0)
        return cnn_error(err, CNN_ERROR,
                         "tensor %s/moving_variance must not be negative; index %zu is %g", l->name,
                         j, l->state[c + j]);
  }
  return CNN_OK;
}

/* Keras' fans: a conv kernel's receptive field counts on both sides. */
static void fans(const cnn_layer *l, double *fan_in, double *fan_out) {
  if (l->spec->type == CNN_LAYER_CONV2D) {
    double rf = (double)l->spec->kh * l->spec->kw;
    *fan_in = rf * l->in.c, *fan_out = rf * l->out.c;
  } else {
    *fan_in = (double)shape_size(l->in), *fan_out = l->out.c;
  }
}

void cnn_net_init(cnn_net *net, uint64_t seed) {
  forget_packs(net);
  cnn_rng rng;
  cnn_rng_seed(&rng, seed);
  for (int i = 0; i < net->nlayers; i++) {
    cnn_layer *l = &net->layers[i];
    if (l->spec->type == CNN_LAYER_BATCHNORM) {
      for (size_t j = 0; j < l->nweights; j++) l->w[j] = 1.0f;
      if (l->nbias) memset(l->b, 0, l->nbias * sizeof *l->b);
      size_t c = l->nstate / 2;
      memset(l->state, 0, c * sizeof *l->state);
      for (size_t j = 0; j < c; j++) l->state[c + j] = 1.0f;
      continue;
    }
    if (!l->nweights) continue;
    double fi, fo;
    fans(l, &fi, &fo);
    double limit = 0, stddev = 0;
    switch (l->spec->init) {
    case CNN_INIT_GLOROT_UNIFORM:
      limit = sqrt(6.0 / (fi + fo));
      break;
    case CNN_INIT_HE_UNIFORM:
      limit = sqrt(6.0 / fi);
      break;
    case CNN_INIT_LECUN_UNIFORM:
      limit = sqrt(3.0 / fi);
      break;
    case CNN_INIT_GLOROT_NORMAL:
      stddev = sqrt(2.0 / (fi + fo));
      break;
    case CNN_INIT_HE_NORMAL:
      stddev = sqrt(2.0 / fi);
      break;
    case CNN_INIT_LECUN_NORMAL:
      stddev = sqrt(1.0 / fi);
      break;
    case CNN_INIT_ZEROS:
      break;
    }
    /* Keras draws normal kernels from a normal truncated at two standard
     * deviations, rescaled so the variance is the intended one. */
    stddev /= 0.87962566103423978;
    for (size_t j = 0; j < l->nweights; j++) {
      if (limit > 0) {
        l->w[j] = (float)((2.0 * cnn_rng_float(&rng) - 1.0) * limit);
      } else if (stddev > 0) {
        double v;
        do v = cnn_rng_normal(&rng);
        while (fabs(v) > 2.0);
        l->w[j] = (float)(v * stddev);
      } else {
        l->w[j] = 0;
      }
    }
    if (l->nbias) memset(l->b, 0, l->nbias * sizeof *l->b);
  }
}

#define ALIGN_FLOATS 16 /* 64 bytes */

static size_t round_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

int cnn_net_reserve(cnn_net *net, int n, int training, char *err) {
  if (n < 1) return cnn_error(err, CNN_ERROR, "batch size must be at least 1, got %d", n);
  if (net->arena && n <= net->cap && (!training || net->cap_training)) return CNN_OK;
  int L = net->nlayers;
  /* Offsets in floats, then one allocation. */
  size_t total = 0, maxact = shape_size(net->input), work = 0, aux = 0;
  size_t act_off[CNN_SPEC_MAX_LAYERS + 1], z_off[CNN_SPEC_MAX_LAYERS];
  size_t keep_off[CNN_SPEC_MAX_LAYERS];
  size_t N = (size_t)n;
  act_off[0] = total, total += round_up(N * shape_size(net->input));
  for (int i = 0; i < L; i++) {
    const cnn_layer *l = &net->layers[i];
    size_t m = shape_size(l->out);
    act_off[i + 1] = total, total += round_up(N * m);
    z_off[i] = SIZE_MAX;
    if (training && has_act(l) && !fused_relu(l)) z_off[i] = total, total += round_up(N * m);
    keep_off[i] = SIZE_MAX;
    if (training && (l->keep_per_sample || l->keep_fixed))
      keep_off[i] = total, total += round_up(N * l->keep_per_sample + l->keep_fixed);
    if (m > maxact) maxact = m;
    if (N * l->work_per_sample + l->work_fixed > work)
      work = N * l->work_per_sample + l->work_fixed;
    aux += l->aux_per_sample;
  }
  size_t g0 = 0, g1 = 0, ig = 0;
  if (training) {
    g0 = total, total += round_up(N * maxact);
    g1 = total, total += round_up(N * maxact);
    if (net->want_input_grad) ig = total, total += round_up(N * shape_size(net->input));
  }
  size_t work_off = total;
  total += round_up(work);
  size_t aux_off = total;
  total += round_up((N * aux + sizeof(float) - 1) / sizeof(float));
  if (total > (size_t)1 << 34)
    return cnn_error(err, CNN_ERROR, "a batch of %d needs %zu MB of activations; too much", n,
                     total * sizeof(float) >> 20);

  void *arena = cnn_malloc(total * sizeof(float) + 64);
  float **act = cnn_calloc((size_t)L + 1, sizeof *act);
  float **z = cnn_calloc((size_t)L + 1, sizeof *z);
  if (!arena || !act || !z) {
    cnn_free(arena), cnn_free(act), cnn_free(z);
    return cnn_nomem(err);
  }
  cnn_free(net->arena), cnn_free(net->act), cnn_free(net->z);
  net->arena = arena, net->act = act, net->z = z;
  float *base = (float *)(((uintptr_t)arena + 63) & ~(uintptr_t)63);
  for (int i = 0; i <= L; i++) act[i] = base + act_off[i];
  for (int i = 0; i < L; i++) z[i] = z_off[i] == SIZE_MAX ? NULL : base + z_off[i];
  net->g0 = training ? base + g0 : NULL;
  net->g1 = training ? base + g1 : NULL;
  net->input_grad = training && net->want_input_grad ? base + ig : NULL;
  net->work = base + work_off;
  unsigned char *a = (unsigned char *)(base + aux_off);
  for (int i = 0; i < L; i++) {
    net->layers[i].aux = net->layers[i].aux_per_sample ? a : NULL;
    net->layers[i].keep = keep_off[i] == SIZE_MAX ? NULL : base + keep_off[i];
    a += N * net->layers[i].aux_per_sample;
  }
  net->cap = n, net->cap_training = training;
  net->last_n = 0;
  return CNN_OK;
}

int cnn_net_set_bf16_inference(cnn_net *net, int on, char *err) {
  size_t total = 0;
  cnn_isa isa = cnn_threads_isa(net->pool);
  if (on && cnn_isa_bf16(isa) == CNN_BF16_NONE) {
    if (cnn_isa_bf16(cnn_isa_cpu()) == CNN_BF16_NONE)
      return cnn_error(err, CNN_ERROR,
                       "precision \"bf16\" needs amx_bf16 or avx512_bf16, which this CPU lacks");
    return cnn_error(err, CNN_ERROR,
                     "precision \"bf16\" needs isa \"%s\" or above on this CPU; here it is \"%s\"",
                     cnn_isa_name(cnn_isa_bf16(CNN_ISA_AVX512) ? CNN_ISA_AVX512 : CNN_ISA_AMX),
                     cnn_isa_name(isa));
  }
  for (int i = 0; i < net->nlayers; i++) net->layers[i].wbf16 = NULL;
  cnn_free(net->wbf16);
  net->wbf16 = NULL, net->bf16 = 0;
  forget_packs(net);
  if (!on) return CNN_OK;
  for (int i = 0; i < net->nlayers; i++) {
    const cnn_layer *l = &net->layers[i];
    if (l->ops == &cnn_dense_ops)
      total += cnn_bf16_packed_size(l->in.h * l->in.w * l->in.c, l->out.c);
  }
  if (total && !(net->wbf16 = cnn_malloc(total * sizeof *net->wbf16))) return cnn_nomem(err);
  uint16_t *p = net->wbf16;
  for (int i = 0; i < net->nlayers; i++) {
    cnn_layer *l = &net->layers[i];
    if (l->ops != &cnn_dense_ops) continue;
    int in = l->in.h * l->in.w * l->in.c, out = l->out.c;
    cnn_bf16_pack(p, l->w, out, in, out);
    l->wbf16 = p;
    p += cnn_bf16_packed_size(in, out);
  }
  net->bf16 = 1;
  return CNN_OK;
}

int cnn_net_bf16_inference(const cnn_net *net) { return net->bf16; }

/* Layer i's forward on the n samples from `first` (z and act are per sample). */
static void forward_layer(cnn_net *net, cnn_run *run, int i, int first, int n) {
  cnn_layer *l = &net->layers[i];
  size_t in = shape_size(l->in) * first, out = shape_size(l->out) * first;
  float *x = net->act[i] + in, *y = net->act[i + 1] + out;
  size_t rows = (size_t)n * l->out.h * l->out.w, cols = (size_t)l->out.c;
  if (run->training && net->z[i]) {
    l->ops->forward(l, run, net->z[i] + out, x, n);
    cnn_act_forward(net->pool, &l->spec->act, y, net->z[i] + out, rows, cols);
  } else {
    run->relu = fused_relu(l);
    l->ops->forward(l, run, y, x, n);
    if (has_act(l) && !run->relu) cnn_act_forward(net->pool, &l->spec->act, y, y, rows, cols);
    run->relu = 0;
  }
}

/* Layers before the first dense one, whose activations outweigh their
 * weights: in inference they take large batches INFER_SLICE samples at a
 * time, so that a slice's activations (about 170 KB a sample in the
 * notebook's model, half of it the first convolution's output) stay in
 * cache from layer to layer, beside the dense kernels, instead of passing
 * through memory. Every sample's arithmetic is the same in any slice, so
 * results do not change. Measured on the notebook's model (Zen 4, 1 MB L2,
 * 32 MB L3; tests/bench/bench_predict, 1024 images): slices of 32 took 0.94
 * of the unsliced time (median of 6 pairs); 8 and 16 gained less. */
#define INFER_SLICE 32

static int sliced_layers(const cnn_net *net) {
  int i = 0;
  while (i < net->nlayers && net->layers[i].ops != &cnn_dense_ops) i++;
  return i;
}

const float *cnn_net_forward(cnn_net *net, int n, int training) {
  cnn_run run = {net->pool, net->work, training, net->freeze, &net->rng, 0, !training && net->bf16,
                 NULL,      NULL,      NULL};
  /* The convolutions' products follow the pool's precision: lend it ours
   * for this pass. */
  int pool_bf16 = cnn_threads_bf16(net->pool);
  if (run.bf16) cnn_threads_set_bf16(net->pool, 1);
  int head = !training && n > INFER_SLICE ? sliced_layers(net) : 0;
  for (int first = 0; head && first < n; first += INFER_SLICE)
    for (int i = 0; i < head; i++)
      forward_layer(net, &run, i, first, n - first < INFER_SLICE ? n - first : INFER_SLICE);
  for (int i = head; i < net->nlayers; i++) forward_layer(net, &run, i, 0, n);
  if (run.bf16) cnn_threads_set_bf16(net->pool, pool_bf16);
  net->last_n = n;
  return net->act[net->nlayers];
}

/* Mean loss over n rows of `out` (logits, or probabilities when probs) and
 * the number of correct argmaxes; grad (n x k, may be NULL) gets d loss/d out.
 * Label smoothing ls is Keras' CategoricalCrossentropy(label_smoothing=ls):
 * the target is one_hot * (1 - ls) + ls / k, so the loss is
 * -sum_j t_j log p_j and its gradient over logits p - t. ls = 0 keeps the
 * one-hot arithmetic exactly as it was. */
static double loss_rows(const float *out, int probs, const uint8_t *labels, int n, int k, double ls,
                        float *grad, int *correct) {
  double total = 0, off = ls / k, on = 1 - ls + off;
  int right = 0;
  for (int i = 0; i < n; i++) {
    const float *o = out + (size_t)i * k;
    int y = labels[i], best = 0;
    for (int j = 1; j < k; j++) best = o[j] > o[best] ? j : best;
    right += best == y;
    float *g = grad ? grad + (size_t)i * k : NULL;
    if (probs) {
      /* Keras clips probabilities to [eps, 1 - eps] before the log. */
      const double eps = 1e-7;
      if (ls > 0) {
        /* Every class has a target now; each clipped as the true one is. */
        for (int j = 0; j < k; j++) {
          double t = j == y ? on : off;
          double p = o[j] < eps ? eps : o[j] > 1 - eps ? 1 - eps : o[j];
          total -= t * log(p);
          if (g) g[j] = (float)(-t / (p * n));
        }
        continue;
      }
      double p = o[y] < eps ? eps : o[y] > 1 - eps ? 1 - eps : o[y];
      total -= log(p);
      if (g) {
        memset(g, 0, k * sizeof *g);
        g[y] = (float)(-1.0 / (p * n));
      }
    } else {
      float m = o[best];
      double sum = 0;
      for (int j = 0; j < k; j++) sum += exp((double)o[j] - m);
      double lse = m + log(sum);
      if (ls > 0) {
        double dot = 0;
        for (int j = 0; j < k; j++) dot += (j == y ? on : off) * o[j];
        total += lse - dot;
        if (g)
          for (int j = 0; j < k; j++)
            g[j] = (float)((exp((double)o[j] - lse) - (j == y ? on : off)) / n);
        continue;
      }
      total += lse - o[y];
      if (g) {
        for (int j = 0; j < k; j++) g[j] = (float)(exp((double)o[j] - lse) / n);
        g[y] -= 1.0f / n;
      }
    }
  }
  if (correct) *correct = right;
  return total / n;
}

static int output_is_probs(const cnn_net *net) {
  const cnn_layer *last = &net->layers[net->nlayers - 1];
  return has_act(last) && last->spec->act.kind == CNN_ACT_SOFTMAX;
}

double cnn_net_loss(cnn_net *net, const uint8_t *labels, int n, double label_smoothing,
                    int *correct) {
  return loss_rows(net->act[net->nlayers], output_is_probs(net), labels, n, net->classes,
                   label_smoothing, net->cap_training ? net->g0 : NULL, correct);
}

void cnn_net_backward_each(cnn_net *net, int n, cnn_grads_ready_fn ready, cnn_grads_ready_fn band,
                           void *ctx) {
  cnn_run run = {net->pool, net->work,           1,   net->freeze, &net->rng, 0,
                 0,         ready ? band : NULL, ctx, net->params};
  float *g = net->g0, *other = net->g1;
  net->have_input_grad = 0;
  for (int i = net->nlayers - 1; i >= 0; i--) {
    cnn_layer *l = &net->layers[i];
    if (has_act(l)) {
      size_t rows = (size_t)n * l->out.h * l->out.w;
      cnn_act_backward(net->pool, &l->spec->act, g, g, net->z[i], net->act[i + 1], rows,
                       (size_t)l->out.c);
    }
    float *dx = i > 0 ? other : net->input_grad;
    l->handed = 0;
    l->ops->backward(l, &run, dx, g, net->act[i], n);
    if (ready && l->nweights + l->nbias > l->handed) {
      /* The kernel comes first, then the bias; a layer hands over its
       * kernel whole or not at all. */
      size_t first = (size_t)((l->nweights ? l->w : l->b) - net->params);
      ready(ctx, first + l->handed, first + l->nweights + l->nbias);
    }
    other = g, g = dx;
  }
  net->have_input_grad = net->input_grad != NULL;
}

void cnn_net_backward(cnn_net *net, int n) { cnn_net_backward_each(net, n, NULL, NULL, NULL); }

int cnn_net_predict(cnn_net *net, float *out, const uint8_t *images, size_t n, char *err) {
  size_t in = shape_size(net->input);
  int k = net->classes;
  int batch = n < 128 ? (int)n : 128;
  if (n == 0) return CNN_OK;
  if (net->cap > batch) batch = net->cap; /* use the room already there */
  int rc = cnn_net_reserve(net, batch, 0, err);
  if (rc) return rc;
  transform_for_inference(net);
  pack_for_inference(net, n < (size_t)batch ? (int)n : batch);
  for (size_t start = 0; start < n; start += batch) {
    int m = n - start < (size_t)batch ? (int)(n - start) : batch;
    float *x = net->act[0];
    const uint8_t *src = images + start * in;
    for (size_t j = 0; j < (size_t)m * in; j++) x[j] = src[j] / 255.0f;
    const float *o = cnn_net_forward(net, m, 0);
    float *p = out + start * k;
    if (output_is_probs(net)) {
      memcpy(p, o, (size_t)m * k * sizeof *p);
    } else {
      cnn_act softmax = {CNN_ACT_SOFTMAX, 0, NULL};
      cnn_act_forward(net->pool, &softmax, p, o, (size_t)m, (size_t)k);
    }
  }
  return CNN_OK;
}

void cnn_net_stat_outputs(const cnn_net *net, int n, cnn_layer_stat *acc) {
  for (int i = 0; i < net->nlayers; i++) {
    const cnn_layer *l = &net->layers[i];
    size_t count = (size_t)n * shape_size(l->out), zeros = 0;
    const float *y = net->act[i + 1];
    for (size_t j = 0; j < count; j++) zeros += y[j] == 0.0f;
    acc[i].zero_fraction += count ? (double)zeros / count : 0.0;
  }
}

/* The kernels' sums for cnn_net_stat_update, in chunks of STAT_CHUNK
 * values that the pool shares out: each chunk's four sums (|g|, w0^2,
 * w1^2, (w1 - w0)^2) in double, then added per layer in chunk order, so any
 * pool gives the same bits. */
#define STAT_CHUNK 32768

typedef struct stat_job {
  const cnn_net *net;
  const float *before;
  double *sums; /* 4 per chunk */
  int *layer;   /* of each chunk */
  size_t *start, *end;
} stat_job;

static size_t stat_chunks(const cnn_net *net) {
  size_t n = 0;
  for (int i = 0; i < net->nlayers; i++)
    n += (net->layers[i].nweights + STAT_CHUNK - 1) / STAT_CHUNK;
  return n;
}

size_t cnn_net_stat_scratch(const cnn_net *net) {
  /* sums, then per chunk its layer and range (as doubles' worth of room) */
  return stat_chunks(net) * 7;
}

static void stat_task(void *ctx, int task, int thread) {
  const stat_job *job = ctx;
  (void)thread;
  const cnn_layer *l = &job->net->layers[job->layer[task]];
  const float *g = l->dw, *w1 = l->w, *w0 = job->before + (l->w - job->net->params);
  double s[4] = {0, 0, 0, 0};
  size_t j = job->start[task], end = job->end[task];
  /* 16 float lanes per sum over blocks of 256 values (the compiler
   * vectorises the lanes), each block's lanes then added in double. */
  for (; j < end; j += 256) {
    size_t stop = end - j < 256 ? end : j + 256, q = j;
    float a[4][16] = {{0}};
    for (; q + 16 <= stop; q += 16)
      for (int t = 0; t < 16; t++) {
        float x = w0[q + t], y = w1[q + t], d = y - x;
        a[0][t] += fabsf(g[q + t]), a[1][t] += x * x, a[2][t] += y * y, a[3][t] += d * d;
      }
    for (int t = 0; q < stop; q++, t++) {
      float x = w0[q], y = w1[q], d = y - x;
      a[0][t] += fabsf(g[q]), a[1][t] += x * x, a[2][t] += y * y, a[3][t] += d * d;
    }
    for (int k = 0; k < 4; k++)
      for (int t = 0; t < 16; t++) s[k] += a[k][t];
  }
  memcpy(job->sums + 4 * (size_t)task, s, sizeof s);
}

void cnn_net_stat_update(const cnn_net *net, const float *before, double *scratch,
                         cnn_layer_stat *acc) {
  size_t nchunks = stat_chunks(net);
  stat_job job = {net,
                  before,
                  scratch,
                  (int *)(scratch + 4 * nchunks),
                  (size_t *)(scratch + 5 * nchunks),
                  (size_t *)(scratch + 6 * nchunks)};
  _Static_assert(sizeof(int) <= sizeof(double) && sizeof(size_t) <= sizeof(double),
                 "chunk bookkeeping fits the scratch");
  size_t c = 0;
  for (int i = 0; i < net->nlayers; i++)
    for (size_t j = 0; j < net->layers[i].nweights; j += STAT_CHUNK, c++) {
      job.layer[c] = i, job.start[c] = j;
      job.end[c] =
          j + STAT_CHUNK < net->layers[i].nweights ? j + STAT_CHUNK : net->layers[i].nweights;
    }
  if (nchunks) cnn_threads_run(net->pool, stat_task, &job, (int)nchunks);
  c = 0;
  for (int i = 0; i < net->nlayers; i++) {
    const cnn_layer *l = &net->layers[i];
    if (!l->nweights) continue;
    double s[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < l->nweights; j += STAT_CHUNK, c++)
      for (int k = 0; k < 4; k++) s[k] += scratch[4 * c + k];
    acc[i].grad_mean_abs += s[0] / l->nweights;
    acc[i].weight_norm += sqrt(s[2]);
    acc[i].update_ratio += s[1] > 0 ? sqrt(s[3] / s[1]) : 0.0;
  }
}

int cnn_evaluate(cnn_net *net, const cnn_dataset *data, double label_smoothing, cnn_stop_fn stop,
                 void *ctx, double *loss, double *accuracy, char *err) {
  size_t in = shape_size(net->input);
  int batch = data->count < 128 ? (int)data->count : 128;
  *loss = NAN, *accuracy = NAN;
  if (data->count == 0) return cnn_error(err, CNN_ERROR, "no rows to evaluate");
  if (data->count > UINT32_MAX)
    return cnn_error(err, CNN_ERROR, "%zu rows to evaluate; the limit is %u", data->count,
                     UINT32_MAX);
  if (!data->images && !data->read)
    return cnn_error(err, CNN_ERROR, "rows to evaluate have neither images nor a reader");
  if (net->cap > batch) batch = net->cap;
  int rc = cnn_net_reserve(net, batch, 0, err);
  if (rc) return rc;
  transform_for_inference(net);
  pack_for_inference(net, data->count < (size_t)batch ? (int)data->count : batch);
  /* A streamed dataset is read in order, one batch ahead. */
  cnn_reader rd = {0};
  uint32_t *idx = NULL;
  int streamed = data->images == NULL;
  if (streamed) {
    if ((rc = cnn_reader_init(&rd, data, in, batch, err))) return rc;
    if (!(idx = cnn_malloc((size_t)batch * sizeof *idx))) {
      rc = cnn_nomem(err);
      goto done;
    }
    if (data->pass && (rc = data->pass(data->ctx, 1, err))) goto done;
    int m = data->count < (size_t)batch ? (int)data->count : batch;
    for (int i = 0; i < m; i++) idx[i] = (uint32_t)i;
    cnn_reader_start(&rd, idx, m);
  }
  double total = 0;
  size_t right = 0;
  for (size_t start = 0; start < data->count; start += batch) {
    if (stop && stop(ctx)) {
      rc = cnn_error(err, CNN_INTERRUPTED, "interrupted");
      goto done;
    }
    int m = data->count - start < (size_t)batch ? (int)(data->count - start) : batch;
    float *x = net->act[0];
    const uint8_t *src, *labels;
    if (streamed) {
      if ((rc = cnn_reader_wait(&rd, &src, &labels, err))) goto done;
      for (int i = 0; i < m; i++)
        if (labels[i] >= net->classes) {
          rc = cnn_error(err, CNN_ERROR, "row %zu has label %d but the model has %d classes",
                         start + i + 1, labels[i], net->classes);
          goto done;
        }
      size_t next = start + (size_t)m;
      if (next < data->count) {
        int k = data->count - next < (size_t)batch ? (int)(data->count - next) : batch;
        for (int i = 0; i < k; i++) idx[i] = (uint32_t)(next + i);
        cnn_reader_start(&rd, idx, k);
      }
    } else {
      src = data->images + start * in;
      labels = data->labels + start;
    }
    for (size_t j = 0; j < (size_t)m * in; j++) x[j] = src[j] / 255.0f;
    const float *o = cnn_net_forward(net, m, 0);
    int c;
    total +=
        m * loss_rows(o, output_is_probs(net), labels, m, net->classes, label_smoothing, NULL, &c);
    right += c;
  }
  if (streamed && data->pass && (rc = data->pass(data->ctx, 0, err))) goto done;
  *loss = total / data->count;
  *accuracy = (double)right / data->count;
done:
  cnn_reader_clear(&rd);
  cnn_free(idx);
  return rc;
}

long cnn_first_nonfinite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return (long)i;
  return -1;
}
