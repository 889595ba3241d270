/*
 * test_spec.c - specs and networks: the notebook's model has Keras' exact
 * shapes and parameter counts (and so do its 'same' and strided variants),
 * the canonical JSON reads back to itself, and every kind of bad spec is
 * refused with a message naming the layer.
 */
#include "check.h"
#include "cnn.h"

static cnn_net *build(const char *json, char *err) {
  cnn_spec spec;
  cnn_net *net = NULL;
  if (cnn_spec_parse(&spec, json, err)) return NULL;
  if (cnn_net_new(&net, &spec, err)) return NULL;
  return net;
}

static void shapes(const char *json, int n, const int (*want)[4], size_t total) {
  char err[CNN_ERRMAX];
  cnn_net *net = build(json, err);
  if (!CHECK(net != NULL)) {
    fprintf(stderr, "%s\n", err);
    return;
  }
  CHECK_EQ_INT(cnn_net_layers(net), n);
  for (int i = 0; i < n && i < cnn_net_layers(net); i++) {
    cnn_layer_info li = cnn_net_layer(net, i);
    if (!(CHECK_EQ_INT(li.out.h, want[i][0]) & CHECK_EQ_INT(li.out.w, want[i][1]) &
          CHECK_EQ_INT(li.out.c, want[i][2]) & CHECK_EQ_INT(li.params, want[i][3])))
      fprintf(stderr, "  layer %d (%s)\n", i + 1, li.name);
  }
  CHECK_EQ_INT(cnn_net_nparams(net), total);
  cnn_net_free(net);
}

static void refused(const char *json, const char *msg) {
  char err[CNN_ERRMAX] = "";
  cnn_net *net = build(json, err);
  CHECK(net == NULL);
  CHECK_STR(err, msg);
  cnn_net_free(net);
}

#define L(x) "{\"input\":[28,28,1],\"layers\":[" x "]}"

/* Conv -> batchnorm -> relu -> global average pooling -> dense, with Keras'
 * summary (BatchNormalization: 4 per channel, 2 of them non-trainable), its
 * tensors in Keras' order, the moving statistics past the trainable ones,
 * and the canonical JSON. */
static void test_batchnorm_net(void) {
  char err[CNN_ERRMAX];
  static const int want[][4] = {{26, 26, 16, 144}, {26, 26, 16, 64}, {26, 26, 16, 0}, {1, 1, 16, 0},
                                {1, 1, 10, 170},   {1, 1, 10, 30},   {1, 1, 10, 110}};
  const char *json =
      L("{\"type\":\"conv2d\",\"filters\":16,\"kernel\":3,\"use_bias\":false},"
        "{\"type\":\"batchnorm\"},{\"type\":\"activation\",\"activation\":\"relu\"},"
        "{\"type\":\"globalavgpool\"},{\"type\":\"dense\",\"units\":10},"
        "{\"type\":\"batch_normalization\",\"momentum\":0.9,\"epsilon\":1e-5,\"center\":false},"
        "{\"type\":\"dense\",\"units\":10}");
  shapes(json, 7, want, 144 + 32 + 170 + 10 + 110); /* trainable */
  cnn_net *net = build(json, err);
  if (!CHECK(net != NULL)) return;
  CHECK_EQ_INT(cnn_net_nstate(net), 32 + 20);
  CHECK_STR(cnn_net_layer(net, 1).name, "batch_normalization");
  CHECK_STR(cnn_net_layer(net, 1).type, "BatchNormalization");
  CHECK_EQ_INT(cnn_net_layer(net, 1).trainable, 32);
  CHECK_STR(cnn_net_layer(net, 2).type, "Activation");
  CHECK_STR(cnn_net_layer(net, 3).name, "global_average_pooling2d");
  CHECK_STR(cnn_net_layer(net, 3).type, "GlobalAveragePooling2D");
  CHECK_STR(cnn_net_layer(net, 5).name, "batch_normalization_1");
  CHECK_EQ_INT(cnn_net_layer(net, 5).params, 30);
  CHECK_EQ_INT(cnn_net_layer(net, 5).trainable, 10);
  static const char *const names[] = {"conv2d/kernel",
                                      "batch_normalization/gamma",
                                      "batch_normalization/beta",
                                      "batch_normalization/moving_mean",
                                      "batch_normalization/moving_variance",
                                      "dense/kernel",
                                      "dense/bias",
                                      "batch_normalization_1/gamma",
                                      "batch_normalization_1/moving_mean",
                                      "batch_normalization_1/moving_variance",
                                      "dense_1/kernel",
                                      "dense_1/bias"};
  static const size_t offsets[] = {0, 144, 160, 466, 482, 176, 336, 346, 498, 508, 356, 456};
  if (CHECK_EQ_INT(cnn_net_tensors(net), 12))
    for (int i = 0; i < 12; i++) {
      cnn_tensor_info t = cnn_net_tensor(net, i);
      CHECK_STR(t.name, names[i]);
      CHECK_EQ_INT(t.offset, offsets[i]);
      CHECK_EQ_INT(t.trainable, offsets[i] < 466);
    }
  cnn_net_init(net, 3);
  const float *p = cnn_net_params(net);
  CHECK(p[144] == 1 && p[159] == 1 && p[160] == 0 && p[466] == 0 && p[482] == 1 && p[517] == 1);
  char *canon = cnn_spec_to_json(cnn_net_spec(net));
  CHECK(canon && strstr(canon,
                        "{\"type\":\"batchnorm\",\"momentum\":0.99,\"epsilon\":0.001,"
                        "\"center\":true,\"scale\":true},{\"type\":\"activation\","
                        "\"activation\":\"relu\"},{\"type\":\"globalavgpool\"}"));
  CHECK(canon && strstr(canon,
                        "{\"type\":\"batchnorm\",\"momentum\":0.9,\"epsilon\":1e-5,"
                        "\"center\":false,\"scale\":true}"));
  cnn_net *again = canon ? build(canon, err) : NULL;
  if (CHECK(again != NULL)) {
    char *canon2 = cnn_spec_to_json(cnn_net_spec(again));
    CHECK_STR(canon2, canon);
    cnn_free(canon2);
    cnn_net_free(again);
  }
  /* A moving variance read from outside must not be negative. */
  CHECK(cnn_net_check_weights(net, err) == CNN_OK);
  cnn_net_params(net)[490] = -1;
  CHECK(cnn_net_check_weights(net, err) == CNN_ERROR);
  CHECK_STR(err, "tensor batch_normalization/moving_variance must not be negative; index 8 is -1");
  cnn_free(canon);
  cnn_net_free(net);
}

