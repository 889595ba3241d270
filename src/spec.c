/*
 * spec.c - model specs: the JSON of SPEC.md parsed into a cnn_spec, every
 * value checked (type, range, unknown keys), and written back as canonical
 * JSON with all defaults explicit (what the database stores).
 *
 * Shapes are not checked here but by cnn_net_new, which knows each layer's
 * geometry; both name the layer the same way: "layer 3 (dense): ...".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cnn.h"
#include "expr.h"
#include "json.h"

const char cnn_spec_notebook[] =
    "{\"input\":[28,28,1],\"layers\":["
    "{\"type\":\"conv2d\",\"filters\":32,\"kernel\":3,\"activation\":\"relu\"},"
    "{\"type\":\"maxpool\",\"size\":2},"
    "{\"type\":\"conv2d\",\"filters\":64,\"kernel\":3,\"activation\":\"relu\"},"
    "{\"type\":\"maxpool\",\"size\":2},"
    "{\"type\":\"conv2d\",\"filters\":64,\"kernel\":3,\"activation\":\"relu\"},"
    "{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":5000,\"activation\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":10}]}";

static const struct {
  const char *name;
  cnn_act_kind kind;
  float alpha;
} act_table[] = {
    {"linear", CNN_ACT_LINEAR, 0},
    {"relu", CNN_ACT_RELU, 0},
    {"sigmoid", CNN_ACT_SIGMOID, 0},
    {"tanh", CNN_ACT_TANH, 0},
    {"softmax", CNN_ACT_SOFTMAX, 0},
    {"leaky_relu", CNN_ACT_LEAKY_RELU, 0.2f},
    {"elu", CNN_ACT_ELU, 1.0f},
    {"selu", CNN_ACT_SELU, 0},
    {"gelu", CNN_ACT_GELU, 0},
    {"swish", CNN_ACT_SWISH, 0},
    {"silu", CNN_ACT_SWISH, 0},
    {"softplus", CNN_ACT_SOFTPLUS, 0},
    {"softsign", CNN_ACT_SOFTSIGN, 0},
    {"hard_sigmoid", CNN_ACT_HARD_SIGMOID, 0},
    {"exponential", CNN_ACT_EXPONENTIAL, 0},
};

static const char *const init_names[] = {
    [CNN_INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [CNN_INIT_GLOROT_NORMAL] = "glorot_normal",
    [CNN_INIT_HE_UNIFORM] = "he_uniform",
    [CNN_INIT_HE_NORMAL] = "he_normal",
    [CNN_INIT_LECUN_UNIFORM] = "lecun_uniform",
    [CNN_INIT_LECUN_NORMAL] = "lecun_normal",
    [CNN_INIT_ZEROS] = "zeros",
};

static const struct {
  const char *name;
  cnn_layer_type type;
} type_table[] = {
    {"conv2d", CNN_LAYER_CONV2D},
    {"maxpool", CNN_LAYER_MAXPOOL},
    {"maxpool2d", CNN_LAYER_MAXPOOL},
    {"max_pooling2d", CNN_LAYER_MAXPOOL},
    {"avgpool", CNN_LAYER_AVGPOOL},
    {"avgpool2d", CNN_LAYER_AVGPOOL},
    {"average_pooling2d", CNN_LAYER_AVGPOOL},
    {"flatten", CNN_LAYER_FLATTEN},
    {"dense", CNN_LAYER_DENSE},
    {"dropout", CNN_LAYER_DROPOUT},
    {"batchnorm", CNN_LAYER_BATCHNORM},
    {"batch_normalization", CNN_LAYER_BATCHNORM},
    {"globalavgpool", CNN_LAYER_GLOBALAVGPOOL},
    {"global_average_pooling2d", CNN_LAYER_GLOBALAVGPOOL},
    {"activation", CNN_LAYER_ACTIVATION},
};

static const char *const type_names[] = {
    [CNN_LAYER_CONV2D] = "conv2d",         [CNN_LAYER_MAXPOOL] = "maxpool",
    [CNN_LAYER_AVGPOOL] = "avgpool",       [CNN_LAYER_FLATTEN] = "flatten",
    [CNN_LAYER_DENSE] = "dense",           [CNN_LAYER_DROPOUT] = "dropout",
    [CNN_LAYER_BATCHNORM] = "batchnorm",   [CNN_LAYER_GLOBALAVGPOOL] = "globalavgpool",
    [CNN_LAYER_ACTIVATION] = "activation",
};

/* Keys each layer type accepts ("type" always). */
static const char *const keys_conv[] = {
    "filters", "kernel", "strides", "padding", "activation", "use_bias", "kernel_initializer",
    NULL};
