/*
 * cnn.h - the sqlite-cnn engine: model specs, networks, optimizers, training,
 * serialisation. Pure C11 + libm + pthreads + zlib; no SQLite, no printing.
 *
 * Layout (Keras' own, so the notebook's model maps one to one):
 *   activations  NHWC, batch-major: x[n][h][w][c]
 *   conv kernel  (KH, KW, IC, OC), i.e. a (KH*KW*IC) x OC matrix after im2col
 *   dense kernel (IN, OUT)
 *   flatten      free: an NHWC image is already the (h*w*c) vector Keras builds
 * All parameters of a network live in one flat arena: first the trainable
 * ones in layer order, kernel before bias (gradients and optimizer state are
 * arenas of that length), then the non-trainable weights (batchnorm's moving
 * statistics), which layers update themselves and the optimizer never sees.
 *
 * Errors follow base.h: status return + err[CNN_ERRMAX].
 */
#ifndef CNN_CNN_H
#define CNN_CNN_H

#include <stddef.h>
#include <stdint.h>

#include "augmentation.h"
#include "base.h"
#include "threads.h"

/* ---- activations ------------------------------------------------------- */

typedef enum cnn_act_kind {
  CNN_ACT_LINEAR,
  CNN_ACT_RELU,
  CNN_ACT_SIGMOID,
  CNN_ACT_TANH,
  CNN_ACT_SOFTMAX, /* over the last (channel) axis */
  CNN_ACT_LEAKY_RELU,
  CNN_ACT_ELU,
  CNN_ACT_SELU,
  CNN_ACT_GELU,
  CNN_ACT_SWISH,
  CNN_ACT_SOFTPLUS,
  CNN_ACT_SOFTSIGN,
  CNN_ACT_HARD_SIGMOID,
  CNN_ACT_EXPONENTIAL,
  CNN_ACT_EXPR, /* custom formula in x */
} cnn_act_kind;

typedef struct cnn_expr cnn_expr;

typedef struct cnn_act {
  cnn_act_kind kind;
  float alpha;    /* leaky_relu slope (0.2), elu alpha (1.0) */
  cnn_expr *expr; /* CNN_ACT_EXPR: owned compiled formula */
} cnn_act;

/* Name of a built-in activation, or the formula for CNN_ACT_EXPR. */
const char *cnn_act_name(const cnn_act *a);

/* ---- model specs --------------------------------------------------------- */

typedef enum cnn_layer_type {
  CNN_LAYER_CONV2D,
  CNN_LAYER_MAXPOOL,
  CNN_LAYER_AVGPOOL,
  CNN_LAYER_FLATTEN,
  CNN_LAYER_DENSE,
  CNN_LAYER_DROPOUT,
  CNN_LAYER_BATCHNORM,
  CNN_LAYER_GLOBALAVGPOOL,
  CNN_LAYER_ACTIVATION,
} cnn_layer_type;

typedef enum cnn_padding { CNN_PAD_VALID, CNN_PAD_SAME } cnn_padding;

typedef enum cnn_init_kind {
  CNN_INIT_GLOROT_UNIFORM,
  CNN_INIT_GLOROT_NORMAL,
  CNN_INIT_HE_UNIFORM,
  CNN_INIT_HE_NORMAL,
  CNN_INIT_LECUN_UNIFORM,
  CNN_INIT_LECUN_NORMAL,
  CNN_INIT_ZEROS,
} cnn_init_kind;

typedef struct cnn_layer_spec {
  cnn_layer_type type;
  int filters; /* conv2d */
  int units;   /* dense */
  int kh, kw;  /* conv kernel or pool size */
  int sh, sw;  /* strides */
  cnn_padding padding;
  float rate;         /* dropout */
  int use_bias;       /* conv2d, dense (default 1) */
  cnn_init_kind init; /* conv2d, dense kernels */
  cnn_act act;        /* conv2d, dense, activation */
  float momentum;     /* batchnorm (0.99) */
  float epsilon;      /* batchnorm (0.001) */
  int center, scale;  /* batchnorm: has beta, gamma (1, 1) */
} cnn_layer_spec;

typedef struct cnn_spec {
  int h, w, c; /* input shape */
  int nlayers;
  cnn_layer_spec *layers; /* owned, nlayers */
} cnn_spec;