int main(void) {
  char err[CNN_ERRMAX];
  /* The notebook's model (spec NULL): Keras' summary, row by row. */
  static const int notebook[][4] = {{26, 26, 32, 320},     {13, 13, 32, 0},   {11, 11, 64, 18496},
                                    {5, 5, 64, 0},         {3, 3, 64, 36928}, {1, 1, 576, 0},
                                    {1, 1, 5000, 2885000}, {1, 1, 10, 50010}};
  shapes(cnn_spec_notebook, 8, notebook, 2990754);
  cnn_net *net = build(NULL, err);
  if (CHECK(net != NULL)) {
    const char *names[] = {"conv2d",   "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                           "conv2d_2", "flatten",       "dense",    "dense_1"};
    for (int i = 0; i < 8; i++) CHECK_STR(cnn_net_layer(net, i).name, names[i]);
    CHECK_STR(cnn_net_layer(net, 0).type, "Conv2D");
    CHECK_STR(cnn_net_layer(net, 1).type, "MaxPooling2D");
    CHECK_EQ_INT(cnn_net_tensors(net), 10);
    CHECK_STR(cnn_net_tensor(net, 0).name, "conv2d/kernel");
    CHECK_EQ_INT(cnn_net_tensor(net, 0).dims[3], 32);
    CHECK_STR(cnn_net_tensor(net, 9).name, "dense_1/bias");
    CHECK_EQ_INT(cnn_net_tensor(net, 9).offset, 2990744);
    /* Glorot-uniform kernels within their limit, zero biases. */
    cnn_net_init(net, 1);
    const float *p = cnn_net_params(net);
    cnn_tensor_info k = cnn_net_tensor(net, 6); /* dense/kernel 576 x 5000 */
    double limit = sqrt(6.0 / (576 + 5000)), mx = 0;
    for (size_t i = 0; i < k.count; i++) mx = fmax(mx, fabs(p[k.offset + i]));
    CHECK(mx <= limit && mx > 0.99 * limit);
    CHECK(p[cnn_net_tensor(net, 7).offset] == 0);
    char *json = cnn_spec_to_json(cnn_net_spec(net));
    CHECK_STR(
        json,
        "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":32,\"kernel\":[3,3],"
        "\"strides\":[1,1],\"padding\":\"valid\",\"activation\":\"relu\",\"use_bias\":true,"
        "\"kernel_initializer\":\"glorot_uniform\"},{\"type\":\"maxpool\",\"size\":[2,2],"
        "\"strides\":[2,2],\"padding\":\"valid\"},{\"type\":\"conv2d\",\"filters\":64,"
        "\"kernel\":[3,3],\"strides\":[1,1],\"padding\":\"valid\",\"activation\":\"relu\","
        "\"use_bias\":true,\"kernel_initializer\":\"glorot_uniform\"},{\"type\":\"maxpool\","
        "\"size\":[2,2],\"strides\":[2,2],\"padding\":\"valid\"},{\"type\":\"conv2d\","
        "\"filters\":64,\"kernel\":[3,3],\"strides\":[1,1],\"padding\":\"valid\","
        "\"activation\":\"relu\",\"use_bias\":true,\"kernel_initializer\":\"glorot_uniform\"},"
        "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":5000,\"activation\":\"relu\","
        "\"use_bias\":true,\"kernel_initializer\":\"glorot_uniform\"},{\"type\":\"dense\","
        "\"units\":10,\"activation\":\"linear\",\"use_bias\":true,"
        "\"kernel_initializer\":\"glorot_uniform\"}]}");
    /* The canonical form reads back to the same canonical form. */
    cnn_net *again = build(json, err);
    if (CHECK(again != NULL)) {
      char *json2 = cnn_spec_to_json(cnn_net_spec(again));
      CHECK_STR(json2, json);
      cnn_free(json2);
      cnn_net_free(again);
    }
    cnn_free(json);
    cnn_net_free(net);
  }

  /* 'same' padding everywhere keeps 28 -> 28 -> 14 -> 14 -> 7 -> 7. */
  static const int same[][4] = {{28, 28, 32, 320}, {14, 14, 32, 0},   {14, 14, 64, 18496},
                                {7, 7, 64, 0},     {7, 7, 64, 36928}, {1, 1, 3136, 0},
                                {1, 1, 10, 31370}};
  shapes(L("{\"type\":\"conv2d\",\"filters\":32,\"kernel\":3,\"padding\":\"same\"},"
           "{\"type\":\"maxpool\",\"size\":2,\"padding\":\"same\"},"
           "{\"type\":\"conv2d\",\"filters\":64,\"kernel\":3,\"padding\":\"same\"},"
           "{\"type\":\"maxpool\",\"size\":2},"
           "{\"type\":\"conv2d\",\"filters\":64,\"kernel\":3,\"padding\":\"same\"},"
           "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}"),
         7, same, 320 + 18496 + 36928 + 31370);
  /* Strides: valid 28 -> (28-3)/2+1 = 13, same ceil(13/2) = 7, pool 3/2 same on 7 -> 4,
   * non-square kernel [5,3] valid on 4x4 -> fails, so [3,1] -> 2x4. */
  static const int strided[][4] = {{13, 13, 8, 80}, {7, 7, 16, 1168}, {4, 4, 16, 0},
                                   {2, 4, 4, 196},  {1, 1, 32, 0},    {1, 1, 10, 330}};
  shapes(L("{\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"strides\":2},"
           "{\"type\":\"conv2d\",\"filters\":16,\"kernel\":3,\"strides\":2,\"padding\":\"same\"},"
           "{\"type\":\"maxpool\",\"size\":3,\"strides\":2,\"padding\":\"same\"},"
           "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":[3,1]},"
           "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}"),
         6, strided, 80 + 1168 + 196 + 330);

  refused("{\"layers\":[", "spec is not valid JSON: at offset 11: expected a value or ']'");
  refused("[]", "spec must be a JSON object, got array");
  refused("{\"input\":[28,28,1]}", "spec needs \"layers\": a non-empty array");
  refused("{\"inputs\":[28,28,1],\"layers\":[]}",
          "unknown spec key \"inputs\" (expected \"input\" and \"layers\")");
  refused("{\"input\":[28,0],\"layers\":[{\"type\":\"flatten\"}]}",
          "input width must be an integer 1..4096, got 0");
  refused("{\"input\":[28,28,5],\"layers\":[{\"type\":\"flatten\"}]}",
          "input channels must be an integer 1..4, got 5");
  refused(L("{\"type\":\"conv3d\"}"),
          "layer 1: unknown type \"conv3d\" (conv2d, maxpool, avgpool, flatten, dense, dropout, "
          "batchnorm, globalavgpool, activation)");
  /* batchnorm, globalavgpool and activation: every bad option. */
  refused(L("{\"type\":\"batchnorm\",\"momentum\":1}"),
          "layer 1 (batchnorm): momentum must be a number in [0, 1), got 1");
  refused(L("{\"type\":\"batchnorm\",\"momentum\":-0.5}"),
          "layer 1 (batchnorm): momentum must be a number in [0, 1), got -0.5");
  refused(L("{\"type\":\"batchnorm\",\"momentum\":\"0.9\"}"),
          "layer 1 (batchnorm): momentum must be a number in [0, 1), got \"0.9\"");
  refused(L("{\"type\":\"batchnorm\",\"epsilon\":0}"),
          "layer 1 (batchnorm): epsilon must be a number in [1e-12, 1e6], got 0");
  refused(L("{\"type\":\"batchnorm\",\"epsilon\":null}"),
          "layer 1 (batchnorm): epsilon must be a number in [1e-12, 1e6], got null");
  refused(L("{\"type\":\"batchnorm\",\"center\":1}"),
          "layer 1 (batchnorm): center must be true or false, got 1");
  refused(L("{\"type\":\"batchnorm\",\"scale\":\"yes\"}"),
          "layer 1 (batchnorm): scale must be true or false, got \"yes\"");
  refused(L("{\"type\":\"batchnorm\",\"axis\":-1}"), "layer 1 (batchnorm): unknown key \"axis\"");
  refused(L("{\"type\":\"globalavgpool\",\"keepdims\":true}"),
          "layer 1 (globalavgpool): unknown key \"keepdims\"");
  refused(L("{\"type\":\"activation\"}"), "layer 1 (activation): needs \"activation\"");
  refused(L("{\"type\":\"activation\",\"activation\":\"relu7\"}"),
          "layer 1 (activation): unknown activation \"relu7\" (linear, relu, sigmoid, tanh, "
          "softmax, leaky_relu, elu, selu, gelu, swish, softplus, softsign, hard_sigmoid, "
          "exponential, or {\"expr\": ...})");
  refused(L("{\"type\":\"activation\",\"activation\":\"relu\",\"units\":3}"),
          "layer 1 (activation): unknown key \"units\"");
  refused(L("{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":0}"),
          "layer 2 (dense): units must be an integer 1..65536, got 0");
  refused(L("{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10.5}"),
          "layer 2 (dense): units must be an integer 1..65536, got 10.5");
  refused(L("{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":\"10\"}"),
          "layer 2 (dense): units must be an integer 1..65536, got string");
  refused(L("{\"type\":\"dense\",\"units\":10,\"filters\":3}"),
          "layer 1 (dense): unknown key \"filters\"");
  refused(L("{\"type\":\"conv2d\",\"filters\":3}"), "layer 1 (conv2d): needs \"kernel\"");
  refused(L("{\"type\":\"conv2d\",\"filters\":3,\"kernel\":3,\"padding\":\"full\"}"),
          "layer 1 (conv2d): padding must be \"valid\" or \"same\", got \"full\"");
  refused(L("{\"type\":\"dense\",\"units\":10,\"activation\":\"relu6x\"}"),
          "layer 1 (dense): unknown activation \"relu6x\" (linear, relu, sigmoid, tanh, softmax, "
          "leaky_relu, elu, selu, gelu, swish, softplus, softsign, hard_sigmoid, exponential, or "
          "{\"expr\": ...})");
  refused(L("{\"type\":\"dropout\",\"rate\":1}"),
          "layer 1 (dropout): rate must be a number in [0, 1), got 1");
  refused(L("{\"type\":\"conv2d\",\"filters\":3,\"kernel\":[3,3,3]}"),
          "layer 1 (conv2d): kernel must be a number or [height, width], got an array of 3");
  /* Shapes that shrink below 1 name the layer (Keras-style name). */
  refused(L("{\"type\":\"conv2d\",\"filters\":4,\"kernel\":5,\"strides\":5},"
            "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":5,\"strides\":5},"
            "{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3}"),
          "layer 3 (conv2d_2): kernel 3x3 does not fit the 1x1 input with 'valid' padding");
  refused(
      L("{\"type\":\"maxpool\",\"size\":30}"),
      "layer 1 (max_pooling2d): pool size 30x30 does not fit the 28x28 input with 'valid' padding");
  refused(
      "{\"input\":[4096,4096,1],\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":"
      "65536}]}",
      "layer 2 (dense): the model would have more than 200000000 parameters");
  refused(L("{\"type\":\"conv2d\",\"filters\":4,\"kernel\":3}"),
          "the last layer must give a vector of at least 2 class scores (a dense layer); it gives "
          "(26, 26, 4)");
  refused(L("{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":1}"),
          "the last layer must give a vector of at least 2 class scores (a dense layer); it gives "
          "(1, 1, 1)");
  refused(L("{\"type\":\"dense\",\"units\":4,\"activation\":{\"expr\":\"x*\"}}"),
          "layer 1 (dense): activation formula \"x*\": at character 3 (end of formula): expected a "
          "number, x, a function or '('");
  test_batchnorm_net();
  return check_done();
}
