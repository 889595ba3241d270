/*
 * stb.c - the one place that compiles stb_image and stb_image_write (Debian's
 * libstb-dev headers), and the small wrappers the rest of the engine calls:
 * cnn_image_info, cnn_image_load, cnn_png_encode, cnn_jpg_encode (image.h).
 *
 * Conventions: every stb symbol is static (STB_IMAGE_STATIC,
 * STB_IMAGE_WRITE_STATIC), so nothing of stb leaks out of this object. No stdio
 * (decoding from memory, encoding through callbacks). All memory comes from the
 * engine allocator, so pixels returned by cnn_image_load go back to cnn_free.
 * PNG deflate uses zlib (already linked) instead of stb's own compressor: smaller
 * files and one well-tested implementation.
 *
 * Formats decoded: JPEG, PNG, BMP, GIF, PSD, HDR, PNM, each recognised by its
 * signature. TGA is left out on purpose: it has no signature, so arbitrary bytes
 * (a raw 784-byte MNIST blob, say) could pass for one. PIC (Softimage) is left
 * out as obsolete.
 */
#include "image.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "base.h"

#define STBI_NO_STDIO
#define STBI_NO_TGA
#define STBI_NO_PIC
#define STB_IMAGE_STATIC
#define STBI_MALLOC(sz) stb_malloc(sz)
#define STBI_REALLOC(p, newsz) stb_realloc(p, newsz)
#define STBI_FREE(p) cnn_free(p)
#define STB_IMAGE_IMPLEMENTATION

/* Set when an allocation inside stb_image failed. stb does not always say so
 * (some paths return NULL with the failure reason of an earlier format probe),
 * and an out-of-memory must not be reported as a corrupt file. Thread-local
 * like stb's own failure reason; reset before every call. */
static _Thread_local int stb_oom;

/* Zeroed: stb_image 2.27 reads some of its heap state before writing it when a
 * file leaves parts out (a JPEG without a quantisation table, for one, is
 * decoded with whatever the allocation held; found by tests/fuzz/fuzz_image as
 * pixels that changed from run to run). Zeroed memory makes every decode a
 * function of the file alone and never shows other data of the process. */
static void *stb_malloc(size_t n) {
  void *p = cnn_calloc(1, n);
  if (!p) stb_oom = 1;
  return p;
}

static void *stb_realloc(void *p, size_t n) {
  void *q = cnn_realloc(p, n);
  if (!q) stb_oom = 1;
  return q;
}

static unsigned char *stb_deflate(unsigned char *data, int data_len, int *out_len, int quality);

/* The deflate output stb_image_write holds while it assembles a PNG. Its PNG
 * writer returns without freeing it when the next allocation fails, so the
 * encoder frees what is still recorded here after a failure. */
static _Thread_local void *stbw_deflated;

static void stbw_free(void *p) {
  if (p && p == stbw_deflated) stbw_deflated = NULL;
  cnn_free(p);
}

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_STATIC
#define STBIW_MALLOC(sz) cnn_malloc(sz)
#define STBIW_REALLOC(p, newsz) cnn_realloc(p, newsz)
#define STBIW_FREE(p) stbw_free(p)
#define STBIW_ZLIB_COMPRESS stb_deflate
#define STB_IMAGE_WRITE_IMPLEMENTATION

/* Third-party code we do not edit: GCC's -O3 inlining sees a possibly
 * uninitialised field in stb's read context that its own logic never reads
 * (unused static functions are dealt with at the end of this file). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

/* zlib stream of data[0..data_len) in cnn_malloc memory, as stb_image_write
 * expects of STBIW_ZLIB_COMPRESS (it frees the result with STBIW_FREE). */
static unsigned char *stb_deflate(unsigned char *data, int data_len, int *out_len, int quality) {
  uLongf cap = compressBound((uLong)data_len);
  if (cap > INT_MAX) return NULL;
  unsigned char *out = cnn_malloc(cap);
  if (!out) return NULL;
  (void)quality; /* stb asks for 8; zlib's default is much faster on noisy photos */
  if (compress2(out, &cap, data, (uLong)data_len, Z_DEFAULT_COMPRESSION) != Z_OK) {
    cnn_free(out);
    return NULL;
  }
  *out_len = (int)cap;
  stbw_deflated = out;
  return out;
}

