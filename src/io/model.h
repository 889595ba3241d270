/*
 * model.h - a trained model as bytes: the network's spec and weights, the
 * optimizer's state and the epoch count, in one checksummed blob (the
 * `weights` column of cnn_models). In the loaders' room because the blob is
 * outside bytes, read back from a table anyone may have edited, and because
 * its checksum is zlib's crc32.
 */
#ifndef CNN_IO_MODEL_H
#define CNN_IO_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

/* Blob format (little-endian), documented in README and sql/schema.sql:
 *   "CNNMODEL" u32 version=1
 *   u32 len, spec JSON; u32 len, optimizer JSON (or null); i64 step; u32 epochs
 *   u32 ntensors, then per tensor: u32 len, name; u32 rank, u32 dims[rank];
 *       f32 values[prod dims]
 *   u32 nslots, then nslots arrays of f32 over the whole parameter arena
 *   u32 crc32 (zlib) of every byte before it */
int cnn_model_save(uint8_t **out, size_t *len, const cnn_net *net, const cnn_optim *opt, int epochs,
                   char *err);
/* Builds a net and optimizer from a blob; trusts nothing (sizes, names,
 * shapes, NaN/Inf, truncation, checksum). opt is left empty (n == 0) when
 * the blob has no optimizer (opt NULL at save). */
int cnn_model_load(cnn_net **net, cnn_optim *opt, int *epochs, const uint8_t *blob, size_t len,
                   char *err);

#endif
