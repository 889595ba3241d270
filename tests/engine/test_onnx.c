/*
 * test_onnx.c - the ONNX export's bytes, read back with protobuf-c: the
 * model's framing (IR version, opset, input and outputs), the operators in
 * order with their windows (Keras' 'same' padding with the odd pixel after),
 * every weight at its place in ONNX's layouts (a conv kernel transposed to
 * (OC, IC, KH, KW)), a custom formula as one operator per step, the error for
 * an activation without an ONNX form, and out of memory at every allocation
 * of the export (CNN_NOMEM, nothing leaked, then the same bytes). The numbers
 * the graph computes are checked by tests/python/test_onnx.py.
 */
#include <stdlib.h>

#include "check.h"
#include "cnn.h"
#include "onnx.h"
#include "onnx.pb-c.h"

static const char *spec_json =
    "{\"input\":[28,28,1],\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":3,\"kernel\":4,\"padding\":\"same\","
    "\"activation\":{\"expr\":\"max(x, 0.1*x) + x^2\"}},"
    "{\"type\":\"maxpool\",\"size\":3,\"strides\":2,\"padding\":\"same\"},"
    "{\"type\":\"batchnorm\",\"epsilon\":0.01},"
    "{\"type\":\"dropout\",\"rate\":0.5},"
    "{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":4,\"activation\":\"gelu\"}]}";

/* The ops of the graph, space-separated. */
static void op_list(const Onnx__GraphProto *g, char *out, size_t cap) {
  out[0] = '\0';
  for (size_t i = 0; i < g->n_node; i++) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%s", i ? " " : "", g->node[i]->op_type);
  }
}

static const Onnx__NodeProto *find_node(const Onnx__GraphProto *g, const char *op) {
  for (size_t i = 0; i < g->n_node; i++)
    if (!strcmp(g->node[i]->op_type, op)) return g->node[i];
  return NULL;
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; n && i < n->n_attribute; i++)
    if (!strcmp(n->attribute[i]->name, name)) return n->attribute[i];
  return NULL;
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_initializer; i++)
    if (!strcmp(g->initializer[i]->name, name)) return g->initializer[i];
  return NULL;
}