/* The format's name from its signature, for messages; NULL if none of ours. */
static const char *format_name(const uint8_t *d, size_t n) {
  if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
  if (n >= 2 && d[0] == 0xFF && d[1] == 0xD8) return "JPEG";
  if (n >= 4 && memcmp(d, "GIF8", 4) == 0) return "GIF";
  if (n >= 2 && memcmp(d, "BM", 2) == 0) return "BMP";
  if (n >= 4 && memcmp(d, "8BPS", 4) == 0) return "PSD";
  if (n >= 2 && memcmp(d, "#?", 2) == 0) return "HDR";
  if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6')) return "PNM";
  return NULL;
}

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The size a PNG (IHDR) or JPEG (first SOFn segment) header claims; 0 if not
 * found. */
static int header_size(const uint8_t *d, size_t n, int *w, int *h) {
  uint32_t x = 0, y = 0;
  if (n >= 24 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(d + 12, "IHDR", 4) == 0) {
    x = be32(d + 16), y = be32(d + 20);
  } else if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) {
    size_t i = 2;
    while (i + 9 <= n && d[i] == 0xFF) {
      unsigned m = d[i + 1];
      if (m == 0xFF) { /* fill byte */
        i++;
        continue;
      }
      if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        y = be16(d + i + 5), x = be16(d + i + 7);
        break;
      }
      i += 2 + be16(d + i + 2);
    }
  }
  if (x == 0 || y == 0 || x > INT_MAX || y > INT_MAX) return 0;
  *w = (int)x, *h = (int)y;
  return 1;
}

/* stb_image 2.27 (Debian's libstb-dev 0.0~git20220908) trusts the 16 symbol
 * counts of a JPEG Huffman table (DHT segment): counts adding up to more than
 * 256 overflow its size[257] and values[256] arrays inside the decoder's heap
 * state, in the header probe as well as in decoding (found by
 * tests/fuzz/fuzz_image; stb 2.28 checks it). stb takes anything whose first
 * byte is 0xFF for a JPEG candidate and finds markers as 0xFF, fill bytes,
 * then the code, so every 0xFF 0xC4 of such a file is read here the way stb
 * would read a DHT there (bytes past the end read as 0, as stb's do).
 * Payload bytes that only look like a DHT can make us refuse a file, never
 * let a bad table through. Returns 0 if some table is bad. */
static int jpeg_tables_ok(const uint8_t *d, size_t n) {
  if (n == 0 || d[0] != 0xFF) return 1;
  for (size_t i = 0; i + 1 < n; i++) {
    if (d[i] != 0xFF || d[i + 1] != 0xC4) continue;
    size_t p = i + 2;
    long left = (long)((p < n ? d[p] : 0) << 8 | (p + 1 < n ? d[p + 1] : 0)) - 2;
    p += 2;
    while (left > 0 && p < n) {
      unsigned count = 0;
      p++; /* table class and id */
      for (int k = 0; k < 16; k++, p++) count += p < n ? d[p] : 0;
      if (count > 256) return 0;
      left -= 17 + (long)count;
      p += count;
    }
  }
  return 1;
}

/* stb_image 2.27 reads the numbers of a PNM header into an int with no
 * overflow check (signed overflow, which UBSan stops at; found by
 * tests/fuzz/fuzz_image; stb 2.28 checks). Width, height and maximum value are
 * read here the way stb reads them (blanks and # comments before each; the
 * byte that ends the last one is the last of the header), and a header with
 * one of more than 8 digits is refused: no real file has one (the size caps,
 * and stb's 65535 for the maximum, are far below). A file shorter than its
 * header declares is refused too: stb would fill the missing pixels with
 * zeros (a 19-byte header can declare 39 Mpixels). Not a PNM: CNN_OK. */
