-- sqlite-cnn: the tables a database holds its models in.
--
-- The extension creates them on first use (this file is compiled into it), so
-- nothing needs to be run by hand. Weights are float32 little-endian blobs,
-- one row per tensor, in Keras' layouts: conv kernels [KH, KW, IC, OC], dense
-- kernels [IN, OUT], biases [N], each row-major over its shape. A model is
-- consistent in every committed state: training writes an epoch's weights,
-- optimizer state, counters and history row in one transaction.

CREATE TABLE IF NOT EXISTS cnn_models (
  name      TEXT PRIMARY KEY,            -- as in cnn_train(name, ...)
  spec      TEXT NOT NULL,               -- canonical JSON spec, every default written out
  params    INTEGER NOT NULL,            -- number of parameters
  optimizer TEXT,                        -- canonical JSON of the optimizer; NULL until trained
  step      INTEGER NOT NULL DEFAULT 0,  -- optimizer updates applied (Keras' iterations)
  epochs    INTEGER NOT NULL DEFAULT 0,  -- completed epochs
  version   INTEGER NOT NULL DEFAULT 1,  -- bumped on every change of the weights
  created   TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated   TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS cnn_weights (
  model TEXT NOT NULL,     -- cnn_models.name
  idx   INTEGER NOT NULL,  -- order in the model: layer by layer, kernel then bias
  name  TEXT NOT NULL,     -- Keras' name: 'conv2d/kernel', 'dense_1/bias'
  shape TEXT NOT NULL,     -- JSON array, e.g. '[3,3,1,32]'
  data  BLOB NOT NULL,     -- float32 little-endian, product(shape) values
  PRIMARY KEY (model, idx)
);

CREATE TABLE IF NOT EXISTS cnn_optimizer_state (
  model TEXT NOT NULL,     -- cnn_models.name
  slot  INTEGER NOT NULL,  -- which array: Adam 0 = momentum, 1 = velocity
  name  TEXT NOT NULL,     -- the slot's name
  idx   INTEGER NOT NULL,  -- the tensor, as cnn_weights.idx
  data  BLOB NOT NULL,     -- float32 little-endian, as long as the tensor
  PRIMARY KEY (model, slot, idx)
);

CREATE TABLE IF NOT EXISTS cnn_epochs (  -- read it through cnn_history
  model         TEXT NOT NULL,
  epoch         INTEGER NOT NULL,        -- 1-based over the model's life
  loss          REAL,                    -- mean training loss of the epoch
  accuracy      REAL,
  val_loss      REAL,                    -- NULL without validation
  val_accuracy  REAL,
  learning_rate REAL,
  seconds       REAL,                    -- wall time of the epoch
  samples       INTEGER,                 -- training rows seen
  finished      TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (model, epoch)
);

CREATE TABLE IF NOT EXISTS cnn_layer_epochs (  -- read it through cnn_layer_stats
  model         TEXT NOT NULL,           -- training option layer_stats: one row
  epoch         INTEGER NOT NULL,        -- per layer and epoch, means over up
  layer         INTEGER NOT NULL,        -- to 16 steps of the epoch; 0-based
  name          TEXT NOT NULL,           -- Keras' name: 'conv2d', 'dense_1'
  type          TEXT NOT NULL,           -- Keras' class: 'Conv2D'
  grad_mean_abs REAL,                    -- mean |gradient| of the kernel (NULL: none)
  weight_norm   REAL,                    -- L2 norm of the kernel
  update_ratio  REAL,                    -- norm of a step's change / norm before it
  zero_fraction REAL,                    -- outputs exactly 0 (off or dead ReLUs)
  PRIMARY KEY (model, epoch, layer)
);

CREATE TABLE IF NOT EXISTS cnn_settings (  -- 'default_model': used by cnn_predict(image);
                                           -- 'precision:' || model: set by cnn_precision
  key   TEXT PRIMARY KEY,
  value ANY
);

-- Any change of weights, by the extension or by hand, bumps the version, so
-- every connection's cached copy of the model reloads.
CREATE TRIGGER IF NOT EXISTS cnn_weights_insert AFTER INSERT ON cnn_weights BEGIN
  UPDATE cnn_models SET version = version + 1 WHERE name = NEW.model;
END;
CREATE TRIGGER IF NOT EXISTS cnn_weights_update AFTER UPDATE ON cnn_weights BEGIN
  UPDATE cnn_models SET version = version + 1 WHERE name IN (OLD.model, NEW.model);
END;
CREATE TRIGGER IF NOT EXISTS cnn_weights_delete AFTER DELETE ON cnn_weights BEGIN
  UPDATE cnn_models SET version = version + 1 WHERE name = OLD.model;
END;
