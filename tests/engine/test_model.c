/*
 * test_model.c - the model blob: a round trip keeps spec, weights, optimizer
 * state, step and epochs bit for bit; every kind of damage is refused.
 */
#include <stdlib.h>
#include <zlib.h>

#include "check.h"
#include "cnn.h"
#include "json.h"
#include "model.h"

static const char *spec_json =
    "{\"input\":[6,6,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,"
    "\"activation\":{\"expr\":\"x*sigmoid(x)\"}},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":3}]}";

static uint8_t *find(uint8_t *hay, size_t n, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++)
    if (!memcmp(hay + i, needle, m)) return hay + i;
  return NULL;
}

/* Rewrites the trailing checksum after a deliberate edit. */
static void reseal(uint8_t *b, size_t n) {
  uint32_t c = (uint32_t)crc32(0L, b, (uInt)(n - 4));
  for (int i = 0; i < 4; i++) b[n - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void refused(const uint8_t *b, size_t n, const char *msg) {
  char err[CNN_ERRMAX] = "";
  cnn_net *net = NULL;
  cnn_optim opt;
  int epochs;
  CHECK_EQ_INT(cnn_model_load(&net, &opt, &epochs, b, n, err), CNN_ERROR);
  CHECK(net == NULL);
  CHECK_STR(err, msg);
}

int main(void) {
  char err[CNN_ERRMAX];
  cnn_spec spec;
  cnn_net *net = NULL, *back = NULL;
  cnn_optim opt, opt2;
  cnn_json *j = NULL;
  cnn_optim_config cfg;
  CHECK(cnn_spec_parse(&spec, spec_json, err) == CNN_OK);
  CHECK(cnn_net_new(&net, &spec, err) == CNN_OK);
  cnn_net_init(net, 5);
  CHECK(cnn_json_parse(&j, "\"adam\"", 6, err) == CNN_OK);
  CHECK(cnn_optim_parse(&cfg, j, err) == CNN_OK);
  cnn_json_free(j);
  CHECK(cnn_optim_init(&opt, &cfg, cnn_net_nparams(net), err) == CNN_OK);
  /* One real step so the optimizer state is not zero. */
  uint8_t img[2 * 36], lab[2] = {1, 2};
  for (int i = 0; i < 72; i++) img[i] = (uint8_t)(i * 7);
  cnn_dataset d = {.images = img, .labels = lab, .count = 2};
  cnn_train_config tc = {.epochs = 1, .batch_size = 2, .first_epoch = 1};
  cnn_train_result res;
  CHECK(cnn_train(net, &opt, &d, NULL, &tc, &res, err) == CNN_OK);

  uint8_t *blob = NULL, *blob2 = NULL;
  size_t n = 0, n2 = 0;
  CHECK(cnn_model_save(&blob, &n, net, &opt, 7, err) == CNN_OK);
  int epochs = 0;
  if (!CHECK(cnn_model_load(&back, &opt2, &epochs, blob, n, err) == CNN_OK)) {
    fprintf(stderr, "%s\n", err);
    return check_done();
  }
  CHECK_EQ_INT(epochs, 7);
  CHECK_EQ_INT(opt2.step, 1);
  CHECK_EQ_INT(opt2.nslots, 2);
  CHECK(memcmp(cnn_net_params(net), cnn_net_params(back), cnn_net_nparams(net) * 4) == 0);
  CHECK(memcmp(opt.state, opt2.state, opt.n * 2 * 4) == 0);
  CHECK(cnn_model_save(&blob2, &n2, back, &opt2, 7, err) == CNN_OK);
  CHECK(n2 == n && memcmp(blob, blob2, n) == 0);
  cnn_free(blob2);
  cnn_optim_clear(&opt2);
  cnn_net_free(back);

  uint8_t *b = malloc(n + 8);
  refused(blob, 10, "not a model blob (it must start with \"CNNMODEL\")");
  memcpy(b, blob, n), b[0] = 'X';
  refused(b, n, "not a model blob (it must start with \"CNNMODEL\")");
  memcpy(b, blob, n), b[8] = 2;
  refused(b, n, "model blob version 2 is not supported (this build reads version 1)");
  refused(blob, n - 1, "model blob is corrupt or truncated (checksum mismatch)");
  refused(blob, n / 2, "model blob is corrupt or truncated (checksum mismatch)");
  memcpy(b, blob, n), b[n / 2] ^= 1;
  refused(b, n, "model blob is corrupt or truncated (checksum mismatch)");
  /* Damage behind a valid checksum: the structure itself is checked. */
  memcpy(b, blob, n), memcpy(b + n - 4, "\0\0\0\0", 4), memcpy(b + n, "\0\0\0\0", 4),
      reseal(b, n + 4);
  refused(b, n + 4, "model blob has 4 unexpected bytes at the end");
  memcpy(b, blob, n);
  uint8_t *units = find(b, n, "\"units\":3");
  if (CHECK(units != NULL)) {
    units[8] = '4';
    reseal(b, n);
    refused(b, n, "model blob: tensor dense/kernel: wrong shape");
  }
  memcpy(b, blob, n);
  uint8_t *filters = find(b, n, "\"filters\":2");
  if (CHECK(filters != NULL)) {
    filters[10] = '0';
    reseal(b, n);
    refused(b, n, "model blob: layer 1 (conv2d): filters must be an integer 1..65536, got 0");
  }
  /* A NaN weight: the first float of the first tensor. */
  memcpy(b, blob, n);
  uint8_t *name = find(b, n, "conv2d/kernel");
  if (CHECK(name != NULL)) {
    uint8_t *first = name + 13 + 4 + 4 * 4;
    memcpy(first, "\x00\x00\xc0\x7f", 4);
    reseal(b, n);
    refused(b, n, "model blob: tensor conv2d/kernel has a non-finite value at index 0");
  }
  /* A length that points past the end. */
  memcpy(b, blob, n), b[12] = 0xff, b[13] = 0xff, reseal(b, n);
  refused(b, n, "model blob: bad spec length");
  free(b);
  cnn_free(blob);
  cnn_optim_clear(&opt);
  cnn_net_free(net);
  return check_done();
}
