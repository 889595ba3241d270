/*
 * onnx.h - a trained network as an ONNX model (opset 13, IR version 7), for
 * cnn_export_onnx. In the loaders' room because the bytes are written through
 * protobuf-c on the onnx.proto schema (proto/), a library the core does not
 * link.
 *
 * The graph (inference only):
 *   input  "image"          uint8 [N, H, W, C] (N dynamic): the bytes the
 *                           engine sees, scaled inside the graph by Cast and
 *                           Div 255 exactly as the engine scales them
 *   output "probabilities"  float [N, classes]: cnn_predict_proba's values
 *          "logits"         float [N, classes]: before the final softmax
 * Convolutions and pooling run in ONNX's NCHW between Transposes; a flatten
 * or dense layer transposes back to NHWC first, so the flattened order (and
 * the dense kernel) is the engine's. Dropout is left out; batchnorm uses the
 * moving statistics.
 */
#ifndef CNN_IO_ONNX_H
#define CNN_IO_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

#define CNN_ONNX_OPSET 13
#define CNN_ONNX_IR_VERSION 7

/* Serialises net (read only) as an ONNX ModelProto into *out (cnn_malloc'd,
 * *len bytes). graph_name names the graph (the model's name); producer_version
 * goes into the model's producer_version. A layer or activation ONNX cannot
 * express is an error naming it. */
int cnn_onnx_export(uint8_t **out, size_t *len, cnn_net *net, const char *graph_name,
                    const char *producer_version, char *err);

#endif