#define CNN_SPEC_MAX_LAYERS 64
#define CNN_SPEC_MAX_SIDE 4096
#define CNN_SPEC_MAX_CHANNELS 4  /* input channels: images are 1..4 x uint8 */
#define CNN_SPEC_MAX_WIDTH 65536 /* filters or units of one layer */
#define CNN_SPEC_MAX_KERNEL 64
#define CNN_SPEC_MAX_PARAMS 200000000u     /* 800 MB of float32 */
#define CNN_SPEC_MAX_ACTIVATIONS 50000000u /* floats per sample over all layers */

/* The notebook's model as spec JSON. */
extern const char cnn_spec_notebook[];

/* Parses and validates a JSON spec (NULL = the notebook's model): unknown
 * keys or types, bad sizes, shapes that shrink below 1 and too many
 * parameters are errors naming the layer: "layer 3 (dense): units must be an
 * integer 1..65536, got 0". */
int cnn_spec_parse(cnn_spec *spec, const char *json, char *err);
void cnn_spec_clear(cnn_spec *spec);
/* The spec as canonical JSON with every default written out (owned). */
char *cnn_spec_to_json(const cnn_spec *spec);

/* ---- networks ------------------------------------------------------------ */

typedef struct cnn_net cnn_net;

typedef struct cnn_shape {
  int h, w, c;
} cnn_shape;

/* One row of Keras' model.summary(). */
typedef struct cnn_layer_info {
  const char *name; /* "conv2d_1" */
  const char *type; /* "Conv2D" */
  cnn_shape out;
  size_t params;    /* all of them, as Keras counts */
  size_t trainable; /* of which the optimizer updates */
} cnn_layer_info;

/* One tensor of the parameter arena, for storage. */
typedef struct cnn_tensor_info {
  const char *name; /* "conv2d/kernel", "dense_1/bias" */
  int rank;
  int dims[4];
  size_t offset; /* into the parameter arena */
  size_t count;  /* elements */
  int trainable; /* 0: past cnn_net_nparams, no gradient, no optimizer state */
} cnn_tensor_info;

/* Builds the network of a spec (taking ownership of *spec's contents, which is
 * cleared). Parameters are zero until cnn_net_init. */
int cnn_net_new(cnn_net **out, cnn_spec *spec, char *err);
void cnn_net_free(cnn_net *net);
const cnn_spec *cnn_net_spec(const cnn_net *net);

/* Glorot/He/LeCun kernels and zero biases from one seeded generator;
 * batchnorm: gamma 1, beta 0, moving mean 0, moving variance 1. */
void cnn_net_init(cnn_net *net, uint64_t seed);

/* Seeds the generator of dropout masks (cnn_train does this per run). */
void cnn_net_seed(cnn_net *net, uint64_t seed);

/* Threads for the heavy kernels (borrowed; NULL = single-threaded). */
void cnn_net_set_pool(cnn_net *net, cnn_threads *pool);
cnn_threads *cnn_net_pool(const cnn_net *net);

int cnn_net_layers(const cnn_net *net);
cnn_layer_info cnn_net_layer(const cnn_net *net, int i);
cnn_shape cnn_net_input(const cnn_net *net);
int cnn_net_classes(const cnn_net *net); /* units of the output vector */

/* Trainable parameters: what gradients and optimizers cover. */
size_t cnn_net_nparams(const cnn_net *net);
/* Non-trainable weights, stored after them in cnn_net_params (Keras' total
 * count is the sum of both). */
size_t cnn_net_nstate(const cnn_net *net);
/* The whole arena, nparams + nstate floats. Writes through it are seen by
 * the next prediction made after this call (which repacks what batched
 * inference keeps packed): call it again after predicting before writing. */
float *cnn_net_params(cnn_net *net);
float *cnn_net_grads(cnn_net *net);
int cnn_net_tensors(const cnn_net *net);
cnn_tensor_info cnn_net_tensor(const cnn_net *net, int i);
/* Checks weights read from outside (blob, table) beyond finiteness: a moving
 * variance must not be negative. Names the tensor and index. */
int cnn_net_check_weights(const cnn_net *net, char *err);

/* Makes room for batches of up to n samples (training needs more room per
 * sample than inference). Called by the functions below as needed; call it
 * yourself to fail early. */
int cnn_net_reserve(cnn_net *net, int n, int training, char *err);

/* Input buffer of the reserved batch: n x h x w x c floats. */
float *cnn_net_input_buffer(cnn_net *net);