static const char *const keys_pool[] = {"size", "strides", "padding", NULL};
static const char *const keys_dense[] = {"units", "activation", "use_bias", "kernel_initializer",
                                         NULL};
static const char *const keys_dropout[] = {"rate", NULL};
static const char *const keys_batchnorm[] = {"momentum", "epsilon", "center", "scale", NULL};
static const char *const keys_activation[] = {"activation", NULL};
static const char *const keys_none[] = {NULL};

static const char *const *keys_of(cnn_layer_type t) {
  switch (t) {
  case CNN_LAYER_CONV2D:
    return keys_conv;
  case CNN_LAYER_MAXPOOL:
  case CNN_LAYER_AVGPOOL:
    return keys_pool;
  case CNN_LAYER_DENSE:
    return keys_dense;
  case CNN_LAYER_DROPOUT:
    return keys_dropout;
  case CNN_LAYER_BATCHNORM:
    return keys_batchnorm;
  case CNN_LAYER_ACTIVATION:
    return keys_activation;
  default:
    return keys_none;
  }
}

/* Message prefix for layer i (0-based) or the top level (i < 0). */
typedef struct {
  char where[64];
} ctx_t;

static int fail(char *err, const ctx_t *c, const char *msg) {
  return cnn_error(err, CNN_ERROR, "%s%s", c->where, msg);
}

static int get_int(const cnn_json *v, const ctx_t *c, const char *key, int lo, int hi, int *out,
                   char *err) {
  char msg[160];
  if (v->type != CNN_JSON_NUMBER || v->number != floor(v->number) || v->number < lo ||
      v->number > hi) {
    if (v->type == CNN_JSON_NUMBER)
      snprintf(msg, sizeof msg, "%s must be an integer %d..%d, got %g", key, lo, hi, v->number);
    else
      snprintf(msg, sizeof msg, "%s must be an integer %d..%d, got %s", key, lo, hi,
               cnn_json_type_name(v->type));
    return fail(err, c, msg);
  }
  *out = (int)v->number;
  return CNN_OK;
}

/* n or [h, w] */
static int get_pair(const cnn_json *v, const ctx_t *c, const char *key, int lo, int hi, int *h,
                    int *w, char *err) {
  char msg[160];
  if (v->type == CNN_JSON_ARRAY) {
    if (v->count != 2) {
      snprintf(msg, sizeof msg, "%s must be a number or [height, width], got an array of %zu", key,
               v->count);
      return fail(err, c, msg);
    }
    int rc = get_int(&v->items[0], c, key, lo, hi, h, err);
    return rc ? rc : get_int(&v->items[1], c, key, lo, hi, w, err);
  }
  int rc = get_int(v, c, key, lo, hi, h, err);
  *w = *h;
  return rc;
}

static int get_bool(const cnn_json *v, const ctx_t *c, const char *key, int *out, char *err) {
  char msg[160], got[64];
  if (v->type != CNN_JSON_TRUE && v->type != CNN_JSON_FALSE) {
    snprintf(msg, sizeof msg, "%s must be true or false, got %s", key,
             cnn_json_describe(v, got, sizeof got));
    return fail(err, c, msg);
  }
  *out = v->type == CNN_JSON_TRUE;
  return CNN_OK;
}

