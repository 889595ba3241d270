/*
 * test_grad.c - gradient checks: every layer, activation (custom formulas
 * too), padding mode and stride, dropout with a frozen mask, and both losses
 * (logits and softmax output), against central finite differences of the
 * loss. Parameters and the input are both checked. Batchnorm is checked in
 * training mode, where every sample's gradient goes through the batch's mean
 * and variance too (after conv2d and dense, several channel counts and
 * batch sizes, without gamma or beta). Label smoothing: the smoothed loss
 * of both kinds against finite differences, and its value by hand.
 *
 * The engine computes in float; the differences are taken of the float loss
 * accumulated in double, with h = 1e-3, so agreement is to about 1e-4.
 * Where a step of h crosses a kink (relu at 0, a max changing hands) the
 * central difference is meaningless: such a point must show different left and
 * right slopes, and the analytic gradient must equal one of them. Kinks are
 * counted and must stay rare. The convolutions the engine runs by Winograd
 * (3x3 stride 1, 32 channels and more) are checked too.
 */
#include <stdlib.h>

#include "check.h"
#include "cnn.h"

#define H 1e-3
#define ATOL 3e-4
#define RTOL 2e-2

static int agrees(double num, double ana) {
  return fabs(num - ana) <= ATOL + RTOL * fmax(fabs(num), fabs(ana));
}

/* 0: agrees, 1: a kink explains it, 2: wrong. */
static int judge(double lp, double l0, double lm, double ana) {
  if (agrees((lp - lm) / (2 * H), ana)) return 0;
  double right = (lp - l0) / H, left = (l0 - lm) / H;
  int kink = !agrees(right, left);
  return kink && (agrees(right, ana) || agrees(left, ana)) ? 1 : 2;
}

/* Of every loss below; the checks of label smoothing set it. */
static double smoothing;

static double loss_at(cnn_net *net, const float *x, const uint8_t *labels, int n, size_t isize) {
  memcpy(cnn_net_input_buffer(net), x, n * isize * sizeof *x);
  cnn_net_forward(net, n, 1);
  return cnn_net_loss(net, labels, n, smoothing, NULL);
}