/* Forward over the n samples in the input buffer. training: dropout active,
 * batchnorm normalises with the batch's statistics and updates its moving
 * ones, and pre-activations are kept for backward. Returns the output (n x classes,
 * borrowed: logits, or probabilities when the last activation is softmax). */
const float *cnn_net_forward(cnn_net *net, int n, int training);

/* Dropout masks: freeze (1) reuses the masks of the last training forward,
 * for gradient checks. */
void cnn_net_freeze_dropout(cnn_net *net, int freeze);

/* Loss of the last forward (mean over the batch) against labels, with its
 * gradient set up for backward; counts correct predictions. label_smoothing
 * in [0, 1): Keras' target one_hot * (1 - x) + x / classes (0: plain). */
double cnn_net_loss(cnn_net *net, const uint8_t *labels, int n, double label_smoothing,
                    int *correct);

/* Backward after cnn_net_loss: sets every parameter gradient. */
void cnn_net_backward(cnn_net *net, int n);
/* The same, calling ready(ctx, lo, hi) as soon as the gradients of
 * parameters [lo, hi) are final (one layer's, last layer first), while the
 * layer's weights and gradients are still in cache; the layer's weights are
 * not read again by this backward, so ready may update them. With band (may
 * be NULL), a layer with a big kernel (a dense layer's) hands it over in
 * bands of rows instead, band(ctx, lo, hi) called from the pool's threads,
 * several at once on disjoint ranges, as each band's gradients are final
 * and its weights read for the last time: band must run on the calling
 * thread alone (the pool is busy). ready then comes for the rest. */
typedef void (*cnn_grads_ready_fn)(void *ctx, size_t lo, size_t hi);
void cnn_net_backward_each(cnn_net *net, int n, cnn_grads_ready_fn ready, cnn_grads_ready_fn band,
                           void *ctx);

/* Gradient of the loss w.r.t. the input buffer from the last backward
 * (n x h x w x c), or NULL when not computed. For gradient checks. */
const float *cnn_net_input_grad(cnn_net *net);
void cnn_net_set_input_grad(cnn_net *net, int on);

/* Probabilities (softmax of the output) for n uint8 images (n x h x w x c),
 * in batches; out is n x classes. */
int cnn_net_predict(cnn_net *net, float *out, const uint8_t *images, size_t n, char *err);

/* Inference in mixed precision (forward passes outside training, so
 * cnn_net_predict and cnn_evaluate): bf16 operands and fp32 sums, as the
 * training option precision "bf16". Turning it on converts the dense layers'
 * kernels to bf16 once, as they are now (turn it on again after changing
 * the weights), for the products of a few rows (one image at a time) that
 * would otherwise read every fp32 weight per call; batches run the products
 * of cnn_gemm_bf16 on the network's pool. Fails with CNN_ERROR where the
 * pool's instruction set has no bf16 kernel (cnn_isa_bf16), CNN_NOMEM when
 * out of memory (inference then stays fp32). */
int cnn_net_set_bf16_inference(cnn_net *net, int on, char *err);
int cnn_net_bf16_inference(const cnn_net *net);

/* ---- optimizers ------------------------------------------------------------ */

typedef enum cnn_optim_kind {
  CNN_OPTIM_SGD, /* plain, or with momentum / Nesterov */
  CNN_OPTIM_ADAM,
  CNN_OPTIM_ADAMAX,
  CNN_OPTIM_ADAGRAD,
  CNN_OPTIM_RMSPROP,
  CNN_OPTIM_ADAMW, /* adam with weight decay 0.004 by default */
} cnn_optim_kind;

typedef struct cnn_optim_config {
  cnn_optim_kind kind;
  double learning_rate;
  double momentum;                  /* sgd, rmsprop */
  int nesterov;                     /* sgd */
  double beta_1, beta_2, epsilon;   /* adam, adamax */
  double rho;                       /* rmsprop */
  int centered;                     /* rmsprop */
  double initial_accumulator_value; /* adagrad */
  double weight_decay;              /* every kind: decoupled, 0 = none (adamw: 0.004) */
} cnn_optim_config;

typedef struct cnn_json cnn_json;

/* Keras' defaults for a named optimizer ("sgd", "momentum" = SGD with momentum
 * 0.9, "adam", "adamw", "adamax", "adagrad", "rmsprop"). */