static int parse_act(cnn_act *a, const cnn_json *v, const ctx_t *c, char *err) {
  char msg[CNN_ERRMAX];
  const char *name = NULL;
  const cnn_json *alpha = NULL;
  if (v->type == CNN_JSON_STRING) {
    name = v->string;
  } else if (v->type == CNN_JSON_OBJECT) {
    const cnn_json *e = cnn_json_get(v, "expr");
    for (size_t i = 0; i < v->count; i++) {
      const char *k = v->keys[i];
      if (strcmp(k, "expr") && strcmp(k, "name") && strcmp(k, "alpha")) {
        snprintf(msg, sizeof msg,
                 "unknown activation key \"%s\" (expected \"expr\", or \"name\" and \"alpha\")", k);
        return fail(err, c, msg);
      }
    }
    if (e) {
      if (v->count != 1 || e->type != CNN_JSON_STRING)
        return fail(err, c, "a custom activation is {\"expr\": \"<formula in x>\"}");
      char e_err[CNN_ERRMAX];
      int rc = cnn_expr_compile(&a->expr, e->string, e_err);
      if (rc == CNN_NOMEM) return cnn_nomem(err);
      if (rc) {
        snprintf(msg, sizeof msg, "activation formula \"%.60s\": %.150s", e->string, e_err);
        return fail(err, c, msg);
      }
      a->kind = CNN_ACT_EXPR;
      return CNN_OK;
    }
    const cnn_json *n = cnn_json_get(v, "name");
    if (!n || n->type != CNN_JSON_STRING)
      return fail(err, c, "activation object needs \"name\" (text) or \"expr\"");
    name = n->string;
    alpha = cnn_json_get(v, "alpha");
  } else {
    snprintf(msg, sizeof msg, "activation must be a name or {\"expr\": ...}, got %s",
             cnn_json_type_name(v->type));
    return fail(err, c, msg);
  }
  for (size_t i = 0; i < sizeof act_table / sizeof act_table[0]; i++) {
    if (strcmp(name, act_table[i].name)) continue;
    a->kind = act_table[i].kind;
    a->alpha = act_table[i].alpha;
    if (alpha) {
      if (a->kind != CNN_ACT_LEAKY_RELU && a->kind != CNN_ACT_ELU)
        return fail(err, c, "only leaky_relu and elu take \"alpha\"");
      if (alpha->type != CNN_JSON_NUMBER || !(alpha->number >= 0 && alpha->number <= 100)) {
        char got[64];
        snprintf(msg, sizeof msg, "activation alpha must be a number 0..100, got %s",
                 cnn_json_describe(alpha, got, sizeof got));
        return fail(err, c, msg);
      }
      a->alpha = (float)alpha->number;
    }
    return CNN_OK;
  }
  snprintf(msg, sizeof msg,
           "unknown activation \"%.40s\" (linear, relu, sigmoid, tanh, softmax, leaky_relu, elu, "
           "selu, gelu, swish, softplus, softsign, hard_sigmoid, exponential, or {\"expr\": ...})",
           name);
  return fail(err, c, msg);
}

