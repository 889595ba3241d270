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
#include "json.h"

/* The fuzzed document may use the SQL face's own keys: they are the
 * caller's (ext/train.c) and skipped by the engine. */
static const char *const caller_keys[] = {"validation", "threads", "progress", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CNN_ERRMAX];
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  cnn_train_config c;
  cnn_json *root = NULL;
  int rc = cnn_train_config_parse(&c, text, caller_keys, &root, err);
  free(text);
  if (rc != CNN_OK) {
    if (root != NULL || err[0] == 0) abort();
    return 0;
  }
  cnn_json_free(root);
  if (c.epochs < 0 || c.epochs > CNN_MAX_EPOCHS || c.batch_size < 1 ||
      c.batch_size > CNN_MAX_BATCH || c.patience < 0 || !(c.learning_rate >= 0) ||
      !(c.max_seconds >= 0) || !(c.optimizer.learning_rate > 0))
    abort();
  const cnn_augment_config *a = &c.augment;
  if (!(a->rotation >= 0 && a->rotation <= 180) || !(a->shift >= 0 && a->shift <= 1) ||
      !(a->zoom >= 0 && a->zoom <= 0.9) || !(a->shear >= 0 && a->shear <= 1) ||
      !(a->noise >= 0 && a->noise <= 1) || !(a->elastic_alpha >= 0 && a->elastic_alpha <= 1000) ||
      (a->elastic_alpha > 0 && !(a->elastic_sigma > 0 && a->elastic_sigma <= 100)) ||
      a->thickness < 0 || a->thickness > CNN_AUGMENT_MAX_THICKNESS)
    abort();
  /* The optimizer settings write back as JSON (what the database stores). */
  char *oj = cnn_optim_to_json(&c.optimizer);
  cnn_free(oj);
  return 0;
}