int cnn_optim_defaults(cnn_optim_config *cfg, const char *name, char *err);
/* From JSON: a name, or {"name": ..., "learning_rate": ..., ...}. */
int cnn_optim_parse(cnn_optim_config *cfg, const cnn_json *v, char *err);
/* Canonical JSON with every setting (owned). */
char *cnn_optim_to_json(const cnn_optim_config *cfg);
const char *cnn_optim_name(cnn_optim_kind kind);

typedef struct cnn_optim {
  cnn_optim_config cfg;
  int64_t step;       /* updates applied so far (Keras' iterations) */
  int nslots;         /* state arrays in use */
  size_t n;           /* parameters */
  float *state;       /* owned, nslots * n; zero-initialised (adagrad: accumulator) */
  float alpha, decay; /* the step's scalars, set by cnn_optim_begin */
} cnn_optim;

int cnn_optim_init(cnn_optim *opt, const cnn_optim_config *cfg, size_t nparams, char *err);
void cnn_optim_clear(cnn_optim *opt);
/* State arrays the optimizer keeps per parameter, and their names. */
int cnn_optim_slots(const cnn_optim_config *cfg);
const char *cnn_optim_slot_name(const cnn_optim_config *cfg, int slot);
/* One update of params from grads (both n long). */
void cnn_optim_step(cnn_optim *opt, float *params, const float *grads, cnn_threads *pool);
/* The same step in parts: cnn_optim_begin counts it, then cnn_optim_update
 * updates values [lo, hi) of params, each value once per step, in any order
 * (every value's update reads only its own gradient and state). Bit for bit
 * cnn_optim_step once every value has been updated. */
void cnn_optim_begin(cnn_optim *opt);
void cnn_optim_update(cnn_optim *opt, float *params, const float *grads, size_t lo, size_t hi,
                      cnn_threads *pool);
/* cnn_optim_update on the calling thread alone, with the loops of the pool
 * `like` (its instruction set): for tasks that already run on a pool. */
void cnn_optim_update_serial(cnn_optim *opt, float *params, const float *grads, size_t lo,
                             size_t hi, const cnn_threads *like);

/* ---- training -------------------------------------------------------------- */

/* Rows to train on or evaluate: in memory (images and labels), or streamed
 * (images NULL) through `read`, which the engine asks for each batch's rows
 * in the order it uses them, so a streamed dataset gives the same batches,
 * and the same weights, as the same rows in memory. */
typedef int (*cnn_dataset_read_fn)(void *ctx, const uint32_t *idx, int n, uint8_t *images,
                                   uint8_t *labels, char *err);
typedef int (*cnn_dataset_pass_fn)(void *ctx, int begin, char *err);
typedef struct cnn_dataset {
  const uint8_t *images; /* borrowed, count x h x w x c, 0..255; NULL: streamed */
  const uint8_t *labels; /* borrowed, count; NULL: streamed */
  size_t count;
  /* Streamed: fills images (n x h x w x c) and labels (n) with rows idx[0..n)
   * of the dataset (0-based), labels checked against the model's classes. It
   * runs on a reader thread, one call at a time, while the previous batch
   * computes, unless same_thread is set. */
  cnn_dataset_read_fn read;
  /* Streamed, may be NULL: called with begin 1 before the first read of a
   * pass over the rows (an epoch, an evaluation) and with begin 0 after its
   * last (the caller's read transaction); on the calling thread. */
  cnn_dataset_pass_fn pass;
  void *ctx;
  int same_thread; /* read only on the calling thread: no reading ahead */
} cnn_dataset;

/* What happened inside one layer during an epoch (the training option
 * layer_stats), as means over up to CNN_LAYER_STAT_STEPS steps spread
 * evenly over the epoch, its last included. The kernel is the layer's
 * first trainable tensor (batchnorm: gamma); layers without one have NaN
 * for the first three.
 *   grad_mean_abs  mean |d loss / d kernel| of a step's batch
 *   weight_norm    L2 norm of the kernel after the step
 *   update_ratio   L2 norm of the step's change of the kernel over the
 *                  norm before it (the optimizer's effective step size)
 *   zero_fraction  share of the layer's outputs (after its activation)
 *                  that are exactly 0 in the step's training forward pass:
 *                  ReLUs that are off, dead ones included */
#define CNN_LAYER_STAT_STEPS 16
typedef struct cnn_layer_stat {
  double grad_mean_abs, weight_norm, update_ratio, zero_fraction;
} cnn_layer_stat;