static int parse_layer(cnn_layer_spec *l, const cnn_json *v, int index, char *err) {
  ctx_t c;
  char msg[CNN_ERRMAX], got[64];
  snprintf(c.where, sizeof c.where, "layer %d: ", index + 1);
  if (v->type != CNN_JSON_OBJECT) {
    snprintf(msg, sizeof msg, "must be an object, got %s", cnn_json_type_name(v->type));
    return fail(err, &c, msg);
  }
  const cnn_json *t = cnn_json_get(v, "type");
  if (!t || t->type != CNN_JSON_STRING) return fail(err, &c, "needs \"type\" (text)");
  size_t k = 0, nt = sizeof type_table / sizeof type_table[0];
  while (k < nt && strcmp(t->string, type_table[k].name)) k++;
  if (k == nt) {
    snprintf(msg, sizeof msg,
             "unknown type \"%.40s\" (conv2d, maxpool, avgpool, flatten, dense, dropout, "
             "batchnorm, globalavgpool, activation)",
             t->string);
    return fail(err, &c, msg);
  }
  *l = (cnn_layer_spec){.type = type_table[k].type,
                        .use_bias = 1,
                        .momentum = 0.99f,
                        .epsilon = 0.001f,
                        .center = 1,
                        .scale = 1};
  snprintf(c.where, sizeof c.where, "layer %d (%s): ", index + 1, type_names[l->type]);

  const char *const *keys = keys_of(l->type);
  for (size_t i = 0; i < v->count; i++) {
    if (!strcmp(v->keys[i], "type")) continue;
    size_t j = 0;
    while (keys[j] && strcmp(keys[j], v->keys[i])) j++;
    if (!keys[j]) {
      snprintf(msg, sizeof msg, "unknown key \"%.40s\"", v->keys[i]);
      return fail(err, &c, msg);
    }
  }

  const cnn_json *x;
  int rc = CNN_OK;
  switch (l->type) {
  case CNN_LAYER_CONV2D:
    if (!(x = cnn_json_get(v, "filters"))) return fail(err, &c, "needs \"filters\"");
    if ((rc = get_int(x, &c, "filters", 1, CNN_SPEC_MAX_WIDTH, &l->filters, err))) return rc;
    if (!(x = cnn_json_get(v, "kernel"))) return fail(err, &c, "needs \"kernel\"");
    if ((rc = get_pair(x, &c, "kernel", 1, CNN_SPEC_MAX_KERNEL, &l->kh, &l->kw, err))) return rc;
    l->sh = l->sw = 1;
    break;
  case CNN_LAYER_MAXPOOL:
  case CNN_LAYER_AVGPOOL:
    l->kh = l->kw = 2;
    if ((x = cnn_json_get(v, "size")) &&
        (rc = get_pair(x, &c, "size", 1, CNN_SPEC_MAX_KERNEL, &l->kh, &l->kw, err)))
      return rc;
    l->sh = l->kh, l->sw = l->kw; /* Keras: strides default to the pool size */
    break;
  case CNN_LAYER_DENSE:
    if (!(x = cnn_json_get(v, "units"))) return fail(err, &c, "needs \"units\"");
    if ((rc = get_int(x, &c, "units", 1, CNN_SPEC_MAX_WIDTH, &l->units, err))) return rc;
    break;
  case CNN_LAYER_DROPOUT:
    if (!(x = cnn_json_get(v, "rate"))) return fail(err, &c, "needs \"rate\"");
    if (x->type != CNN_JSON_NUMBER || !(x->number >= 0 && x->number < 1)) {
      snprintf(msg, sizeof msg, "rate must be a number in [0, 1), got %s",
               cnn_json_describe(x, got, sizeof got));
      return fail(err, &c, msg);
    }
    l->rate = (float)x->number;
    break;
  case CNN_LAYER_BATCHNORM:
    /* Keras' defaults; a momentum of 1 would freeze the moving statistics
     * at their start, which no one means. */
    if ((x = cnn_json_get(v, "momentum")) &&
        (x->type != CNN_JSON_NUMBER || !(x->number >= 0 && x->number < 1))) {
      snprintf(msg, sizeof msg, "momentum must be a number in [0, 1), got %s",
               cnn_json_describe(x, got, sizeof got));
      return fail(err, &c, msg);
    }
    if (x) l->momentum = (float)x->number;
    /* Capped so that var + epsilon stays an ordinary float. */
    if ((x = cnn_json_get(v, "epsilon")) &&
        (x->type != CNN_JSON_NUMBER || !(x->number >= 1e-12 && x->number <= 1e6))) {
      snprintf(msg, sizeof msg, "epsilon must be a number in [1e-12, 1e6], got %s",
               cnn_json_describe(x, got, sizeof got));
      return fail(err, &c, msg);
    }
    if (x) l->epsilon = (float)x->number;
    if ((x = cnn_json_get(v, "center")) && (rc = get_bool(x, &c, "center", &l->center, err)))
      return rc;
    if ((x = cnn_json_get(v, "scale")) && (rc = get_bool(x, &c, "scale", &l->scale, err)))
      return rc;
    break;
  case CNN_LAYER_ACTIVATION:
    if (!cnn_json_get(v, "activation")) return fail(err, &c, "needs \"activation\"");
    break;
  case CNN_LAYER_FLATTEN:
  case CNN_LAYER_GLOBALAVGPOOL:
    break;
  }
  if ((x = cnn_json_get(v, "strides")) &&
      (rc = get_pair(x, &c, "strides", 1, CNN_SPEC_MAX_KERNEL, &l->sh, &l->sw, err)))
    return rc;
  if ((x = cnn_json_get(v, "padding"))) {
    if (x->type == CNN_JSON_STRING && !strcmp(x->string, "valid"))
      l->padding = CNN_PAD_VALID;
    else if (x->type == CNN_JSON_STRING && !strcmp(x->string, "same"))
      l->padding = CNN_PAD_SAME;
    else {
      snprintf(msg, sizeof msg, "padding must be \"valid\" or \"same\", got %s",
               cnn_json_describe(x, got, sizeof got));
      return fail(err, &c, msg);
    }
  }
  if ((x = cnn_json_get(v, "use_bias")) && (rc = get_bool(x, &c, "use_bias", &l->use_bias, err)))
    return rc;
  if ((x = cnn_json_get(v, "kernel_initializer"))) {
    size_t i = 0, ni = sizeof init_names / sizeof init_names[0];
    while (i < ni && !(x->type == CNN_JSON_STRING && !strcmp(x->string, init_names[i]))) i++;
    if (i == ni) {
      snprintf(msg, sizeof msg,
               "kernel_initializer must be one of glorot_uniform, glorot_normal, he_uniform, "
               "he_normal, lecun_uniform, lecun_normal, zeros; got %s",
               cnn_json_describe(x, got, sizeof got));
      return fail(err, &c, msg);
    }
    l->init = (cnn_init_kind)i;
  }
  if ((x = cnn_json_get(v, "activation"))) return parse_act(&l->act, x, &c, err);
  return CNN_OK;
}