/* Checks up to `samples` parameters (spread over the arena) and inputs. */
static void grad_check(const char *what, const char *spec_json, int n, int samples) {
  char err[CNN_ERRMAX];
  cnn_spec spec;
  cnn_net *net = NULL;
  if (!CHECK(cnn_spec_parse(&spec, spec_json, err) == CNN_OK)) {
    fprintf(stderr, "%s: %s\n", what, err);
    return;
  }
  if (!CHECK(cnn_net_new(&net, &spec, err) == CNN_OK)) {
    fprintf(stderr, "%s: %s\n", what, err);
    return;
  }
  cnn_net_init(net, 42);
  cnn_net_set_input_grad(net, 1);
  CHECK(cnn_net_reserve(net, n, 1, err) == CNN_OK);
  cnn_shape in = cnn_net_input(net);
  size_t isize = (size_t)in.h * in.w * in.c, np = cnn_net_nparams(net);
  float *x = malloc(n * isize * sizeof *x), *grads = malloc(np * sizeof *grads);
  float *dx = malloc(n * isize * sizeof *dx);
  uint8_t labels[64];
  srand(7);
  for (size_t i = 0; i < n * isize; i++) x[i] = (float)rand() / RAND_MAX * 2 - 1;
  for (int i = 0; i < n; i++) labels[i] = (uint8_t)(rand() % cnn_net_classes(net));
  /* Biases (and batchnorm's beta) start at zero, gamma at one; give them
   * values so their gradients are generic. The moving statistics play no
   * part in a training forward. */
  float *p = cnn_net_params(net);
  for (int t = 0; t < cnn_net_tensors(net); t++) {
    cnn_tensor_info ti = cnn_net_tensor(net, t);
    int gamma = strstr(ti.name, "/gamma") != NULL;
    if (ti.rank == 1 && ti.trainable)
      for (size_t j = 0; j < ti.count; j++)
        p[ti.offset + j] = (float)rand() / RAND_MAX * 0.2f - 0.1f + (gamma ? 1.0f : 0.0f);
  }

  /* First forward draws dropout masks; freeze them for every later pass.
   * Backward must overwrite every gradient: start from NaN garbage. */
  loss_at(net, x, labels, n, isize);
  cnn_net_freeze_dropout(net, 1);
  for (size_t j = 0; j < np; j++) cnn_net_grads(net)[j] = NAN;
  loss_at(net, x, labels, n, isize);
  cnn_net_backward(net, n);
  memcpy(grads, cnn_net_grads(net), np * sizeof *grads);
  memcpy(dx, cnn_net_input_grad(net), n * isize * sizeof *dx);

  int bad = 0, checked = 0, kinks = 0;
  double l0 = loss_at(net, x, labels, n, isize);
  size_t step = np / samples + 1;
  for (size_t j = 0; j < np; j += step) {
    float keep = p[j];
    p[j] = keep + (float)H;
    double lp = loss_at(net, x, labels, n, isize);
    p[j] = keep - (float)H;
    double lm = loss_at(net, x, labels, n, isize);
    p[j] = keep;
    double num = (lp - lm) / (2 * H), ana = grads[j];
    checked++;
    int v = judge(lp, l0, lm, ana);
    kinks += v == 1;
    if (v == 2 && bad++ < 5)
      fprintf(stderr, "%s: param %zu: numeric %.6g analytic %.6g\n", what, j, num, ana);
  }
  step = n * isize / samples + 1;
  for (size_t j = 0; j < n * isize; j += step) {
    float keep = x[j];
    x[j] = keep + (float)H;
    double lp = loss_at(net, x, labels, n, isize);
    x[j] = keep - (float)H;
    double lm = loss_at(net, x, labels, n, isize);
    x[j] = keep;
    double num = (lp - lm) / (2 * H), ana = dx[j];
    checked++;
    int v = judge(lp, l0, lm, ana);
    kinks += v == 1;
    if (v == 2 && bad++ < 5)
      fprintf(stderr, "%s: input %zu: numeric %.6g analytic %.6g\n", what, j, num, ana);
  }
  if (!CHECK(bad == 0)) fprintf(stderr, "%s: %d of %d gradients disagree\n", what, bad, checked);
  CHECK(checked > 20);
  if (!CHECK(kinks * 10 <= checked))
    fprintf(stderr, "%s: %d kinks in %d points\n", what, kinks, checked);
  free(x), free(grads), free(dx);
  cnn_net_free(net);
}

static void check_activation(const char *act) {
  char spec[512], what[128];
  snprintf(spec, sizeof spec,
           "{\"input\":[5,5,2],\"layers\":[{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,"
           "\"padding\":\"same\",\"activation\":%s},{\"type\":\"flatten\"},"
           "{\"type\":\"dense\",\"units\":6,\"activation\":%s},{\"type\":\"dense\",\"units\":3}]}",
           act, act);
  snprintf(what, sizeof what, "activation %s", act);
  grad_check(what, spec, 3, 150);
}

/* Max pooling keeps the first of equal maxima (its gradient goes there
 * alone) and lets a NaN through: with C = 10 in the vector channels and
 * after them, with C = 16 in the 2x2 path (src/pool2d.c). */
static void test_maxpool_ties_nan(int C) {
  char err[CNN_ERRMAX], json[512];
  cnn_spec spec;
  cnn_net *net = NULL;
  snprintf(json, sizeof json,
           "{\"input\":[2,2,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":%d,"
           "\"kernel\":1,\"use_bias\":false},{\"type\":\"maxpool\",\"size\":2},"
           "{\"type\":\"flatten\"}]}",
           C);
  if (!CHECK(cnn_spec_parse(&spec, json, err) == CNN_OK && cnn_net_new(&net, &spec, err) == CNN_OK))
    return;
  /* The 1x1 convolution scales the pixel by 1 + c into channel c (ties stay
   * ties; the gradients of the channels do not cancel); the outputs are the
   * pooled values. */
  CHECK_EQ_INT(cnn_net_tensors(net), 1);
  float *conv = cnn_net_params(net) + cnn_net_tensor(net, 0).offset;
  for (int c = 0; c < C; c++) conv[c] = 1.0f + c;
  cnn_net_set_input_grad(net, 1);
  CHECK(cnn_net_reserve(net, 1, 1, err) == CNN_OK);
  float *x = cnn_net_input_buffer(net);
  for (int cell = 0; cell < 4; cell++) x[cell] = 0.5f; /* all four tied */
  uint8_t label = 0;
  cnn_net_forward(net, 1, 1);
  cnn_net_loss(net, &label, 1, 0, NULL);
  cnn_net_backward(net, 1);
  const float *dx = cnn_net_input_grad(net);
  CHECK(dx[0] != 0 && dx[1] == 0 && dx[2] == 0 && dx[3] == 0);
  x[3] = NAN; /* the last cell of the window, in every channel */
  const float *out = cnn_net_forward(net, 1, 0);
  int nans = 0;
  for (int c = 0; c < C; c++) nans += isnan(out[c]) != 0;
  CHECK_EQ_INT(nans, C);
  cnn_net_free(net);
}

