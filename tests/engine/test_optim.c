/*
 * test_optim.c - each optimizer's first two updates of w = 1 under the
 * gradients 0.5 then -0.3, against values worked out from Keras' formulas
 * (written out in src/optim.c), plus defaults, options and errors.
 *
 * Hand-worked, e.g. momentum (lr 0.01, m 0.9): v1 = -0.005, w1 = 0.995;
 * v2 = 0.9 * -0.005 + 0.003 = -0.0015, w2 = 0.9935. Adam step 1: m = 0.05,
 * v = 0.00025, alpha = 0.001 * sqrt(0.001) / 0.1, w1 = 1 - alpha * 0.05 /
 * (sqrt(0.00025) + 1e-7) = 0.999000006.
 *
 * Weight decay comes first (Keras 3): sgd with weight_decay 0.1 (lr 0.01)
 * w1 = 1 - 0.001 * 1 - 0.005 = 0.994, w2 = 0.994 - 0.000994 + 0.003 =
 * 0.996006. AdamW (lr 1e-3, weight_decay 0.004) is Adam's steps after
 * w -= 4e-6 w: w1 = 0.999996 - 0.000999994 = 0.998996006, w2 =
 * 0.998996006 - 0.000003996 - 0.000191497 = 0.998800513.
 */
#include "check.h"
#include "cnn.h"
#include "json.h"

static void two_steps(const char *json, double w1, double w2) {
  char err[CNN_ERRMAX];
  cnn_json *j = NULL;
  cnn_optim_config cfg;
  cnn_optim opt;
  if (!CHECK(cnn_json_parse(&j, json, strlen(json), err) == CNN_OK)) return;
  if (!CHECK(cnn_optim_parse(&cfg, j, err) == CNN_OK)) {
    fprintf(stderr, "%s: %s\n", json, err);
    cnn_json_free(j);
    return;
  }
  cnn_json_free(j);
  CHECK(cnn_optim_init(&opt, &cfg, 5, err) == CNN_OK);
  float w[5] = {1, 1, 1, 1, 1}, g[5];
  for (int i = 0; i < 5; i++) g[i] = 0.5f;
  cnn_optim_step(&opt, w, g, NULL);
  if (!CHECK_NEAR(w[0], w1, 2e-7)) fprintf(stderr, "  optimizer %s step 1\n", json);
  CHECK(w[4] == w[0]);
  for (int i = 0; i < 5; i++) g[i] = -0.3f;
  cnn_optim_step(&opt, w, g, NULL);
  if (!CHECK_NEAR(w[0], w2, 2e-7)) fprintf(stderr, "  optimizer %s step 2\n", json);
  CHECK_EQ_INT(opt.step, 2);
  cnn_optim_clear(&opt);
}

static void parse_error(const char *json, const char *msg) {
  char err[CNN_ERRMAX] = "";
  cnn_json *j = NULL;
  cnn_optim_config cfg;
  CHECK(cnn_json_parse(&j, json, strlen(json), err) == CNN_OK);
  CHECK(cnn_optim_parse(&cfg, j, err) == CNN_ERROR);
  CHECK_STR(err, msg);
  cnn_json_free(j);
}