static float raw_f32(const Onnx__TensorProto *t, size_t i) {
  const uint8_t *p = t->raw_data.data + 4 * i;
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static int ints_are(const Onnx__AttributeProto *a, const int64_t *v, size_t n) {
  if (!a || a->n_ints != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (a->ints[i] != v[i]) return 0;
  return 1;
}

static cnn_net *make_net(void) {
  cnn_spec spec;
  cnn_net *net = NULL;
  char err[CNN_ERRMAX];
  if (!CHECK(cnn_spec_parse(&spec, spec_json, err) == CNN_OK)) return NULL;
  if (!CHECK(cnn_net_new(&net, &spec, err) == CNN_OK)) return NULL;
  cnn_net_init(net, 5);
  /* Moving statistics other than 0 and 1, so their place shows. */
  float *p = cnn_net_params(net) + cnn_net_nparams(net);
  for (size_t i = 0; i < cnn_net_nstate(net); i++) p[i] = 0.25f + 0.125f * (float)i;
  return net;
}

static void test_graph(void) {
  cnn_net *net = make_net();
  uint8_t *blob = NULL;
  size_t len = 0;
  char err[CNN_ERRMAX] = "", ops[1024];
  if (!net) return;
  if (!CHECK(cnn_onnx_export(&blob, &len, net, "m", "9.9", err) == CNN_OK)) {
    fprintf(stderr, "%s\n", err);
    cnn_net_free(net);
    return;
  }
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, blob);
  if (!CHECK(m != NULL)) goto done;
  CHECK_EQ_INT(m->ir_version, 7);
  CHECK(m->n_opset_import == 1 && m->opset_import[0]->version == 13);
  CHECK_STR(m->producer_name, "sqlite-cnn");
  CHECK_STR(m->producer_version, "9.9");
  const Onnx__GraphProto *g = m->graph;
  CHECK_STR(g->name, "m");
  CHECK_CONTAINS(g->doc_string, "uint8 [N, 28, 28, 1]");
  CHECK_CONTAINS(g->doc_string, "/255");
  /* The input: uint8 [N, 28, 28, 1] with a symbolic batch. */
  if (CHECK(g->n_input == 1)) {
    const Onnx__TypeProto__Tensor *t = g->input[0]->type->tensor_type;
    CHECK_STR(g->input[0]->name, "image");
    CHECK_EQ_INT(t->elem_type, ONNX__TENSOR_PROTO__DATA_TYPE__UINT8);
    CHECK(t->shape->n_dim == 4 && !strcmp(t->shape->dim[0]->dim_param, "N") &&
          t->shape->dim[1]->dim_value == 28 && t->shape->dim[3]->dim_value == 1);
  }
  CHECK(g->n_output == 2 && !strcmp(g->output[0]->name, "probabilities") &&
        !strcmp(g->output[1]->name, "logits"));
  op_list(g, ops, sizeof ops);
  /* Scaling, NCHW, conv, the formula's 5 steps (0.1*x, max, x*x, +), pool,
   * batchnorm, back to NHWC to flatten (no dropout), dense, gelu, softmax. */
  CHECK_STR(ops,
            "Cast Div Transpose Conv Mul Max Mul Add MaxPool BatchNormalization "
            "Transpose Flatten Gemm Mul Erf Mul Add Mul Softmax Identity Identity");
  const int64_t conv_pads[4] = {1, 1, 2, 2}, pool_pads[4] = {0, 0, 1, 1};
  const int64_t to_nchw[4] = {0, 3, 1, 2}, to_nhwc[4] = {0, 2, 3, 1};
  CHECK(ints_are(find_attr(find_node(g, "Conv"), "pads"), conv_pads, 4));
  CHECK(ints_are(find_attr(find_node(g, "Conv"), "kernel_shape"), (const int64_t[]){4, 4}, 2));
  CHECK(ints_are(find_attr(find_node(g, "MaxPool"), "pads"), pool_pads, 4));
  CHECK(ints_are(find_attr(find_node(g, "MaxPool"), "strides"), (const int64_t[]){2, 2}, 2));
  CHECK(ints_are(find_attr(find_node(g, "Transpose"), "perm"), to_nchw, 4));
  CHECK(ints_are(find_attr(g->node[10], "perm"), to_nhwc, 4));
  const Onnx__AttributeProto *eps = find_attr(find_node(g, "BatchNormalization"), "epsilon");
  CHECK(eps && eps->f == 0.01f);
  /* Weights: every tensor of the network, in ONNX's layout. */
  const float *w = cnn_net_params(net);
  for (int i = 0; i < cnn_net_tensors(net); i++) {
    cnn_tensor_info info = cnn_net_tensor(net, i);
    const Onnx__TensorProto *t = find_init(g, info.name);
    if (!CHECK(t != NULL && t->raw_data.len == 4 * info.count)) continue;
    if (info.rank == 4) { /* (KH, KW, IC, OC) -> (OC, IC, KH, KW) */
      int kh = info.dims[0], kw = info.dims[1], ic = info.dims[2], oc = info.dims[3], bad = 0;
      CHECK(t->n_dims == 4 && t->dims[0] == oc && t->dims[1] == ic && t->dims[2] == kh &&
            t->dims[3] == kw);
      for (int y = 0; y < kh; y++)
        for (int x = 0; x < kw; x++)
          for (int c = 0; c < ic; c++)
            for (int o = 0; o < oc; o++)
              bad += raw_f32(t, (size_t)((o * ic + c) * kh + y) * kw + x) !=
                     w[info.offset + (size_t)((y * kw + x) * ic + c) * oc + o];
      CHECK_EQ_INT(bad, 0);
    } else {
      int bad = 0;
      for (size_t j = 0; j < info.count; j++) bad += raw_f32(t, j) != w[info.offset + j];
      CHECK_EQ_INT(bad, 0);
    }
  }
  onnx__model_proto__free_unpacked(m, NULL);
done:
  cnn_free(blob);
  cnn_net_free(net);
}

/* Every activation the engine has is expressible; one without an ONNX form
 * (an expression kind with no formula behind it) must be refused by name. */
static void test_refused(void) {
  cnn_net *net = make_net();
  uint8_t *blob = NULL;
  size_t len = 0;
  char err[CNN_ERRMAX] = "";
  if (!net) return;
  cnn_layer_spec *dense = &((cnn_spec *)cnn_net_spec(net))->layers[5];
  cnn_act saved = dense->act;
  dense->act = (cnn_act){CNN_ACT_EXPR, 0, NULL};
  CHECK_EQ_INT(cnn_onnx_export(&blob, &len, net, "m", "1", err), CNN_ERROR);
  CHECK_STR(err, "dense: activation 'expr' has no ONNX form");
  CHECK(blob == NULL && len == 0);
  dense->act = saved;
  cnn_net_free(net);
}

/* Allocation N of the export fails, for every N it makes. */
static void test_oom(void) {
  cnn_net *net = make_net();
  uint8_t *clean = NULL, *blob = NULL;
  size_t clean_len = 0, len = 0;
  char err[CNN_ERRMAX];
  int runs = 0;
  if (!net || !CHECK(cnn_onnx_export(&clean, &clean_len, net, "m", "1", err) == CNN_OK)) goto done;
  for (uint64_t n = 1;; n++) {
    cnn_alloc_fail_at(n);
    int rc = cnn_onnx_export(&blob, &len, net, "m", "1", err);
    uint64_t made = cnn_alloc_fail_at(0);
    if (made < n) { /* never reached allocation n: the clean result */
      CHECK(rc == CNN_OK && len == clean_len && !memcmp(blob, clean, len));
      cnn_free(blob);
      break;
    }
    runs++;
    if (!CHECK(rc == CNN_NOMEM && blob == NULL)) {
      fprintf(stderr, "allocation %llu: rc %d (%s)\n", (unsigned long long)n, rc, err);
      cnn_free(blob);
      break;
    }
    CHECK_STR(err, "out of memory");
  }
  CHECK(runs > 50);
  printf("out of memory at each of the export's %d allocations: refused cleanly\n", runs);
done:
  cnn_free(clean);
  cnn_net_free(net);
}

int main(void) {
  test_graph();
  test_refused();
  test_oom();
  return check_done();
}