int cnn_spec_parse(cnn_spec *spec, const char *json, char *err) {
  cnn_json *root = NULL;
  char jerr[CNN_ERRMAX];
  ctx_t top = {""};
  memset(spec, 0, sizeof *spec);
  if (!json) json = cnn_spec_notebook;
  int rc = cnn_json_parse(&root, json, strlen(json), jerr);
  if (rc == CNN_NOMEM) return cnn_nomem(err);
  if (rc) return cnn_error(err, CNN_ERROR, "spec is not valid JSON: %s", jerr);
  if (root->type != CNN_JSON_OBJECT) {
    rc = cnn_error(err, CNN_ERROR, "spec must be a JSON object, got %s",
                   cnn_json_type_name(root->type));
    goto done;
  }
  for (size_t i = 0; i < root->count; i++) {
    if (strcmp(root->keys[i], "input") && strcmp(root->keys[i], "layers")) {
      rc = cnn_error(err, CNN_ERROR,
                     "unknown spec key \"%.40s\" (expected \"input\" and \"layers\")",
                     root->keys[i]);
      goto done;
    }
  }
  const cnn_json *in = cnn_json_get(root, "input");
  spec->h = spec->w = 28, spec->c = 1;
  if (in) {
    if (in->type != CNN_JSON_ARRAY || in->count < 2 || in->count > 3) {
      char msg[160];
      if (in->type == CNN_JSON_ARRAY)
        snprintf(msg, sizeof msg,
                 "input must be [height, width] or [height, width, channels], got an array of %zu",
                 in->count);
      else
        snprintf(msg, sizeof msg,
                 "input must be [height, width] or [height, width, channels], got %s",
                 cnn_json_type_name(in->type));
      rc = fail(err, &top, msg);
      goto done;
    }
    if ((rc = get_int(&in->items[0], &top, "input height", 1, CNN_SPEC_MAX_SIDE, &spec->h, err)) ||
        (rc = get_int(&in->items[1], &top, "input width", 1, CNN_SPEC_MAX_SIDE, &spec->w, err)))
      goto done;
    if (in->count == 3 && (rc = get_int(&in->items[2], &top, "input channels", 1,
                                        CNN_SPEC_MAX_CHANNELS, &spec->c, err)))
      goto done;
  }
  const cnn_json *layers = cnn_json_get(root, "layers");
  if (!layers || layers->type != CNN_JSON_ARRAY || layers->count == 0) {
    rc = fail(err, &top, "spec needs \"layers\": a non-empty array");
    goto done;
  }
  if (layers->count > CNN_SPEC_MAX_LAYERS) {
    rc = cnn_error(err, CNN_ERROR, "spec has %zu layers; the limit is %d", layers->count,
                   CNN_SPEC_MAX_LAYERS);
    goto done;
  }
  spec->layers = cnn_calloc(layers->count, sizeof *spec->layers);
  if (!spec->layers) {
    rc = cnn_nomem(err);
    goto done;
  }
  for (size_t i = 0; i < layers->count; i++) {
    spec->nlayers = (int)i + 1; /* so cnn_spec_clear frees what this layer compiled */
    if ((rc = parse_layer(&spec->layers[i], &layers->items[i], (int)i, err))) goto done;
  }
done:
  cnn_json_free(root);
  if (rc) cnn_spec_clear(spec);
  return rc;
}