int main(void) {
  two_steps("\"sgd\"", 0.995, 0.998);
  two_steps("\"momentum\"", 0.995, 0.9935);
  two_steps("{\"name\":\"sgd\",\"momentum\":0.9,\"nesterov\":true}", 0.9905, 0.99215);
  two_steps("\"adam\"", 0.999000006, 0.998808509);
  two_steps("\"adamax\"", 0.999000000, 0.998841947);
  two_steps("\"adagrad\"", 0.999154846, 0.999607113);
  two_steps("\"rmsprop\"", 0.996837729, 0.998528034);
  two_steps("{\"name\":\"rmsprop\",\"momentum\":0.5,\"centered\":true}", 0.996666674, 0.996696386);
  two_steps("{\"name\":\"sgd\",\"learning_rate\":0.1}", 0.95, 0.98);
  two_steps("{\"name\":\"sgd\",\"weight_decay\":0.1}", 0.994, 0.996006);
  two_steps("\"adamw\"", 0.998996006, 0.998800513);
  two_steps("{\"name\":\"adamw\",\"weight_decay\":0}", 0.999000006, 0.998808509);

  /* Keras' defaults, and the canonical form the database stores. */
  char err[CNN_ERRMAX];
  cnn_optim_config c;
  CHECK(cnn_optim_defaults(&c, "sgd", err) == CNN_OK && c.learning_rate == 0.01 && c.momentum == 0);
  CHECK(cnn_optim_defaults(&c, "adam", err) == CNN_OK && c.learning_rate == 0.001 &&
        c.beta_1 == 0.9 && c.beta_2 == 0.999 && c.epsilon == 1e-7);
  char *s = cnn_optim_to_json(&c);
  CHECK_STR(s,
            "{\"name\":\"adam\",\"learning_rate\":0.001,\"beta_1\":0.9,\"beta_2\":0.999,"
            "\"epsilon\":1e-7}");
  cnn_free(s);
  CHECK(cnn_optim_defaults(&c, "momentum", err) == CNN_OK);
  s = cnn_optim_to_json(&c);
  CHECK_STR(s, "{\"name\":\"sgd\",\"learning_rate\":0.01,\"momentum\":0.9,\"nesterov\":false}");
  cnn_free(s);
  CHECK_EQ_INT(cnn_optim_slots(&c), 1);
  CHECK(cnn_optim_defaults(&c, "adagrad", err) == CNN_OK);
  CHECK_EQ_INT(cnn_optim_slots(&c), 1);
  CHECK(cnn_optim_defaults(&c, "adamw", err) == CNN_OK && c.learning_rate == 0.001 &&
        c.weight_decay == 0.004 && c.beta_1 == 0.9 && c.beta_2 == 0.999 && c.epsilon == 1e-7);
  CHECK_EQ_INT(cnn_optim_slots(&c), 2);
  s = cnn_optim_to_json(&c);
  CHECK_STR(s,
            "{\"name\":\"adamw\",\"learning_rate\":0.001,\"weight_decay\":0.004,\"beta_1\":0.9,"
            "\"beta_2\":0.999,\"epsilon\":1e-7}");
  cnn_free(s);
  /* adamw always names its decay; the others only a nonzero one. */
  c.weight_decay = 0;
  s = cnn_optim_to_json(&c);
  CHECK_STR(s,
            "{\"name\":\"adamw\",\"learning_rate\":0.001,\"weight_decay\":0,\"beta_1\":0.9,"
            "\"beta_2\":0.999,\"epsilon\":1e-7}");
  cnn_free(s);
  CHECK(cnn_optim_defaults(&c, "sgd", err) == CNN_OK);
  c.weight_decay = 0.01;
  s = cnn_optim_to_json(&c);
  CHECK_STR(s,
            "{\"name\":\"sgd\",\"learning_rate\":0.01,\"weight_decay\":0.01,\"momentum\":0,"
            "\"nesterov\":false}");
  cnn_free(s);

  parse_error(
      "\"adadelta\"",
      "unknown optimizer \"adadelta\" (sgd, momentum, adam, adamw, adamax, adagrad, rmsprop)");
  parse_error("{\"name\":\"adamw\",\"weight_decay\":2}",
              "optimizer weight_decay must be a number in [0, 1], got 2");
  parse_error("{\"name\":\"rmsprop\",\"weight_decay\":-0.1}",
              "optimizer weight_decay must be a number in [0, 1], got -0.1");
  parse_error("{\"name\":\"adam\",\"weight_decay\":\"some\"}",
              "optimizer weight_decay must be a number in [0, 1], got \"some\"");
  parse_error("{\"name\":\"adam\",\"momentum\":0.9}", "optimizer adam has no setting \"momentum\"");
  parse_error("{\"name\":\"sgd\",\"learning_rate\":-1}",
              "optimizer learning_rate must be a number in (0, 10], got -1");
  parse_error("{\"name\":\"sgd\",\"learning_rate\":\"fast\"}",
              "optimizer learning_rate must be a number in (0, 10], got \"fast\"");
  parse_error("{\"learning_rate\":0.1}", "optimizer object needs \"name\" (text)");
  parse_error("{\"name\":\"adam\",\"beta_1\":1}", "optimizer beta_1 must be below 1, got 1");
  parse_error("{\"name\":\"sgd\",\"nesterov\":1}",
              "optimizer nesterov must be true or false, got 1");
  parse_error("42", "optimizer must be a name or an object with \"name\", got number");
  return check_done();
}
