/*
 * model.c - a whole model (spec, weights, optimizer state) as one portable
 * little-endian blob, for cnn_export / cnn_import:
 *
 *   "CNNMODEL"  u32 version (1)
 *   u32 n, n bytes: spec JSON        u32 n, n bytes: optimizer JSON ("null":
 *                                     never trained, no optimizer state)
 *   i64 optimizer step               u32 completed epochs
 *   u32 tensors, each: u32 n, name; u32 rank; u32 dims[rank]; f32 values
 *   u32 slots, each: f32 state[parameters]  (the optimizer's arrays)
 *   u32 crc32 (zlib) of every byte before it
 *
 * Non-trainable weights (batchnorm's moving_mean and moving_variance) are
 * tensors like the others, in the network's tensor order (Keras' order of
 * get_weights), so the format and its version did not change when they came:
 * a blob of a model without them is what it always was, and every older blob
 * loads. The optimizer's arrays cover the trainable parameters only
 * (cnn_net_nparams), which is all an optimizer ever updates.
 *
 * The loader trusts nothing: the checksum first, then every length against
 * what is left and against caps, names and shapes against the network the spec
 * builds, and every float for NaN/Inf.
 */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "model.h"

#include "json.h"

#define MAGIC "CNNMODEL"
#define VERSION 1u
#define MAX_TEXT (1u << 20)

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct {
  uint8_t *p; /* borrowed cursor into the output */
} writer;

static void w_u32(writer *w, uint32_t v) { put_u32(w->p, v), w->p += 4; }
static void w_bytes(writer *w, const void *s, size_t n) { memcpy(w->p, s, n), w->p += n; }
static void w_floats(writer *w, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    w_u32(w, u);
  }
}

int cnn_model_save(uint8_t **out, size_t *len, const cnn_net *net, const cnn_optim *opt, int epochs,
                   char *err) {
  int rc = CNN_OK;
  char *spec = cnn_spec_to_json(cnn_net_spec(net));
  cnn_optim none = {0};
  if (!opt) opt = &none;
  char *ojs = opt->n ? cnn_optim_to_json(&opt->cfg) : NULL;
  if (!opt->n && (ojs = cnn_malloc(5))) memcpy(ojs, "null", 5);
  *out = NULL, *len = 0;
  if (!spec || !ojs) {
    rc = cnn_nomem(err);
    goto done;
  }
  size_t np = cnn_net_nparams(net), n = 8 + 4 + 4 + strlen(spec) + 4 + strlen(ojs) + 8 + 4 + 4;
  for (int i = 0; i < cnn_net_tensors(net); i++) {
    cnn_tensor_info t = cnn_net_tensor(net, i);
    n += 4 + strlen(t.name) + 4 + 4 * (size_t)t.rank + 4 * t.count;
  }
  n += 4 + 4 * np * (size_t)opt->nslots + 4;
  uint8_t *blob = cnn_malloc(n);
  if (!blob) {
    rc = cnn_nomem(err);
    goto done;
  }
  writer w = {blob};
  w_bytes(&w, MAGIC, 8);
  w_u32(&w, VERSION);
  w_u32(&w, (uint32_t)strlen(spec)), w_bytes(&w, spec, strlen(spec));
  w_u32(&w, (uint32_t)strlen(ojs)), w_bytes(&w, ojs, strlen(ojs));
  w_u32(&w, (uint32_t)(uint64_t)opt->step), w_u32(&w, (uint32_t)((uint64_t)opt->step >> 32));
  w_u32(&w, (uint32_t)epochs);
  w_u32(&w, (uint32_t)cnn_net_tensors(net));
  const float *params = cnn_net_params((cnn_net *)net);
  for (int i = 0; i < cnn_net_tensors(net); i++) {
    cnn_tensor_info t = cnn_net_tensor(net, i);
    w_u32(&w, (uint32_t)strlen(t.name)), w_bytes(&w, t.name, strlen(t.name));
    w_u32(&w, (uint32_t)t.rank);
    for (int d = 0; d < t.rank; d++) w_u32(&w, (uint32_t)t.dims[d]);
    w_floats(&w, params + t.offset, t.count);
  }
  w_u32(&w, (uint32_t)opt->nslots);
  w_floats(&w, opt->state, np * (size_t)opt->nslots);
  w_u32(&w, (uint32_t)crc32(0L, blob, (uInt)(n - 4)));
  *out = blob, *len = n;
done:
  cnn_free(spec);
  cnn_free(ojs);
  return rc;
}

typedef struct {
  const uint8_t *p, *end;
} reader;

static int r_u32(reader *r, uint32_t *v) {
  if (r->end - r->p < 4) return -1;
  *v = get_u32(r->p), r->p += 4;
  return 0;
}

/* Reads n floats into x, or fails when the blob is short or a value is not
 * finite (index of the first bad one in *bad). */
static int r_floats(reader *r, float *x, size_t n, size_t *bad) {
  if ((size_t)(r->end - r->p) / 4 < n) return -1;
  for (size_t i = 0; i < n; i++) {
    uint32_t u = get_u32(r->p + 4 * i);
    memcpy(&x[i], &u, 4);
  }
  r->p += 4 * n;
  long k = cnn_first_nonfinite(x, n);
  if (k >= 0) {
    *bad = (size_t)k;
    return -2;
  }
  return 0;
}

/* A length-prefixed text as an owned NUL-terminated copy. */
static int r_text(reader *r, char **out, uint32_t cap) {
  uint32_t n;
  if (r_u32(r, &n) || n > cap || (size_t)(r->end - r->p) < n) return -1;
  *out = cnn_malloc((size_t)n + 1);
  if (!*out) return -2;
  memcpy(*out, r->p, n);
  (*out)[n] = 0;
  r->p += n;
  return 0;
}