void cnn_spec_clear(cnn_spec *spec) {
  for (int i = 0; spec->layers && i < spec->nlayers; i++) cnn_expr_free(spec->layers[i].act.expr);
  cnn_free(spec->layers);
  memset(spec, 0, sizeof *spec);
}

static void write_act(cnn_buf *b, const cnn_act *a) {
  size_t i = 0;
  if (a->kind == CNN_ACT_EXPR) {
    cnn_buf_puts(b, "{\"expr\":");
    cnn_buf_json_string(b, cnn_expr_source(a->expr));
    cnn_buf_puts(b, "}");
    return;
  }
  while (act_table[i].kind != a->kind) i++;
  if ((a->kind == CNN_ACT_LEAKY_RELU || a->kind == CNN_ACT_ELU) && a->alpha != act_table[i].alpha) {
    cnn_buf_printf(b, "{\"name\":\"%s\",\"alpha\":", act_table[i].name);
    cnn_buf_json_number(b, a->alpha);
    cnn_buf_puts(b, "}");
    return;
  }
  cnn_buf_json_string(b, act_table[i].name);
}

char *cnn_spec_to_json(const cnn_spec *spec) {
  cnn_buf b = {0};
  cnn_buf_printf(&b, "{\"input\":[%d,%d,%d],\"layers\":[", spec->h, spec->w, spec->c);
  for (int i = 0; i < spec->nlayers; i++) {
    const cnn_layer_spec *l = &spec->layers[i];
    cnn_buf_printf(&b, "%s{\"type\":\"%s\"", i ? "," : "", type_names[l->type]);
    switch (l->type) {
    case CNN_LAYER_CONV2D:
      cnn_buf_printf(&b, ",\"filters\":%d,\"kernel\":[%d,%d]", l->filters, l->kh, l->kw);
      break;
    case CNN_LAYER_MAXPOOL:
    case CNN_LAYER_AVGPOOL:
      cnn_buf_printf(&b, ",\"size\":[%d,%d]", l->kh, l->kw);
      break;
    case CNN_LAYER_DENSE:
      cnn_buf_printf(&b, ",\"units\":%d", l->units);
      break;
    case CNN_LAYER_DROPOUT:
      cnn_buf_puts(&b, ",\"rate\":");
      cnn_buf_json_number(&b, l->rate);
      break;
    case CNN_LAYER_BATCHNORM:
      cnn_buf_puts(&b, ",\"momentum\":");
      cnn_buf_json_number(&b, l->momentum);
      cnn_buf_puts(&b, ",\"epsilon\":");
      cnn_buf_json_number(&b, l->epsilon);
      cnn_buf_printf(&b, ",\"center\":%s,\"scale\":%s", l->center ? "true" : "false",
                     l->scale ? "true" : "false");
      break;
    case CNN_LAYER_ACTIVATION:
      cnn_buf_puts(&b, ",\"activation\":");
      write_act(&b, &l->act);
      break;
    case CNN_LAYER_FLATTEN:
    case CNN_LAYER_GLOBALAVGPOOL:
      break;
    }
    if (l->type == CNN_LAYER_CONV2D || l->type == CNN_LAYER_MAXPOOL || l->type == CNN_LAYER_AVGPOOL)
      cnn_buf_printf(&b, ",\"strides\":[%d,%d],\"padding\":\"%s\"", l->sh, l->sw,
                     l->padding == CNN_PAD_SAME ? "same" : "valid");
    if (l->type == CNN_LAYER_CONV2D || l->type == CNN_LAYER_DENSE) {
      cnn_buf_puts(&b, ",\"activation\":");
      write_act(&b, &l->act);
      cnn_buf_printf(&b, ",\"use_bias\":%s,\"kernel_initializer\":\"%s\"",
                     l->use_bias ? "true" : "false", init_names[l->init]);
    }
    cnn_buf_puts(&b, "}");
  }
  cnn_buf_puts(&b, "]}");
  return cnn_buf_finish(&b);
}