typedef struct cnn_epoch_stats {
  int epoch; /* 1-based over the model's life */
  double loss, accuracy;
  double val_loss, val_accuracy; /* NaN without validation */
  double learning_rate;
  double seconds;
  size_t samples;
  const cnn_layer_stat *layers; /* cnn_net_layers entries, or NULL without layer_stats */
} cnn_epoch_stats;

/* Layer statistics (cnn_layer_stat), added into acc[cnn_net_layers]: the
 * share of zeros in each layer's output after the last forward pass of n
 * rows; and after an update, from its gradients (still in cnn_net_grads),
 * `before` (a copy of cnn_net_params taken before it) and the parameters
 * now, each kernel's mean |gradient|, norm and change. The sums run in
 * double on the network's pool in fixed chunks: the same values for any
 * pool size. scratch holds cnn_net_stat_scratch(net) doubles. */
void cnn_net_stat_outputs(const cnn_net *net, int n, cnn_layer_stat *acc);
size_t cnn_net_stat_scratch(const cnn_net *net);
void cnn_net_stat_update(const cnn_net *net, const float *before, double *scratch,
                         cnn_layer_stat *acc);

typedef struct cnn_batch_progress {
  int epoch;       /* as above */
  int epoch_index; /* 1..epochs of this run */
  int epochs;
  size_t batch, batches; /* 1-based batch of this epoch */
  size_t samples;        /* seen this epoch */
  double loss, accuracy; /* running means this epoch */
  double seconds;        /* since the epoch started */
} cnn_batch_progress;

/* Asked between pieces of long work: nonzero means stop (an interrupt). */
typedef int (*cnn_stop_fn)(void *ctx);

/* A learning-rate schedule (Keras' keras.optimizers.schedules), the rate
 * set before every optimizer step from the step count before it:
 *   exponential_decay  initial * decay_rate^(step / decay_steps), the
 *                      exponent floored with staircase
 *   cosine_decay       initial * ((1 - alpha) * 0.5 * (1 + cos(pi *
 *                      min(step, decay_steps) / decay_steps)) + alpha)
 *   piecewise_constant values[0] for step <= boundaries[0], values[i] for
 *                      step in (boundaries[i-1], boundaries[i]], the last
 *                      value after the last boundary */
typedef enum cnn_lr_kind {
  CNN_LR_NONE,
  CNN_LR_EXPONENTIAL,
  CNN_LR_COSINE,
  CNN_LR_PIECEWISE
} cnn_lr_kind;
#define CNN_MAX_BOUNDARIES 64
typedef struct cnn_lr_schedule {
  cnn_lr_kind kind; /* CNN_LR_NONE: the optimizer's own rate */
  double initial, decay_steps, decay_rate, alpha;
  int staircase;
  int nboundaries; /* values holds nboundaries + 1 */
  double boundaries[CNN_MAX_BOUNDARIES];
  double values[CNN_MAX_BOUNDARIES + 1];
} cnn_lr_schedule;

/* From the JSON object {"schedule": name, ...}; every key checked. */
int cnn_lr_schedule_parse(cnn_lr_schedule *s, const cnn_json *v, char *err);
/* The rate at optimizer step `step` (updates applied before this one). */
double cnn_lr_schedule_rate(const cnn_lr_schedule *s, int64_t step);

/* Keras' ReduceLROnPlateau (mode min), judged after every epoch: when the
 * monitored loss has not fallen below best - min_delta for patience epochs
 * (epochs in cooldown after a reduction not counted), the optimizer's rate
 * becomes max(rate * factor, min_lr) if it is above min_lr. */
typedef enum cnn_monitor {
  CNN_MONITOR_AUTO, /* val_loss with validation data, else loss */
  CNN_MONITOR_LOSS,
  CNN_MONITOR_VAL_LOSS
} cnn_monitor;
typedef struct cnn_plateau_config {
  int on;
  cnn_monitor monitor;
  double factor;    /* (0, 1): 0.1 */
  int patience;     /* 10 */
  double min_delta; /* 1e-4 */
  int cooldown;     /* 0 */
  double min_lr;    /* 0 */
} cnn_plateau_config;

/* Everything a training run needs. The first part is what cnn_train's
 * options say (cnn_train_config_parse, Keras' defaults); the rest the caller
 * fills in. */