/* Logits (1, 2, 3), label 2, smoothing 0.2 over 3 classes: targets
 * t = (1/15, 1/15, 13/15), loss = lse - t . z = 3.4076059644 - 42/15 =
 * 0.6076059644 (0.4076059644 unsmoothed), and d loss / d z = softmax(z) - t
 * = (0.0233639065, 0.1780618044, -0.2014257109), which is the bias gradient.
 * A softmax output gives the same: -sum t log p. */
static void test_smoothing_by_hand(const char *act) {
  char err[CNN_ERRMAX], json[256];
  cnn_spec spec;
  cnn_net *net = NULL;
  snprintf(json, sizeof json,
           "{\"input\":[1,1,1],\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\","
           "\"units\":3,\"activation\":\"%s\"}]}",
           act);
  if (!CHECK(cnn_spec_parse(&spec, json, err) == CNN_OK && cnn_net_new(&net, &spec, err) == CNN_OK))
    return;
  CHECK(cnn_net_reserve(net, 1, 1, err) == CNN_OK);
  float *p = cnn_net_params(net);
  cnn_tensor_info bias = cnn_net_tensor(net, 1);
  memset(p, 0, cnn_net_nparams(net) * sizeof *p);
  for (int j = 0; j < 3; j++) p[bias.offset + j] = (float)(j + 1);
  cnn_net_input_buffer(net)[0] = 0;
  uint8_t label = 2;
  cnn_net_forward(net, 1, 1);
  CHECK_NEAR(cnn_net_loss(net, &label, 1, 0, NULL), 0.4076059644, 1e-6);
  cnn_net_forward(net, 1, 1);
  int correct = 0;
  CHECK_NEAR(cnn_net_loss(net, &label, 1, 0.2, &correct), 0.6076059644, 1e-6);
  CHECK_EQ_INT(correct, 1);
  cnn_net_backward(net, 1);
  const float *g = cnn_net_grads(net) + bias.offset;
  CHECK_NEAR(g[0], 0.0233639065, 1e-6);
  CHECK_NEAR(g[1], 0.1780618044, 1e-6);
  CHECK_NEAR(g[2], -0.2014257109, 1e-6);
  cnn_net_free(net);
}

