/*
 * fuzz_model.c - libFuzzer target for the model blob loader (src/model.c), the
 * bytes cnn_import and the stored weights hand to it.
 *
 * Every blob ends with a CRC-32 of the rest, which random mutations almost
 * never get right; so each input is tried as given and then once more with
 * the checksum rewritten, which lets the fuzzer reach the structure behind it.
 * Beyond "no crash": a blob that loads saves again, and that blob loads and
 * saves to the same bytes (the format has one canonical form once written).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cnn.h"
#include "model.h"

static void load_one(const uint8_t *blob, size_t len) {
  char err[CNN_ERRMAX];
  cnn_net *net = NULL, *net2 = NULL;
  cnn_optim opt, opt2;
  int epochs = -1, epochs2 = -1;
  int rc = cnn_model_load(&net, &opt, &epochs, blob, len, err);
  if (rc != CNN_OK) {
    if (net != NULL || opt.state != NULL || err[0] == 0) abort();
    return;
  }
  if (epochs < 0) abort();
  uint8_t *out = NULL, *out2 = NULL;
  size_t n = 0, n2 = 0;
  if (cnn_model_save(&out, &n, net, opt.n ? &opt : NULL, epochs, err) == CNN_OK) {
    if (cnn_model_load(&net2, &opt2, &epochs2, out, n, err) != CNN_OK) abort();
    if (epochs2 != epochs || opt2.step != opt.step || opt2.nslots != opt.nslots) abort();
    if (cnn_model_save(&out2, &n2, net2, opt2.n ? &opt2 : NULL, epochs2, err) == CNN_OK &&
        (n2 != n || memcmp(out, out2, n) != 0))
      abort();
    cnn_free(out2);
    cnn_optim_clear(&opt2);
    cnn_net_free(net2);
  }
  cnn_free(out);
  cnn_optim_clear(&opt);
  cnn_net_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load_one(data, size);
  if (size < 16) return 0;
  uint8_t *b = malloc(size);
  if (!b) return 0;
  memcpy(b, data, size);
  uint32_t c = (uint32_t)crc32(0L, b, (uInt)(size - 4));
  for (int i = 0; i < 4; i++) b[size - 4 + i] = (uint8_t)(c >> (8 * i));
  if (memcmp(b, data, size) != 0) load_one(b, size);
  free(b);
  return 0;
}