int cnn_model_load(cnn_net **netp, cnn_optim *opt, int *epochs, const uint8_t *blob, size_t len,
                   char *err) {
  int rc = CNN_OK;
  char *spec_text = NULL, *opt_text = NULL, *name = NULL;
  cnn_json *oj = NULL;
  cnn_net *net = NULL;
  cnn_spec spec = {0};
  char sub[CNN_ERRMAX];
  memset(opt, 0, sizeof *opt);
  *netp = NULL;
#define BAD(...)                                 \
  do {                                           \
    rc = cnn_error(err, CNN_ERROR, __VA_ARGS__); \
    goto done;                                   \
  } while (0)
#define NOMEM()          \
  do {                   \
    rc = cnn_nomem(err); \
    goto done;           \
  } while (0)
  if (len < 8 + 4 + 4 || memcmp(blob, MAGIC, 8))
    BAD("not a model blob (it must start with \"CNNMODEL\")");
  if (get_u32(blob + 8) != VERSION)
    BAD("model blob version %u is not supported (this build reads version %u)", get_u32(blob + 8),
        VERSION);
  if (crc32(0L, blob, (uInt)(len - 4)) != get_u32(blob + len - 4))
    BAD("model blob is corrupt or truncated (checksum mismatch)");
  reader r = {blob + 12, blob + len - 4};
  int t;
  if ((t = r_text(&r, &spec_text, MAX_TEXT))) {
    if (t == -2) NOMEM();
    BAD("model blob: bad spec length");
  }
  if ((t = r_text(&r, &opt_text, MAX_TEXT))) {
    if (t == -2) NOMEM();
    BAD("model blob: bad optimizer length");
  }
  uint32_t lo, hi, ep, nt;
  if (r_u32(&r, &lo) || r_u32(&r, &hi) || r_u32(&r, &ep) || r_u32(&r, &nt))
    BAD("model blob is truncated");
  if (hi >> 31 || ep > 1000000000u)
    BAD("model blob: step %llu or epoch count %u is out of range (below 2^63, at most 10^9)",
        (unsigned long long)hi << 32 | lo, ep);
  if ((rc = cnn_spec_parse(&spec, spec_text, sub))) {
    if (rc == CNN_NOMEM) NOMEM();
    BAD("model blob: %s", sub);
  }
  if ((rc = cnn_net_new(&net, &spec, sub))) {
    if (rc == CNN_NOMEM) NOMEM();
    BAD("model blob: %s", sub);
  }
  if ((rc = cnn_json_parse(&oj, opt_text, strlen(opt_text), sub))) {
    if (rc == CNN_NOMEM) NOMEM();
    BAD("model blob: optimizer is not valid JSON: %s", sub);
  }
  if (oj->type != CNN_JSON_NULL) {
    cnn_optim_config cfg;
    if ((rc = cnn_optim_parse(&cfg, oj, sub))) BAD("model blob: %s", sub);
    if ((rc = cnn_optim_init(opt, &cfg, cnn_net_nparams(net), err))) goto done;
    opt->step = (int64_t)((uint64_t)hi << 32 | lo);
  }
  if ((int)nt != cnn_net_tensors(net))
    BAD("model blob has %u tensors but its spec needs %d", nt, cnn_net_tensors(net));
  float *params = cnn_net_params(net);
  for (int i = 0; i < cnn_net_tensors(net); i++) {
    cnn_tensor_info ti = cnn_net_tensor(net, i);
    uint32_t rank, d;
    if ((t = r_text(&r, &name, 64))) {
      if (t == -2) NOMEM();
      BAD("model blob: tensor %d: bad name", i + 1);
    }
    if (strcmp(name, ti.name))
      BAD("model blob: tensor %d is \"%s\", expected \"%s\"", i + 1, name, ti.name);
    cnn_free(name), name = NULL;
    if (r_u32(&r, &rank) || rank != (uint32_t)ti.rank)
      BAD("model blob: tensor %s: wrong rank", ti.name);
    for (int k = 0; k < ti.rank; k++)
      if (r_u32(&r, &d) || d != (uint32_t)ti.dims[k])
        BAD("model blob: tensor %s: wrong shape", ti.name);
    size_t bad;
    if ((t = r_floats(&r, params + ti.offset, ti.count, &bad))) {
      if (t == -1) BAD("model blob is truncated in tensor %s", ti.name);
      BAD("model blob: tensor %s has a non-finite value at index %zu", ti.name, bad);
    }
  }
  if ((rc = cnn_net_check_weights(net, sub))) BAD("model blob: %s", sub);
  uint32_t slots;
  if (r_u32(&r, &slots) || slots != (uint32_t)opt->nslots)
    BAD("model blob: optimizer state has the wrong number of arrays");
  size_t bad;
  if ((t = r_floats(&r, opt->state, opt->n * (size_t)opt->nslots, &bad))) {
    if (t == -1) BAD("model blob is truncated in the optimizer state");
    BAD("model blob: optimizer state has a non-finite value at index %zu", bad);
  }
  if (r.p != r.end) BAD("model blob has %zu unexpected bytes at the end", (size_t)(r.end - r.p));
  *epochs = (int)ep;
#undef BAD
#undef NOMEM
done:
  cnn_free(spec_text);
  cnn_free(opt_text);
  cnn_free(name);
  cnn_json_free(oj);
  cnn_spec_clear(&spec);
  if (rc) {
    cnn_net_free(net);
    cnn_optim_clear(opt);
    return rc;
  }
  *netp = net;
  return CNN_OK;
}