int main(void) {
  /* Every built-in activation and custom formulas, in conv2d and dense. */
  const char *acts[] = {"\"linear\"",
                        "\"relu\"",
                        "\"sigmoid\"",
                        "\"tanh\"",
                        "\"softmax\"",
                        "\"leaky_relu\"",
                        "\"elu\"",
                        "\"selu\"",
                        "\"gelu\"",
                        "\"swish\"",
                        "\"softplus\"",
                        "\"softsign\"",
                        "\"hard_sigmoid\"",
                        "\"exponential\"",
                        "{\"name\":\"leaky_relu\",\"alpha\":0.1}",
                        "{\"expr\":\"x*sigmoid(x)\"}",
                        "{\"expr\":\"max(x, 0.1*x)\"}",
                        "{\"expr\":\"x/(1+abs(x))\"}",
                        "{\"expr\":\"tanh(x)^2 + exp(-x^2)\"}"};
  for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) check_activation(acts[i]);

  /* Convolutions: valid/same, strides, non-square kernels, 1x1, no bias. */
  grad_check("conv valid",
             "{\"input\":[6,6,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,"
             "\"activation\":\"tanh\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  grad_check("conv same stride 2",
             "{\"input\":[7,6,2],\"layers\":[{\"type\":\"conv2d\",\"filters\":3,\"kernel\":[2,3],"
             "\"strides\":2,\"padding\":\"same\",\"activation\":\"tanh\"},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":4}]}",
             2, 200);
  grad_check("conv valid strides [2,1]",
             "{\"input\":[7,7,3],\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,"
             "\"strides\":[2,1],\"activation\":\"sigmoid\"},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  grad_check("conv 1x1 no bias",
             "{\"input\":[4,4,3],\"layers\":[{\"type\":\"conv2d\",\"filters\":5,\"kernel\":1,"
             "\"use_bias\":false,\"activation\":\"elu\"},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":3,\"use_bias\":false}]}",
             2, 200);
  /* 3x3 stride-1 convolutions the engine runs by Winograd (conv2d.c's rule),
   * forward, input gradient (which the first convolution's gradients and
   * the network's input gradient go through) and weight gradient: the
   * notebook's second convolution, and a 'same' one. */
  grad_check("conv by Winograd, forward, input and weight gradients (13x13x32 -> 64)",
             "{\"input\":[15,15,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":32,\"kernel\":3,"
             "\"activation\":\"tanh\"},{\"type\":\"conv2d\",\"filters\":64,\"kernel\":3,"
             "\"activation\":\"tanh\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 300);
  grad_check("conv by Winograd, forward, input and weight gradients (12x12x32 same)",
             "{\"input\":[12,12,2],\"layers\":[{\"type\":\"conv2d\",\"filters\":32,\"kernel\":3,"
             "\"padding\":\"same\",\"activation\":\"tanh\"},{\"type\":\"conv2d\",\"filters\":32,"
             "\"kernel\":3,\"padding\":\"same\",\"activation\":\"tanh\"},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":3}]}",
             2, 300);
  /* Pooling: max and average, valid and same, overlapping windows. */
  grad_check("maxpool valid",
             "{\"input\":[8,8,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,"
             "\"padding\":\"same\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  grad_check("maxpool same 3 stride 2",
             "{\"input\":[7,7,2],\"layers\":[{\"type\":\"maxpool\",\"size\":3,\"strides\":2,"
             "\"padding\":\"same\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  grad_check("maxpool valid overlapping",
             "{\"input\":[6,6,2],\"layers\":[{\"type\":\"maxpool\",\"size\":3,\"strides\":1},"
             "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  grad_check("maxpool 10 channels same 3 stride 2", /* 8 channels as a vector, 2 after */
             "{\"input\":[7,7,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":10,\"kernel\":1},"
             "{\"type\":\"maxpool\",\"size\":3,\"strides\":2,\"padding\":\"same\"},"
             "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 300);
  grad_check("maxpool 2x2 16 channels", /* the 2x2 path */
             "{\"input\":[6,7,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":16,\"kernel\":1},"
             "{\"type\":\"maxpool\",\"size\":2},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":3}]}",
             2, 300);
  test_maxpool_ties_nan(10);
  test_maxpool_ties_nan(16);
  grad_check(
      "avgpool same",
      "{\"input\":[5,5,2],\"layers\":[{\"type\":\"avgpool\",\"size\":2,\"padding\":\"same\"},"
      "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
      2, 200);
  grad_check("avgpool valid 3 stride 2",
             "{\"input\":[7,7,1],\"layers\":[{\"type\":\"avgpool\",\"size\":3,\"strides\":2},"
             "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  /* Dropout with its mask frozen, and a softmax output (probability loss). */
  grad_check(
      "dropout",
      "{\"input\":[4,4,1],\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":12,"
      "\"activation\":\"tanh\"},{\"type\":\"dropout\",\"rate\":0.5},{\"type\":\"dense\",\"units\":"
      "4}]}",
      3, 200);
  grad_check(
      "softmax output",
      "{\"input\":[3,3,1],\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":8,"
      "\"activation\":\"relu\"},{\"type\":\"dense\",\"units\":5,\"activation\":\"softmax\"}]}",
      4, 200);
  /* Batchnorm (training: the batch's statistics), global average pooling
   * and the activation layer. */
  grad_check("conv -> batchnorm -> tanh, 3 channels, batch 2",
             "{\"input\":[5,5,2],\"layers\":[{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,"
             "\"use_bias\":false},{\"type\":\"batchnorm\"},{\"type\":\"activation\","
             "\"activation\":\"tanh\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  grad_check("conv -> batchnorm -> relu -> globalavgpool, 9 channels, batch 1",
             "{\"input\":[6,5,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":9,\"kernel\":3,"
             "\"padding\":\"same\",\"use_bias\":false},{\"type\":\"batchnorm\","
             "\"momentum\":0.5},{\"type\":\"activation\",\"activation\":\"relu\"},"
             "{\"type\":\"globalavgpool\"},{\"type\":\"dense\",\"units\":4}]}",
             1, 300);
  grad_check("conv -> batchnorm (no gamma) -> globalavgpool, 16 channels, batch 4",
             "{\"input\":[5,4,2],\"layers\":[{\"type\":\"conv2d\",\"filters\":16,\"kernel\":2,"
             "\"activation\":\"elu\"},{\"type\":\"batchnorm\",\"scale\":false,\"epsilon\":0.01},"
             "{\"type\":\"globalavgpool\"},{\"type\":\"dense\",\"units\":3}]}",
             4, 300);
  grad_check("dense -> batchnorm -> sigmoid, 6 features, batch 3",
             "{\"input\":[3,3,1],\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\","
             "\"units\":6,\"use_bias\":false},{\"type\":\"batchnorm\"},{\"type\":\"activation\","
             "\"activation\":\"sigmoid\"},{\"type\":\"dense\",\"units\":3}]}",
             3, 200);
  grad_check("dense -> batchnorm (no beta) -> dropout, 12 features, batch 6",
             "{\"input\":[4,4,1],\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\","
             "\"units\":12},{\"type\":\"batchnorm\",\"center\":false},{\"type\":\"dropout\","
             "\"rate\":0.3},{\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}]}",
             6, 200);
  grad_check("batchnorm on the input, then dense",
             "{\"input\":[4,3,2],\"layers\":[{\"type\":\"batchnorm\"},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":3}]}",
             5, 200);
  grad_check("globalavgpool after avgpool",
             "{\"input\":[6,6,3],\"layers\":[{\"type\":\"avgpool\",\"size\":2},"
             "{\"type\":\"globalavgpool\"},{\"type\":\"dense\",\"units\":3}]}",
             2, 200);
  grad_check("activation layers: custom formula, softplus",
             "{\"input\":[3,3,2],\"layers\":[{\"type\":\"activation\",\"activation\":"
             "{\"expr\":\"x*sigmoid(x)\"}},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":5},"
             "{\"type\":\"activation\",\"activation\":\"softplus\"},{\"type\":\"dense\","
             "\"units\":3},{\"type\":\"activation\",\"activation\":\"softmax\"}]}",
             3, 200);
  /* A small version of the notebook's model end to end. */
  grad_check("notebook-like",
             "{\"input\":[12,12,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,"
             "\"activation\":\"relu\"},{\"type\":\"maxpool\",\"size\":2},{\"type\":\"conv2d\","
             "\"filters\":6,\"kernel\":3,\"activation\":\"relu\"},{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":20,\"activation\":\"relu\"},{\"type\":\"dropout\","
             "\"rate\":0.3},{\"type\":\"dense\",\"units\":10}]}",
             3, 300);

  test_smoothing_by_hand("linear");
  test_smoothing_by_hand("softmax");
  smoothing = 0.1;
  grad_check("label smoothing 0.1, logits",
             "{\"input\":[4,4,2],\"layers\":[{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,"
             "\"activation\":\"tanh\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":5}]}",
             4, 200);
  smoothing = 0.3;
  grad_check("label smoothing 0.3, softmax output",
             "{\"input\":[4,4,2],\"layers\":[{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,"
             "\"activation\":\"tanh\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":5,"
             "\"activation\":\"softmax\"}]}",
             4, 200);
  smoothing = 0;
  return check_done();
}
