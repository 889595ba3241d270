/*
 * fuzz_options.c - libFuzzer target for cnn_train's options JSON
 * (src/options.c, with the optimizer settings of src/optim.c).
 *
 * Beyond "no crash": an accepted set of options is within the documented
 * ranges, and a refused one leaves nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CNN_ERRMAX];
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  cnn_train_options o;
  int rc = cnn_train_options_parse(&o, text, err);
  free(text);
  if (rc != CNN_OK) {
    if (o.validation != NULL || err[0] == 0) abort();
    return 0;
  }
  if (o.epochs < 0 || o.epochs > CNN_MAX_EPOCHS || o.batch_size < 1 ||
      o.batch_size > CNN_MAX_BATCH || o.threads < 0 || o.threads > CNN_MAX_THREADS ||
      o.patience < 0 || !(o.learning_rate >= 0) || !(o.max_seconds >= 0) ||
      !(o.optimizer.learning_rate > 0))
    abort();
  if (o.validation && o.validation[0] == 0) abort();
  /* The optimizer settings write back as JSON (what the database stores). */
  char *oj = cnn_optim_to_json(&o.optimizer);
  cnn_free(oj);
  cnn_train_options_clear(&o);
  return 0;
}