static int pnm_check(const uint8_t *d, size_t n, char *err) {
  if (n < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return CNN_OK;
  size_t i = 2;
  uint64_t v[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) {
    for (;;) {
      while (i < n && (d[i] == ' ' || (d[i] >= '\t' && d[i] <= '\r'))) i++;
      if (i >= n || d[i] != '#') break;
      while (i < n && d[i] != '\n' && d[i] != '\r') i++;
    }
    size_t digits = 0;
    while (i < n && d[i] >= '0' && d[i] <= '9') v[k] = v[k] * 10 + (d[i++] - '0'), digits++;
    if (digits > 8)
      return cnn_error(err, CNN_ERROR, "corrupt or truncated PNM: number too long in the header");
  }
  if (v[0] == 0 || v[1] == 0 || v[2] == 0 || v[2] > 65535) return CNN_OK; /* stb's refusal */
  uint64_t need = v[0] * v[1] * (d[1] == '6' ? 3 : 1) * (v[2] > 255 ? 2 : 1);
  uint64_t have = i < n ? n - i - 1 : 0;
  if (have < need)
    return cnn_error(
        err, CNN_ERROR,
        "corrupt or truncated PNM: %llux%llu pixels declared, %llu of %llu bytes present",
        (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)have,
        (unsigned long long)need);
  return CNN_OK;
}

int cnn_image_info(const uint8_t *data, size_t len, int *w, int *h, char *err) {
  int x = 0, y = 0, comp = 0;
  if (!data || len == 0 || len > INT_MAX)
    return cnn_error(err, CNN_ERROR, "not a recognised image format");
  if (!jpeg_tables_ok(data, len))
    return cnn_error(err, CNN_ERROR, "corrupt or truncated JPEG: bad Huffman table");
  if (pnm_check(data, len, err)) return CNN_ERROR;
  /* The first byte every format compiled in must start with (JPEG's 0xFF,
   * PNG's 0x89, GIF, BMP, PSD's "8BPS", PNM's "P5"/"P6", HDR's "#?"): stb's
   * probes allocate and zero some 50 KB before they look, which made a raw
   * MNIST image, whose first pixel fits none, cost more to recognise than to
   * train on. */
  if (!memchr("\xff\x89GB8P#", data[0], 7))
    return cnn_error(err, CNN_ERROR, "not a recognised image format");
  stb_oom = 0;
  if (stbi_info_from_memory(data, (int)len, &x, &y, &comp) && x > 0 && y > 0) {
    *w = x, *h = y;
    return CNN_OK;
  }
  if (stb_oom) return cnn_nomem(err);
  /* stb refuses to describe a PNG or JPEG over 2^30 decoded bytes (and its
   * reason is overwritten by the later format probes): report the size so
   * the caller can refuse it by name. */
  if (header_size(data, len, &x, &y) &&
      ((uint64_t)x * (uint64_t)y > CNN_IMAGE_MAX_PIXELS || (unsigned)x > CNN_IMAGE_MAX_SIDE ||
       (unsigned)y > CNN_IMAGE_MAX_SIDE)) {
    *w = x, *h = y;
    return CNN_OK;
  }
  return cnn_error(err, CNN_ERROR, "not a recognised image format");
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* stb_image 2.27 reads a BMP palette into an uninitialised stack array of 256
 * entries and looks pixel indices up in it unchecked, so an index past a short
 * palette gives stack garbage (found by tests/fuzz/fuzz_image as output that
 * changed from run to run). A short palette is legal (biClrUsed < 2^bpp), so
 * rather than refusing such a file, stb gets a copy whose palette is padded
 * with black entries up to 2^bpp, the pixel offset moved to match; an index
 * past the palette then reads black, as Windows shows it. The header is read
 * as stb reads it: palette entries (4 bytes, 3 for the 12-byte OS/2 header)
 * from the end of the header up to the pixel offset, psize of them.
 * Returns 0 (no copy needed), 1 (*copy made, cnn_malloc), CNN_NOMEM as -1,
 * or -2 when the pixel offset points into the header (stb would read no
 * palette at all). */
static int bmp_pad_palette(uint8_t **copy, size_t *copy_len, const uint8_t *d, size_t n) {
  *copy = NULL;
  if (n < 30 || d[0] != 'B' || d[1] != 'M') return 0;
  uint32_t offset = le32(d + 10), hsz = le32(d + 14);
  if ((hsz != 12 && hsz != 40 && hsz != 56 && hsz != 108 && hsz != 124) || offset > INT_MAX)
    return 0; /* stb refuses these itself */
  unsigned bpp = (unsigned)d[hsz == 12 ? 24 : 28] | (unsigned)d[hsz == 12 ? 25 : 29] << 8;
  if (bpp != 1 && bpp != 4 && bpp != 8) return 0; /* no palette, or refused by stb */
  size_t entry = hsz == 12 ? 3 : 4;
  /* Exactly stb's arithmetic: / 3 rounds towards zero, its >> 2 rounds down,
   * so an offset 1..3 bytes short of the header's end gives it psize -1. */
  long room = (long)offset - 14 - (hsz == 12 ? 24 : (long)hsz);
  long psize = hsz == 12 ? room / 3 : room < 0 ? -1 : room / 4;
  if (psize < 0) return -2;
  long full = 1L << bpp;
  size_t at = 14 + hsz + (size_t)psize * entry; /* end of the palette stb reads */
  /* stb refuses psize 0 and over 256 itself; past the end of the data, stb
   * reads zeros: every index is 0, which the palette has. */
  if (psize == 0 || psize >= full || at >= n) return 0;
  size_t extra = (size_t)(full - psize) * entry;
  if (n > INT_MAX - extra || offset > INT_MAX - extra) return 0; /* stb refuses the length */
  uint8_t *c = cnn_malloc(n + extra);
  if (!c) return -1;
  memcpy(c, d, at);
  memset(c + at, 0, extra);
  memcpy(c + at + extra, d + at, n - at);
  uint32_t moved = offset + (uint32_t)extra;
  for (int i = 0; i < 4; i++) c[10 + i] = (uint8_t)(moved >> (8 * i));
  *copy = c;
  *copy_len = n + extra;
  return 1;
}

/* Two flaws of stb_image 2.27 with PNG chunks, both found by
 * tests/fuzz/fuzz_image, are avoided by handing stb a repaired copy:
 *  - it appends each IDAT chunk to a buffer it allocates at the first
 *    non-empty one, so an empty IDAT before that passes a NULL destination to
 *    memcpy (undefined behaviour, which UBSan stops at). An empty IDAT
 *    carries nothing: the copy leaves it out.
 *  - it keeps the palette in an uninitialised stack array and looks pixel
 *    indices up unchecked, so an index past a short PLTE gives stack garbage.
 *    The copy pads every PLTE with black entries to 256 (its CRC is left as
 *    it is: stb does not check CRCs). Out-of-range indices are an error in
 *    the PNG standard; black is what most viewers show for them.
 * Chunks are walked as stb walks them; at the first length that runs past the
 * end the rest is copied as it is, for stb to refuse. Returns 0 (no copy
 * needed), 1 (*copy made, cnn_malloc) or -1 (out of memory). */
static int png_repair(uint8_t **copy, size_t *copy_len, const uint8_t *d, size_t n) {
  size_t i, o, extra = 0;
  int needed = 0;
  *copy = NULL;
  if (n < 8 || memcmp(d, "\x89PNG\r\n\x1a\n", 8) != 0) return 0;
  for (i = 8; i + 12 <= n && be32(d + i) <= n - i - 12; i += 12 + be32(d + i)) {
    uint32_t len = be32(d + i);
    if (len == 0 && memcmp(d + i + 4, "IDAT", 4) == 0) needed = 1;
    if (memcmp(d + i + 4, "PLTE", 4) == 0 && len < 768 && len % 3 == 0)
      needed = 1, extra += 768 - len;
  }
  if (!needed || n > INT_MAX - extra) return 0;
  uint8_t *c = cnn_malloc(n + extra);
  if (!c) return -1;
  memcpy(c, d, 8);
  for (i = o = 8; i + 12 <= n && be32(d + i) <= n - i - 12; i += 12 + be32(d + i)) {
    uint32_t len = be32(d + i);
    if (len == 0 && memcmp(d + i + 4, "IDAT", 4) == 0) continue;
    if (memcmp(d + i + 4, "PLTE", 4) == 0 && len < 768 && len % 3 == 0) {
      memcpy(c + o, "\0\0\x03\0PLTE", 8); /* length 768 */
      memcpy(c + o + 8, d + i + 8, len);
      memset(c + o + 8 + len, 0, 768 - len);
      memcpy(c + o + 8 + 768, d + i + 8 + len, 4);
      o += 12 + 768;
      continue;
    }
    memcpy(c + o, d + i, 12 + (size_t)len);
    o += 12 + (size_t)len;
  }
  memcpy(c + o, d + i, n - i);
  *copy = c;
  *copy_len = o + n - i;
  return 1;
}

/* A PNM decoded in its own channels (1 gray or 3 RGB, 8-bit) as gray+alpha,
 * with stb's own luma (stbi__compute_y); takes p over. NULL if out of memory. */
static uint8_t *pnm_gray_alpha(uint8_t *p, int w, int h, int comp) {
  size_t n = (size_t)w * (size_t)h, bytes;
  uint8_t *out = cnn_mul_size(&bytes, n, 2) == 0 ? cnn_malloc(bytes) : NULL;
  for (size_t i = 0; out && i < n; i++) {
    const uint8_t *q = p + i * (size_t)comp;
    out[2 * i] = comp == 3 ? (uint8_t)((q[0] * 77 + q[1] * 150 + q[2] * 29) >> 8) : q[0];
    out[2 * i + 1] = 255;
  }
  cnn_free(p);
  return out;
}

int cnn_image_load(uint8_t **px, int *w, int *h, const uint8_t *data, size_t len, char *err) {
  int x = 0, y = 0, comp = 0;
  uint8_t *padded = NULL; /* owned: a repaired copy of data (see above) */
  *px = NULL;
  if (!data || len == 0 || len > INT_MAX)
    return cnn_error(err, CNN_ERROR, "not a recognised image format");
  if (!jpeg_tables_ok(data, len))
    return cnn_error(err, CNN_ERROR, "corrupt or truncated JPEG: bad Huffman table");
  if (pnm_check(data, len, err)) return CNN_ERROR;
  size_t padded_len = 0;
  int pad = bmp_pad_palette(&padded, &padded_len, data, len);
  if (pad == -1) return cnn_nomem(err);
  if (pad == -2) return cnn_error(err, CNN_ERROR, "corrupt or truncated BMP: bad palette");
  if (!pad && (pad = png_repair(&padded, &padded_len, data, len)) < 0) return cnn_nomem(err);
  const uint8_t *src = pad ? padded : data;
  size_t src_len = pad ? padded_len : len;
  /* Always ask for gray+alpha: stb then converts every layout (palette, tRNS,
   * 16-bit, RGB, RGBA) to exactly 2 bytes per pixel, whatever the file says.
   * Except PNM: stb 2.27 converts a 16-bit PNM with its 8-bit converter, into
   * a buffer half the size its 16-to-8 step then reads (a heap overflow found
   * by tests/fuzz/fuzz_image; stb 2.28 fixes it). A PNM comes back in its own
   * 1 or 3 channels and is converted here. */
  int pnm = data[0] == 'P' && len >= 2 && (data[1] == '5' || data[1] == '6');
  stb_oom = 0;
  uint8_t *p = stbi_load_from_memory(src, (int)src_len, &x, &y, &comp, pnm ? 0 : 2);
  cnn_free(padded);
  if (p && pnm && (comp == 1 || comp == 3)) {
    if (!(p = pnm_gray_alpha(p, x, y, comp))) return cnn_nomem(err);
  } else if (p && pnm) {
    cnn_free(p);
    return cnn_error(err, CNN_ERROR, "corrupt or truncated PNM: %d channels", comp);
  }
  if (!p) {
    const char *why = stbi_failure_reason();
    if (stb_oom || (why && strcmp(why, "outofmem") == 0)) return cnn_nomem(err);
    const char *fmt = format_name(data, len);
    return cnn_error(err, CNN_ERROR, "corrupt or truncated %s: %s", fmt ? fmt : "image",
                     why && why[0] ? why : "decoding failed");
  }
  *px = p;
  *w = x;
  *h = y;
  return CNN_OK;
}

/* Growable output buffer for the stbi_write_*_to_func callbacks. */
typedef struct stb_sink {
  uint8_t *buf; /* owned until handed to the caller */
  size_t len, cap;
  int failed;
} stb_sink;

static void sink_write(void *context, void *data, int size) {
  stb_sink *s = context;
  if (s->failed || size <= 0) return;
  size_t need;
  if (cnn_add_size(&need, s->len, (size_t)size) != 0) {
    s->failed = 1;
    return;
  }
  if (need > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < need) {
      if (cnn_mul_size(&cap, cap, 2) != 0) {
        s->failed = 1;
        return;
      }
    }
    uint8_t *nb = cnn_realloc(s->buf, cap);
    if (!nb) {
      s->failed = 1;
      return;
    }
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, data, (size_t)size);
  s->len = need;
}

static int check_encode_args(const uint8_t *px, int w, int h, int channels, char *err) {
  if (!px || w <= 0 || h <= 0 || channels < 1 || channels > 4)
    return cnn_error(err, CNN_ERROR, "cannot encode a %dx%d image with %d channels", w, h,
                     channels);
  /* stb_image_write computes sizes in int: stay far below that. */
  uint64_t bytes = (uint64_t)w * (uint64_t)h * (uint64_t)channels;
  if ((uint64_t)w * (uint64_t)h > CNN_PICTURE_MAX_PIXELS || bytes > INT_MAX / 2)
    return cnn_error(err, CNN_ERROR, "picture of %dx%d pixels is too large; the limit is %u pixels",
                     w, h, CNN_PICTURE_MAX_PIXELS);
  return CNN_OK;
}

static int sink_finish(stb_sink *s, int ok, uint8_t **out, size_t *outlen, char *err) {
  if (!ok || s->failed) {
    cnn_free(s->buf);
    return cnn_nomem(err);
  }
  *out = s->buf;
  *outlen = s->len;
  return CNN_OK;
}

int cnn_png_encode(uint8_t **out, size_t *outlen, const uint8_t *px, int w, int h, int channels,
                   char *err) {
  *out = NULL;
  *outlen = 0;
  int rc = check_encode_args(px, w, h, channels, err);
  if (rc != CNN_OK) return rc;
  stb_sink s = {0};
  stbw_deflated = NULL;
  int ok = stbi_write_png_to_func(sink_write, &s, w, h, channels, px, w * channels);
  if (!ok && stbw_deflated) stbw_free(stbw_deflated);
  stbw_deflated = NULL;
  return sink_finish(&s, ok, out, outlen, err);
}

int cnn_jpg_encode(uint8_t **out, size_t *outlen, const uint8_t *px, int w, int h, int channels,
                   int quality, char *err) {
  *out = NULL;
  *outlen = 0;
  int rc = check_encode_args(px, w, h, channels, err);
  if (rc != CNN_OK) return rc;
  if (quality < 1 || quality > 100)
    return cnn_error(err, CNN_ERROR, "JPEG quality must be 1..100, got %d", quality);
  stb_sink s = {0};
  int ok = stbi_write_jpg_to_func(sink_write, &s, w, h, channels, px, quality);
  return sink_finish(&s, ok, out, outlen, err);
}

/* Static linkage makes every stb entry point we do not call an unused
 * function, and two that the Debian headers declare have no definition in this
 * configuration (stbi_write_hdr_to_func sits inside their stdio section,
 * stbi_set_unpremultiply_on_load_thread is never defined). GCC reports both at
 * the end of the translation unit, so the suppression has to be in force here
 * rather than around the includes. */
#pragma GCC diagnostic ignored "-Wunused-function"