typedef struct cnn_train_config {
  int epochs;                 /* to run now (10) */
  int batch_size;             /* 32 */
  int has_optimizer;          /* an optimizer was named: one unlike opt's starts afresh */
  cnn_optim_config optimizer; /* adam; used when opt is empty or has_optimizer */
  double learning_rate;       /* > 0: overrides the optimizer's, a continued one's too */
  cnn_lr_schedule schedule;   /* else this sets the rate per step; the optimizer's stays */
  cnn_plateau_config plateau; /* lowers the optimizer's rate (it is stored); not with schedule */
  int shuffle;                /* 1 */
  int layer_stats;            /* fill cnn_epoch_stats.layers; 0 */
  double label_smoothing;     /* [0, 1): training and validation loss; 0 */
  cnn_augment_config augment; /* training batches only; all zero (off) */
  int has_seed;               /* seed was given; else the caller draws one */
  uint64_t seed;
  double max_seconds; /* <= 0: none; else stop after the epoch that passes it */
  int patience;       /* early stopping: 0 = off */
  double min_delta;
  int restore_best; /* 1 */

  int first_epoch; /* number of the first epoch of this run (1 + done) */
  /* Called after every batch; nonzero stops training (interrupt). */
  int (*on_batch)(void *ctx, const cnn_batch_progress *p);
  /* Polled between the forward and backward pass of a batch and between
   * validation batches, so that an interrupt is answered within part of a
   * batch; nonzero stops training (interrupt). NULL: only on_batch. */
  cnn_stop_fn stop;
  /* Called after every epoch (commit it); a status other than CNN_OK stops
   * training with that status and message. */
  int (*on_epoch)(void *ctx, const cnn_epoch_stats *s, char *err);
  void *ctx;
} cnn_train_config;

typedef struct cnn_train_result {
  int epochs_run;
  int stopped_early; /* patience ran out */
  int out_of_time;   /* max_seconds */
  int best_epoch;    /* epoch whose weights were restored, or 0 */
  double seconds;
} cnn_train_result;

/* Trains for cfg->epochs epochs. The optimizer: opt as it is (continuing a
 * stored state), or set up afresh from cfg->optimizer when opt is empty or
 * cfg names a different one (Keras: compiling with another optimizer starts
 * its state over); cfg->learning_rate > 0 then overrides its rate, or
 * cfg->schedule sets the rate of each step (opt->cfg keeps its own). With
 * early stopping and restore_best, the net ends with the best epoch's
 * parameters. An interrupt returns CNN_INTERRUPTED with every completed
 * epoch already reported. */
int cnn_train(cnn_net *net, cnn_optim *opt, const cnn_dataset *train, const cnn_dataset *val,
              const cnn_train_config *cfg, cnn_train_result *res, char *err);

/* Mean loss and accuracy over a dataset (inference mode), the loss with
 * label smoothing as cnn_net_loss (cnn_train's validation uses the run's,
 * as Keras' fit does; a plain evaluation passes 0). stop (may be NULL) is
 * polled between batches: nonzero returns CNN_INTERRUPTED. */
int cnn_evaluate(cnn_net *net, const cnn_dataset *data, double label_smoothing, cnn_stop_fn stop,
                 void *ctx, double *loss, double *accuracy, char *err);

/* ---- training options (the JSON of cnn_train) ----------------------------- */

#define CNN_MAX_EPOCHS 100000
#define CNN_MAX_BATCH 65536
#define CNN_MAX_THREADS 256

/* Keras' defaults: 10 epochs, batch 32, Adam, shuffled, first_epoch 1. */
void cnn_train_config_defaults(cnn_train_config *cfg);

/* Parses cnn_train's options (NULL or "" = all defaults) into the option
 * part of cfg. Unknown keys and out-of-range values are errors naming the
 * key and the value. caller_keys (NULL-terminated, or NULL) are options the
 * caller reads itself from *root (the parsed document, owned by the caller,
 * NULL without options; root may be NULL): skipped here, named in the
 * message for an unknown key. */
int cnn_train_config_parse(cnn_train_config *cfg, const char *json, const char *const *caller_keys,
                           cnn_json **root, char *err);

/* ---- little helpers shared by engine and face ------------------------------ */

/* Checks n floats are finite; returns the index of the first that is not, or
 * -1. */
long cnn_first_nonfinite(const float *x, size_t n);

#endif
