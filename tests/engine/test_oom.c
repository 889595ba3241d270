/*
 * test_oom.c - out of memory anywhere in a model's life is an error, never a
 * crash, a leak or a silently different model.
 *
 * One cycle does what cnn_create / cnn_train / cnn_predict / cnn_export /
 * cnn_import do in the engine: parse training options and a spec (with a
 * custom activation formula), build and initialise the net, set up an
 * optimizer from JSON, train one epoch on a few images with validation, encode
 * a digit as PNG and turn it back into MNIST form, predict, save the model
 * blob, load it and predict again. For N = 1, 2, 3, ... allocation N of the
 * cycle fails (cnn_alloc_fail_at) until a cycle completes without reaching
 * allocation N. Every cycle that met the failure must return CNN_NOMEM with
 * "out of memory" (a message may say where) and free everything it made
 * (LeakSanitizer checks this at exit in the CNN_SANITIZE build). The one
 * exception is an allocation that was only tried: stb_image probes an encoded
 * image as JPEG first, with a state it allocates, and goes on to the next
 * format when that fails; such a run may succeed, but only with exactly the
 * blob of a cycle without injected failures, like the final clean run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif

#include "check.h"
#include "cnn.h"
#include "image.h"
#include "json.h"
#include "model.h"

#define SIDE 28
#define NTRAIN 8
#define NVAL 4
#define CLASSES 3

static const char *spec_json =
    "{\"input\":[28,28,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel\":3,"
    "\"strides\":2,\"activation\":{\"expr\":\"x*sigmoid(x)\"}},{\"type\":\"maxpool\",\"size\":2},"
    "{\"type\":\"dropout\",\"rate\":0.25},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":3,\"activation\":\"softmax\"}]}";
static const char *options_json =
    "{\"epochs\":1,\"batch_size\":4,\"seed\":7,\"validation\":\"val\","
    "\"optimizer\":{\"name\":\"adam\",\"learning_rate\":0.01}}";

static uint8_t images[(NTRAIN + NVAL) * SIDE * SIDE], labels[NTRAIN + NVAL];

/* Synthetic digits: a bar whose position and slant give the class. */
static void make_data(void) {
  for (int n = 0; n < NTRAIN + NVAL; n++) {
    int c = n % CLASSES;
    labels[n] = (uint8_t)c;
    for (int y = 0; y < SIDE; y++)
      for (int x = 0; x < SIDE; x++) {
        int centre = 8 + 6 * c + (c == 2 ? (y - 14) / 3 : 0);
        int ink = y >= 4 && y < 24 && abs(x - centre) <= 2;
        images[(n * SIDE + y) * SIDE + x] = (uint8_t)(ink ? 255 : (x * 7 + y * 3 + n) % 13);
      }
  }
}

typedef struct result {
  uint8_t *blob; /* owned: the saved model (cnn_malloc) */
  size_t len;
} result;

/* One cycle; on success *out holds the blob, else it stays empty. Everything
 * starts NULL and is freed at the one exit, whatever failed. */
static int cycle(result *out, char *err) {
  int rc = CNN_OK;
  cnn_train_config tc;
  cnn_spec spec = {0};
  cnn_net *net = NULL, *back = NULL;
  cnn_json *oj = NULL;
  cnn_optim opt = {0}, opt2 = {0};
  uint8_t *png = NULL, *blob = NULL;
  size_t png_len = 0, blob_len = 0;
  float *probs = NULL, *probs2 = NULL;
  uint8_t digit[CNN_MNIST_BYTES];
  int epochs = 0;
  out->blob = NULL, out->len = 0;

  static const char *const face_keys[] = {"validation", NULL}; /* the SQL face's own */
  if ((rc = cnn_train_config_parse(&tc, options_json, face_keys, NULL, err))) goto done;
  if ((rc = cnn_spec_parse(&spec, spec_json, err))) goto done;
  if ((rc = cnn_net_new(&net, &spec, err))) goto done;
  cnn_net_init(net, 42);
  /* The optimizer as the face builds it: from the stored JSON of the options. */
  char *cfg_json = cnn_optim_to_json(&tc.optimizer);
  if (!cfg_json) {
    rc = cnn_nomem(err);
    goto done;
  }
  rc = cnn_json_parse(&oj, cfg_json, strlen(cfg_json), err);
  cnn_free(cfg_json);
  if (rc) goto done;
  cnn_optim_config cfg;
  if ((rc = cnn_optim_parse(&cfg, oj, err))) goto done;
  if ((rc = cnn_optim_init(&opt, &cfg, cnn_net_nparams(net), err))) goto done;

  cnn_dataset train = {.images = images, .labels = labels, .count = NTRAIN};
  cnn_dataset val = {
      .images = images + NTRAIN * SIDE * SIDE, .labels = labels + NTRAIN, .count = NVAL};
  cnn_train_result res;
  if ((rc = cnn_train(net, &opt, &train, &val, &tc, &res, err))) goto done;

  /* A picture of a digit, as cnn_predict receives it. */
  if ((rc = cnn_png_encode(&png, &png_len, images, SIDE, SIDE, 1, err))) goto done;
  if ((rc = cnn_image_to_mnist(digit, png, png_len, err))) goto done;
  probs = cnn_malloc(2 * CLASSES * sizeof *probs);
  probs2 = cnn_malloc(2 * CLASSES * sizeof *probs2);
  if (!probs || !probs2) {
    rc = cnn_nomem(err);
    goto done;
  }
  uint8_t two[2 * CNN_MNIST_BYTES];
  memcpy(two, digit, CNN_MNIST_BYTES);
  memcpy(two + CNN_MNIST_BYTES, images + SIDE * SIDE, CNN_MNIST_BYTES);
  if ((rc = cnn_net_predict(net, probs, two, 2, err))) goto done;

  if ((rc = cnn_model_save(&blob, &blob_len, net, &opt, 1, err))) goto done;
  if ((rc = cnn_model_load(&back, &opt2, &epochs, blob, blob_len, err))) goto done;
  if ((rc = cnn_net_predict(back, probs2, two, 2, err))) goto done;
  if (memcmp(probs, probs2, 2 * CLASSES * sizeof *probs) != 0 || epochs != 1) {
    rc = cnn_error(err, CNN_ERROR, "the loaded model predicts differently");
    goto done;
  }
  out->blob = blob, out->len = blob_len;
  blob = NULL;
done:
  cnn_spec_clear(&spec);
  cnn_net_free(net);
  cnn_net_free(back);
  cnn_json_free(oj);
  cnn_optim_clear(&opt);
  cnn_optim_clear(&opt2);
  cnn_free(png);
  cnn_free(blob);
  cnn_free(probs);
  cnn_free(probs2);
  return rc;
}

