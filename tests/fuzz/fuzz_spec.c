/*
 * fuzz_spec.c - libFuzzer target for JSON model specs (src/spec.c) and the
 * network they build (src/net.c), as cnn_create and cnn_import receive them.
 *
 * Beyond "no crash": a spec that parses writes back canonical JSON that parses
 * again to the same canonical JSON; a network that builds has tensors that tile
 * the parameter arena exactly (trainable ones first, then the non-trainable).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"

static void check_tensors(const cnn_net *net) {
  /* Trainable tensors tile [0, nparams) in order, the non-trainable ones
   * (moving statistics) [nparams, nparams + nstate). */
  size_t off = 0, soff = cnn_net_nparams(net);
  for (int i = 0; i < cnn_net_tensors(net); i++) {
    cnn_tensor_info t = cnn_net_tensor(net, i);
    size_t prod = 1, *at = t.trainable ? &off : &soff;
    for (int d = 0; d < t.rank; d++) prod *= (size_t)t.dims[d];
    if (t.offset != *at || t.count != prod) abort();
    *at += t.count;
  }
  if (off != cnn_net_nparams(net) || soff != off + cnn_net_nstate(net)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CNN_ERRMAX];
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  cnn_spec spec, again;
  int rc = cnn_spec_parse(&spec, text, err);
  free(text);
  if (rc != CNN_OK) {
    if (spec.layers || spec.nlayers) abort(); /* cleared on failure */
    return 0;
  }
  char *json = cnn_spec_to_json(&spec);
  if (json) {
    if (cnn_spec_parse(&again, json, err) != CNN_OK) abort();
    char *json2 = cnn_spec_to_json(&again);
    if (json2 && strcmp(json, json2) != 0) abort();
    cnn_free(json2);
    cnn_spec_clear(&again);
  }
  cnn_free(json);
  cnn_net *net = NULL;
  if (cnn_net_new(&net, &spec, err) == CNN_OK) {
    check_tensors(net);
    if (cnn_net_classes(net) < 2) abort();
    cnn_net_free(net);
  } else if (net) {
    abort();
  }
  if (spec.layers) abort(); /* net_new takes the spec over, success or not */
  return 0;
}
