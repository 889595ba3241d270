/*
 * ext.h - shared declarations of the SQLite face (ext/). Only ext/ includes
 * sqlite3ext.h; everything here turns SQL values into engine calls and engine
 * statuses into SQL errors.
 *
 * Error messages name the function, the argument, what was expected and what
 * came: "cnn_predict: image must be 784 raw bytes or an encoded image; got a
 * 2-byte blob".
 */
#ifndef CNN_EXT_H
#define CNN_EXT_H

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "base.h"

/* Per-connection state, the user data of every function and module; refcounted
 * by the registrations, freed by the last destructor. Defined in ext/cnn.c. */
typedef struct cnn_conn cnn_conn;

/* Reports an engine status as the SQL result: CNN_NOMEM becomes
 * sqlite3_result_error_nomem, anything else the error "fn: err". */
void cnn_result_status(sqlite3_context *ctx, const char *fn, int status, const char *err);
/* sqlite3_result_error with a printf-style message. */
void cnn_result_errorf(sqlite3_context *ctx, const char *fmt, ...);
/* Sets a virtual table's error message (zErrMsg) from printf-style text. */
void cnn_vtab_errorf(sqlite3_vtab *vtab, const char *fmt, ...);
/* "NULL", "an integer", "a real", "a text", "a 2-byte blob": for messages. */
const char *cnn_value_describe(sqlite3_value *v, char *buf, size_t size);

/* Reads an image argument (raw 784-byte MNIST blob or an encoded image file)
 * into the MNIST convention. On failure returns a status with a message
 * naming the argument ("image must be 784 raw bytes or an encoded image; got a
 * 2-byte blob"). Defined in ext/image.c. */
int cnn_arg_image(sqlite3_value *v, uint8_t out[784], char *err);

/* Scalar functions, registered from the table in ext/cnn.c. */
void cnn_fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_debug(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void cnn_fn_import_mnist(sqlite3_context *ctx, int argc, sqlite3_value **argv);

/* Eponymous table-valued functions. */
extern const sqlite3_module cnn_mnist_module;

#endif