/* Blocks of 4 MB and more take their own path (base.c: aligned for huge
 * pages): zeroed by cnn_calloc, aligned, kept by cnn_realloc, refused on
 * overflow, and failed on demand like any other allocation. */
static void test_big_blocks(void) {
  const size_t big = (size_t)5 << 20, huge_page = (size_t)2 << 20;
#ifdef __GLIBC__
  /* Big blocks from the heap, kept when freed: cnn_calloc then gets memory
   * that was written before, not fresh zero pages from the kernel. */
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
  for (int i = 0; i < 3; i++) { /* leave dirty memory for cnn_calloc to reuse */
    unsigned char *d = cnn_malloc(big);
    if (d) memset(d, 0xab, big);
    cnn_free(d);
  }
  unsigned char *z = cnn_calloc(big, 1);
  float *m = cnn_malloc((size_t)4 << 20);
  if (CHECK(z && m)) {
    size_t nonzero = 0;
    for (size_t i = 0; i < big; i++) nonzero += z[i] != 0;
    CHECK_EQ_INT(nonzero, 0);
    CHECK_EQ_INT((uintptr_t)z % huge_page, 0);
    CHECK_EQ_INT((uintptr_t)m % huge_page, 0);
    for (size_t i = 0; i < ((size_t)4 << 20) / sizeof *m; i++) m[i] = (float)i;
    float *g = cnn_realloc(m, (size_t)9 << 20);
    if (CHECK(g)) {
      m = g;
      CHECK(m[0] == 0.0f && m[12345] == 12345.0f &&
            m[(((size_t)4 << 20) / sizeof *m) - 1] == (float)((((size_t)4 << 20) / sizeof *m) - 1));
    }
  }
  cnn_free(z);
  cnn_free(m);
  CHECK(cnn_calloc(SIZE_MAX / 8, 16) == NULL); /* count * size overflows */
  cnn_alloc_fail_at(1);
  CHECK(cnn_calloc(big, 1) == NULL);
  cnn_alloc_fail_at(1);
  CHECK(cnn_malloc(big) == NULL);
  cnn_alloc_fail_at(0);
}

int main(void) {
  char err[CNN_ERRMAX];
  test_big_blocks();
  result ref = {0}, got = {0};
  make_data();

  /* Without failures: the reference blob and the number of allocations. */
  cnn_alloc_fail_at(0);
  int rc = cycle(&ref, err);
  uint64_t total = cnn_alloc_fail_at(0);
  if (!CHECK_EQ_INT(rc, CNN_OK)) {
    fprintf(stderr, "cycle: %s\n", err);
    return check_done();
  }

  uint64_t n, failed_runs = 0, bad = 0, absorbed = 0;
  for (n = 1;; n++) {
    strcpy(err, "(no message)");
    cnn_alloc_fail_at(n);
    rc = cycle(&got, err);
    uint64_t made = cnn_alloc_fail_at(0);
    if (made < n) break; /* allocation n never happened: a clean run */
    failed_runs++;
    /* Checked one by one so that a failure names the allocation. A run may
     * also succeed when the failed allocation was optional, but then with
     * exactly the reference model. */
    int nomem = rc == CNN_NOMEM && strstr(err, "out of memory") && !got.blob;
    int same =
        rc == CNN_OK && got.blob && got.len == ref.len && memcmp(got.blob, ref.blob, ref.len) == 0;
    if (same) absorbed++;
    if (!nomem && !same && bad++ < 10)
      fprintf(stderr, "allocation %llu failed: status %d, \"%s\"\n", (unsigned long long)n, rc,
              err);
    cnn_free(got.blob);
    got.blob = NULL;
    if (n > 100000) break; /* runaway: the clean run never came */
  }
  printf(
      "%llu allocations in a cycle; %llu runs with one failing (%llu of them absorbed: an "
      "optional allocation), then a clean run\n",
      (unsigned long long)total, (unsigned long long)failed_runs, (unsigned long long)absorbed);
  CHECK_EQ_INT(bad, 0);
  CHECK(failed_runs > 20);
  CHECK_EQ_INT(failed_runs, total); /* the cycle allocates the same way every time */
  CHECK_EQ_INT(rc, CNN_OK);
  CHECK(got.blob && got.len == ref.len && memcmp(got.blob, ref.blob, ref.len) == 0);
  cnn_free(got.blob);
  cnn_free(ref.blob);
  return check_done();
}
